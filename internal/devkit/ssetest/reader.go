package ssetest

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// ErrIncomplete is the end of a stream inside an event: the app keeps
// waiting for the rest, and never shows it.
var ErrIncomplete = errors.New("the stream ended inside an event")

// Reader reads a stream as it arrives, event by event, with the app's rules
// (see Data): events end at a blank line, except as their first line, which
// is how the app's search for "\n\n" splits them. It keeps one 16 KiB
// buffer and the data of one event, so a client reading many streams stays
// small.
type Reader struct {
	br      *bufio.Reader
	data    []byte // the current event's data
	long    []byte // a line longer than the buffer, gathered
	started bool   // the current event has a line
	id      []byte // the current event's id line, which the app ignores
	retry   []byte // the last retry line's value
}

// NewReader reads r; a *bufio.Reader of at least 16 KiB is used as it is.
func NewReader(r io.Reader) *Reader { return &Reader{br: bufio.NewReaderSize(r, 16<<10)} }

var (
	dataField  = []byte("data:")
	idField    = []byte("id: ")
	retryField = []byte("retry: ")
)

// ID is the id line of the event Next returned last, "" if it had none.
// The app ignores it; a client that reattaches sends the last one back.
func (r *Reader) ID() string { return string(r.id) }

// Retry is the value of the last retry line read, "" if none.
func (r *Reader) Retry() string { return string(r.retry) }

// Next returns the data of the next event that has some (the app skips the
// others), valid until the next call: io.EOF at the end of the stream
// between events, ErrIncomplete inside one, or the error of the read.
func (r *Reader) Next() ([]byte, error) {
	r.data, r.id = r.data[:0], r.id[:0]
	for {
		line, err := r.br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			r.long = append(r.long[:0], line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = r.br.ReadSlice('\n')
				r.long = append(r.long, line...)
			}
			line = r.long
		}
		if err != nil {
			if err == io.EOF && (r.started || len(line) > 0) {
				err = ErrIncomplete
			}
			r.id = r.id[:0] // an event that never arrived has no id
			return nil, err
		}
		line = line[:len(line)-1]
		if len(line) == 0 && r.started {
			r.started = false
			if len(r.data) > 0 {
				return r.data, nil
			}
			r.id = r.id[:0]
			continue
		}
		r.started = true
		if rest, ok := bytes.CutPrefix(line, dataField); ok {
			r.data = append(r.data, bytes.Trim(rest, " \t")...)
		} else if rest, ok := bytes.CutPrefix(line, idField); ok {
			r.id = append(r.id[:0], rest...)
		} else if rest, ok := bytes.CutPrefix(line, retryField); ok {
			r.retry = append(r.retry[:0], rest...)
		}
	}
}
