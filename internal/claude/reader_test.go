package claude

import (
	"os"
	"sync/atomic"
	"testing"
	"time"
)

// A read that waits past the idle deadline reports it once, then waits on
// for the CLI's output as any read does.
func TestIdleReportedOnce(t *testing.T) {
	rd, wr := pipe(t)
	var exited atomic.Bool
	var calls atomic.Int32
	idled := make(chan struct{}, 1)
	p := &pipeReader{f: rd, exited: &exited, left: -1, idle: time.Millisecond, onIdle: func() bool {
		if calls.Add(1) > 1 {
			exited.Store(true) // ends a read that reports idleness over and over
		}
		select {
		case idled <- struct{}{}:
		default:
		}
		return true
	}}
	read := make(chan int)
	go func() {
		n, _ := p.Read(make([]byte, 8))
		read <- n
	}()
	<-idled
	if _, err := wr.WriteString("late"); err != nil {
		t.Fatal(err)
	}
	if n := <-read; n != 4 || calls.Load() != 1 {
		t.Fatalf("read %d bytes after %d idle reports, want 4 after 1", n, calls.Load())
	}
}

// pipe stands in for the CLI's stdout; the test's clean-up closes both ends.
func pipe(t *testing.T) (rd, wr *os.File) {
	t.Helper()
	rd, wr, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rd.Close(); wr.Close() })
	return rd, wr
}
