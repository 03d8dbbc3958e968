package claude

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"io"
	"os"
	"sync/atomic"
	"time"
)

// readStdout splits stdout into lines and hands each to line. A line longer
// than MaxLine is never held whole: once it passes MaxLine, the rest of it
// is read in chunks and dropped.
func (r *Run) readStdout() {
	defer close(r.events)
	defer r.stdout.Close()
	limit := r.opts.MaxLine
	if r.opts.Mode == Text {
		r.exit.Output = r.head(r.stdout, limit)
		return
	}
	in := &pipeReader{f: r.stdout, exited: &r.exited, left: -1, idle: r.opts.IdleTimeout, onIdle: r.idle}
	br := bufio.NewReaderSize(in, 64<<10)
	var acc []byte // a line longer than br's buffer
	huge := false
	for {
		frag, err := br.ReadSlice('\n')
		ends := err == nil
		if ends {
			frag = frag[:len(frag)-1]
		}
		switch {
		case huge:
		case len(acc)+len(frag) > limit:
			huge, acc = true, nil
		case ends && len(acc) == 0:
			r.line(frag) // the common case: no copy
		default:
			acc = appendGrow(acc, frag, limit)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if huge {
			r.exit.HugeLines++
		} else if len(acc) > 0 {
			r.line(acc) // a long line, or a last one without a newline
		}
		huge, acc = false, acc[:0]
		if cap(acc) > 1<<20 {
			acc = nil // do not keep a big buffer for the rest of the run
		}
		if err != nil {
			return
		}
	}
}

// appendGrow appends b to acc, doubling its capacity (up to limit) when it
// must grow, so that a long line costs about twice its size in allocations.
func appendGrow(acc, b []byte, limit int) []byte {
	if need := len(acc) + len(b); need > cap(acc) {
		acc = append(make([]byte, 0, min(max(2*cap(acc), need, 4<<10), max(limit, need))), acc...)
	}
	return append(acc, b...)
}

// idle stops a run whose CLI was silent for IdleTimeout, unless a person
// is being asked: it reports whether it stopped the run.
func (r *Run) idle() bool {
	if r.asks.waiting(r.opts.IdleTimeout) {
		return false
	}
	r.stop(ErrIdle)
	return true
}

// line parses one complete line and delivers it.
func (r *Run) line(b []byte) {
	ev, err := ParseLine(b)
	if err != nil {
		if len(bytes.TrimSpace(b)) > 0 { // blank lines are not errors
			r.exit.BadLines++
		}
		return
	}
	if why, drop := r.vet.check(&ev); why != "" {
		r.exit.Tampered++
		r.exit.TamperReason = cmp.Or(r.exit.TamperReason, why)
		if drop {
			return
		}
	}
	switch {
	case ev.Ask != nil && !r.asked(ev), ev.Withdrawn != "" && !r.withdrawn(ev.Withdrawn):
		return
	case ev.Result != nil && r.opts.asking():
		r.endInput()
	}
	select {
	case r.events <- ev:
	case <-r.waitCh: // Wait was called: nobody is receiving
	}
}

// readStderr keeps the first stderrLimit bytes of stderr.
func (r *Run) readStderr() {
	defer r.stderr.Close()
	r.exit.Stderr = r.head(r.stderr, stderrLimit)
}

// head reads one of the CLI's pipes to the end of the CLI's output and
// returns its first limit bytes; the rest is dropped.
func (r *Run) head(f *os.File, limit int) string {
	in := &pipeReader{f: f, exited: &r.exited, left: -1}
	b, _ := io.ReadAll(io.LimitReader(in, int64(limit)))
	_, _ = io.Copy(io.Discard, in)
	return string(b)
}

// pipeReader reads one of the CLI's pipes up to where the CLI's output
// ends: once the CLI has exited, the bytes the pipe holds are the last it
// wrote, and whatever comes after them is written by something else that
// holds the pipe (a tool), so it is never read, nor waited for.
//
// With idle set, a read that waits that long calls onIdle, until it
// reports that it stopped the run. Only a read waits: a reader held up by
// a slow consumer is not idle.
type pipeReader struct {
	f      *os.File
	exited *atomic.Bool  // set by supervise, which then wakes a waiting read
	left   int64         // what is left of the CLI's output once it has exited; -1 before
	idle   time.Duration // 0: none
	onIdle func() bool   // true: the run is stopped, stop watching
}

func (p *pipeReader) Read(b []byte) (int, error) {
	for {
		if p.left < 0 && p.exited.Load() {
			// Nothing is mid-read now, so nothing is lost between the
			// count and the pipe's contents.
			p.left = int64(pendingBytes(p.f))
			_ = p.f.SetReadDeadline(time.Time{})
		}
		switch {
		case p.left == 0:
			return 0, io.EOF
		case p.left > 0:
			b = b[:min(int64(len(b)), p.left)]
		case p.idle > 0:
			_ = p.f.SetReadDeadline(time.Now().Add(p.idle))
			if p.exited.Load() {
				continue // supervise's wake-up may have come before this deadline
			}
		}
		n, err := p.f.Read(b)
		if p.left > 0 {
			p.left -= int64(n)
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			return n, err
		}
		_ = p.f.SetReadDeadline(time.Time{})
		if !p.exited.Load() && p.onIdle() { // idleness, not supervise's wake-up
			p.idle = 0
		}
		if n > 0 {
			return n, nil
		}
	}
}
