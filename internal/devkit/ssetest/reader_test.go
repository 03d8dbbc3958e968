package ssetest

import (
	"errors"
	"io"
	"strings"
	"testing"
)

// An event is delivered as soon as its blank line is in, not at the end
// of the stream; a stream that stops inside an event is incomplete.
func TestReaderDeliversEventsAsTheyArrive(t *testing.T) {
	pr, pw := io.Pipe()
	defer pr.Close() // ends a write the test did not read
	r := NewReader(pr)
	go func() {
		_, _ = io.WriteString(pw, "data: {\"type\":\"ping\"}\n\n")
	}()
	data, err := r.Next()
	if err != nil || string(data) != `{"type":"ping"}` {
		t.Fatalf("Next = %q, %v", data, err)
	}
	go func() {
		_, _ = io.WriteString(pw, "data: {\"type\":")
		pw.Close()
	}()
	if data, err := r.Next(); !errors.Is(err, ErrIncomplete) {
		t.Errorf("a stream ending inside an event: %q, %v", data, err)
	}
}

// Events split where the app's search for "\n\n" splits them: a blank
// line ends an event, except as its first line.
func TestReaderSplitsAsTheApp(t *testing.T) {
	long := strings.Repeat("x", 40<<10)
	for _, c := range []struct {
		name, stream string
		want         []string
		incomplete   bool
	}{
		{"data lines joined", "data: a\nevent: e\ndata:\tb \n\n", []string{"ab"}, false},
		{"blank first line", "data: a\n\n\ndata: b\n\n", []string{"a", "b"}, false},
		{"no data", ": comment\n\n\n\ndata: c\n\n", []string{"c"}, false},
		{"a lone newline after the last event", "data: a\n\n\n", []string{"a"}, true},
		{"a line longer than the buffer", "data: " + long + "\n\ndata: d\n\n", []string{long, "d"}, false},
		{"nothing", "", nil, false},
	} {
		r := NewReader(strings.NewReader(c.stream))
		var got []string
		var err error
		for {
			var data []byte
			if data, err = r.Next(); err != nil {
				break
			}
			got = append(got, string(data))
		}
		if strings.Join(got, "|") != strings.Join(c.want, "|") || errors.Is(err, ErrIncomplete) != c.incomplete {
			t.Errorf("%s: got %d events %.40q, %v; want %.40q, incomplete %v", c.name, len(got), got, err, c.want, c.incomplete)
		}
	}
}
