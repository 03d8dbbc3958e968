package claude

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"time"
)

const (
	readChunk = 64 << 10
	// drainAfterEnd bounds what is still read from a pipe once the run is
	// over and something unknown keeps writing to it.
	drainAfterEnd = 4 << 20
)

// lineStats is what the stdout reader counts and keeps; read after it ends.
type lineStats struct {
	bad, huge    int
	badSample    string
	tampered     int
	tamperSample string
	text         []byte // Text mode
}

// readStdout splits stdout into lines and hands each to line. A line longer
// than MaxLine is never held whole: once it passes MaxLine, the rest of it
// is read in chunks and dropped.
func (r *Run) readStdout() {
	defer r.wg.Done()
	defer close(r.events)
	defer r.stdout.Close()

	in := &pipeReader{f: r.stdout, ended: &r.ended, exited: &r.cutAt, limit: -1}
	buf := make([]byte, readChunk)
	var acc []byte // a line that spans reads
	discarding := false
	limit := r.opts.MaxLine
	text := r.opts.Mode == Text
	for {
		n, err := in.Read(buf)
		if n > 0 {
			r.lastRead.Store(r.sinceStart())
		}
		data := buf[:n]
		if text {
			if room := limit - len(r.out.text); room > 0 {
				r.out.text = append(r.out.text, data[:min(room, len(data))]...)
			}
			data = nil
		}
		for len(data) > 0 {
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				if !discarding {
					if len(acc)+len(data) > limit {
						discarding, acc = true, nil
					} else {
						acc = appendGrow(acc, data, limit)
					}
				}
				break
			}
			seg := data[:i]
			data = data[i+1:]
			switch {
			case discarding:
				discarding = false
				r.out.huge++
			case len(acc) > 0:
				if len(acc)+len(seg) > limit {
					r.out.huge++
				} else {
					acc = appendGrow(acc, seg, limit)
					r.line(acc)
				}
				acc = acc[:0]
				if cap(acc) > 1<<20 {
					acc = nil // do not keep a big buffer for the rest of the run
				}
			case len(seg) > limit:
				r.out.huge++
			default:
				r.line(seg)
			}
		}
		if err != nil {
			break
		}
	}
	switch {
	case discarding:
		r.out.huge++
	case len(acc) > 0:
		r.line(acc) // a last line without a newline
	}
}

// appendGrow appends b to acc, doubling its capacity (up to limit) when it
// must grow, so that a long line costs about twice its size in allocations.
func appendGrow(acc, b []byte, limit int) []byte {
	if need := len(acc) + len(b); need > cap(acc) {
		n := min(max(2*cap(acc), need, 4<<10), max(limit, need))
		nacc := make([]byte, len(acc), n)
		copy(nacc, acc)
		acc = nacc
	}
	return append(acc, b...)
}

// line parses one complete line and delivers it.
func (r *Run) line(b []byte) {
	ev, err := ParseLine(b)
	if err != nil {
		if len(bytes.TrimSpace(b)) == 0 {
			return // blank lines are not errors
		}
		r.out.bad++
		if r.out.bad == 1 {
			r.out.badSample = sample(b, 200)
		}
		return
	}
	if why := r.vet.check(&ev); why != "" {
		r.out.tampered++
		if r.out.tamperSample == "" {
			r.out.tamperSample = why
		}
		if ev.Type == "" {
			return
		}
	}
	select {
	case r.events <- ev:
		return
	default:
	}
	r.sending.Store(true)
	select {
	case r.events <- ev:
	case <-r.waitCh: // Wait was called: nobody is receiving
	}
	r.sending.Store(false)
	r.lastRead.Store(r.sinceStart())
}

// readStderr keeps the first StderrLimit bytes of stderr and drops the rest.
func (r *Run) readStderr() {
	defer r.wg.Done()
	defer r.stderr.Close()
	in := &pipeReader{f: r.stderr, ended: &r.ended}
	buf := make([]byte, 16<<10)
	for {
		n, err := in.Read(buf)
		if room := r.opts.StderrLimit - len(r.errBuf); n > 0 {
			if n > room {
				r.errTrunc = true
				n = max(room, 0)
			}
			r.errBuf = append(r.errBuf, buf[:n]...)
		}
		if err != nil {
			return
		}
	}
}

// pipeReader reads a pipe. Once the run is over (ended set, and a read
// deadline put on the pipe), a read that would block ends the stream as EOF
// does: every process of the run is dead, so whatever still holds the pipe
// open is not the run's; only bytes already pending (up to drainAfterEnd in
// all) are still read.
//
// With exited (stdout), the stream also ends where the CLI's output ended:
// once the CLI has exited, the bytes the pipe holds are the last it wrote,
// and anything after them was written by something else (a tool that
// opened the pipe), so it is never read.
type pipeReader struct {
	f       *os.File
	ended   *atomic.Bool
	drained int

	exited *atomic.Bool // set when the CLI has exited (nil: no cut)
	limit  int64        // where the CLI's output ends; -1 until known
	read   int64
}

func (p *pipeReader) Read(buf []byte) (int, error) {
	for {
		if p.limit < 0 && p.exited != nil && p.exited.Load() {
			// Nothing is mid-read now, so nothing is lost between the
			// count and the pipe's contents.
			p.limit = p.read + int64(pendingBytes(p.f))
			_ = p.f.SetReadDeadline(time.Time{})
		}
		if p.exited != nil && p.limit >= 0 {
			if p.read >= p.limit {
				return 0, io.EOF
			}
			buf = buf[:min(int64(len(buf)), p.limit-p.read)]
		}
		n, err := p.f.Read(buf)
		p.read += int64(n)
		if err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
			return n, err
		}
		if p.exited != nil && p.exited.Load() {
			// The deadline woke the read to take the cut; what is left up
			// to it is already in the pipe.
			_ = p.f.SetReadDeadline(time.Time{})
			continue
		}
		if !p.ended.Load() {
			continue // cannot happen: only the supervisor sets a deadline, after ended
		}
		if p.drained >= drainAfterEnd || pendingBytes(p.f) == 0 {
			return n, io.EOF
		}
		_ = p.f.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if n, err = p.f.Read(buf); err == nil {
			p.drained += n
			return n, nil
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			return n, err
		}
	}
}

// sample is a short, redacted, valid-UTF-8 excerpt of b for logs.
func sample(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
	}
	return Redact(strings.ToValidUTF8(string(b), "\uFFFD"))
}
