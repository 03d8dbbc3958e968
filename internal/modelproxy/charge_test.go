package modelproxy

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// streamed is a message streamed with every kind of generated content: its
// events, the content bytes each carries (from the values themselves, not
// from the code under test), and the index of message_delta, the event that
// ends it. The final usage (9 output tokens) is far below the content
// estimate, so which of the two is charged shows.
type streamed struct {
	events  []string
	content []int
	final   int
}

const streamedIn, streamedOut = 30, 9

func newStreamed(bedrock bool) streamed {
	var s streamed
	type m = map[string]any
	add := func(n int, v m) {
		b, _ := json.Marshal(v)
		s.events = append(s.events, string(b))
		s.content = append(s.content, n)
	}
	delta := func(i int, typ, field, v string) {
		add(len(v), m{"type": "content_block_delta", "index": i, "delta": m{"type": typ, field: v}})
	}
	add(0, m{"type": "message_start", "message": m{"model": "claude-opus-4-8", "usage": m{"input_tokens": streamedIn, "output_tokens": 1}}})
	add(0, m{"type": "content_block_start", "index": 0, "content_block": m{"type": "thinking", "thinking": "", "signature": ""}})
	delta(0, "thinking_delta", "thinking", "The user wants a listing, so run ls.")
	delta(0, "signature_delta", "signature", "EqQBCkgIARABGAIiQL7aZ0")
	add(0, m{"type": "content_block_stop", "index": 0})
	add(0, m{"type": "content_block_start", "index": 1, "content_block": m{"type": "text", "text": ""}})
	delta(1, "text_delta", "text", "Café \"listing\"\n")
	delta(1, "text_delta", "text", strings.Repeat("words ", 20))
	add(0, m{"type": "content_block_start", "index": 2, "content_block": m{"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": m{}}})
	delta(2, "input_json_delta", "partial_json", `{"command": "ls -la"}`)
	s.final = len(s.events)
	add(0, m{"type": "message_delta", "delta": m{"stop_reason": "tool_use"}, "usage": m{"output_tokens": streamedOut}})
	stop := m{"type": "message_stop"}
	if bedrock {
		stop["amazon-bedrock-invocationMetrics"] = m{"inputTokenCount": streamedIn, "outputTokenCount": streamedOut}
	}
	add(0, stop)
	return s
}

// want is the output charged once the first n events have been passed on:
// message_start's 1, or the content at 3 bytes a token rounded up if more,
// until message_delta; then exactly its count.
func (s streamed) want(n int) int64 {
	if n > s.final {
		return streamedOut
	}
	var content, out int64
	for _, c := range s.content[:n] {
		content += int64(c)
	}
	if n > 0 {
		out = 1
	}
	return max(out, (content+2)/3)
}

// encoding is a wire format: the body of events, and where each event's
// bytes end in it.
type encoding struct {
	name   string
	parser func() parser
	encode func(t *testing.T, events []string) (body []byte, ends []int)
}

var encodings = []encoding{
	{"sse", sse, func(t *testing.T, events []string) (body []byte, ends []int) {
		for _, e := range events {
			body = append(body, "event: e\ndata: "+e...)
			ends = append(ends, len(body))
			body = append(body, "\n\n"...)
		}
		return body, ends
	}},
	{"eventstream", func() parser { return &frameParser{} }, func(t *testing.T, events []string) (body []byte, ends []int) {
		for _, e := range events {
			body = append(body, frames(t, e)...)
			ends = append(ends, len(body))
		}
		return body, ends
	}},
}

// TestChargeAtEveryCut: a stream cut at any byte is charged the larger of
// message_start's output and the content estimate of the events wholly
// received; once message_delta is in, exactly its count, however much
// content came before (the estimate is not added to it, nor kept as a
// floor). Both wire formats, all four kinds of generated content.
func TestChargeAtEveryCut(t *testing.T) {
	for _, enc := range encodings {
		msg := newStreamed(enc.name == "eventstream")
		if msg.want(msg.final) <= streamedOut {
			t.Fatalf("the content estimate %d does not exceed the final count: the test would prove nothing", msg.want(msg.final))
		}
		body, ends := enc.encode(t, msg.events)
		for i := 0; i <= len(body); i++ {
			n := 0
			for n < len(ends) && ends[n] <= i {
				n++
			}
			got := feed(enc.parser, body[:i]).charged()
			if got.output != msg.want(n) {
				t.Fatalf("%s cut at byte %d (%d events): output %d, want %d", enc.name, i, n, got.output, msg.want(n))
			}
			if n > 0 && got.input != streamedIn {
				t.Fatalf("%s cut at byte %d: input %d", enc.name, i, got.input)
			}
		}
	}
}

// TestHangUpChargedByContent: a client that reads the generated text and
// hangs up before message_delta is charged the content estimate, through
// the Anthropic SSE path and the Bedrock eventstream path; it is charged
// before the client has the bytes. A finished stream of the same content
// in the same session is charged exactly its reported count, and the two
// add up.
func TestHangUpChargedByContent(t *testing.T) {
	for _, enc := range encodings {
		t.Run(enc.name, func(t *testing.T) {
			bedrock := enc.name == "eventstream"
			msg := newStreamed(bedrock)
			body, ends := enc.encode(t, msg.events)
			cutAt := ends[msg.final-1] + 2 // the last delta and, for SSE, its blank line
			if bedrock {
				cutAt = ends[msg.final-1]
			}
			var n atomic.Int32
			cut := make(chan struct{})
			up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				if bedrock {
					w.Header().Set("Content-Type", "application/vnd.amazon.eventstream")
				}
				if n.Add(1) > 1 {
					w.Write(body) // the finished stream
					return
				}
				w.Write(body[:cutAt])
				w.(http.Flusher).Flush()
				<-r.Context().Done() // the proxy hung up on us
				close(cut)
			})
			o := Options{Provider: ovrlrd.Anthropic, Upstream: up.URL, Credential: realKey}
			path := "/v1/messages"
			if bedrock {
				o = Options{Provider: ovrlrd.Bedrock, Upstream: up.URL, Region: "us-east-1", AWSCredentials: testCreds()}
				path = "/model/" + bedrockModel + "/invoke-with-response-stream"
			}
			s := open(t, newProxy(t, o))

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "POST", s.BaseURL()+path, strings.NewReader(msgBody))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got := make([]byte, cutAt)
			if _, err := io.ReadFull(resp.Body, got); err != nil || string(got) != string(body[:cutAt]) {
				t.Fatalf("client read %q, %v", got, err)
			}
			est := msg.want(msg.final)
			if u := s.Usage(); u.OutputTokens != est {
				t.Errorf("while the client reads: output %d, want the estimate %d", u.OutputTokens, est)
			}
			cancel()
			<-cut
			resp.Body.Close()
			u := s.Usage()
			if u.InputTokens != streamedIn || u.OutputTokens != est || !near(u.CostUSD, (streamedIn*5+float64(est)*25)/1e6) {
				t.Errorf("after the hang-up: %+v, want %d in, %d out at Opus 4.8's price", u, streamedIn, est)
			}

			r := send(t, "POST", s.BaseURL()+path, msgBody, nil)
			if r.status != 200 || r.body != string(body) {
				t.Fatalf("finished stream: %d %q", r.status, r.body)
			}
			u = s.Usage()
			if u.InputTokens != 2*streamedIn || u.OutputTokens != est+streamedOut ||
				!near(u.CostUSD, (2*streamedIn*5+float64(est+streamedOut)*25)/1e6) {
				t.Errorf("with a finished stream: %+v, want %d in, %d out", u, 2*streamedIn, est+streamedOut)
			}
		})
	}
}

// TestCutJSONChargedBySize: a non-streaming body the client stops reading
// part way (the usage is at its end) is charged its bytes passed on as
// content; a whole body, and one without usage (count_tokens), exactly
// what it says; Bedrock's profile list, cut or not, nothing.
func TestCutJSONChargedBySize(t *testing.T) {
	full := `{"id":"m","type":"message","model":"claude-haiku-4-5","content":[{"type":"text","text":"` +
		strings.Repeat("x", 3000) + `"}],"usage":{"input_tokens":11,"output_tokens":33}}`
	half := len(full) / 2
	cutJSON := func(o Options, method, path string) ovrlrd.Usage {
		cut := make(chan struct{})
		o.Upstream = newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", "100000")
			io.WriteString(w, full[:half])
			w.(http.Flusher).Flush()
			<-r.Context().Done()
			close(cut)
		}).URL
		s := open(t, newProxy(t, o))
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, method, s.BaseURL()+path, strings.NewReader(`{"model":"claude-haiku-4-5"}`))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if _, err := io.ReadFull(resp.Body, make([]byte, half)); err != nil {
			t.Fatal(err)
		}
		cancel()
		<-cut
		return s.Usage()
	}
	u := cutJSON(Options{Provider: ovrlrd.Anthropic, Credential: realKey}, "POST", "/v1/messages")
	if want := int64(half+2) / 3; u.OutputTokens != want || !near(u.CostUSD, float64(want)*5/1e6) {
		t.Errorf("cut body: %+v, want %d output tokens at Haiku 4.5's price", u, want)
	}
	u = cutJSON(Options{Provider: ovrlrd.Bedrock, Region: "us-east-1", AWSCredentials: testCreds()}, "GET", "/inference-profiles")
	if u != (ovrlrd.Usage{}) {
		t.Errorf("cut profile list charged: %+v", u)
	}

	js := func() parser { return &jsonParser{} }
	if c := feed(js, []byte(full)).charged(); c.output != 33 || c.input != 11 {
		t.Errorf("whole body: %+v", c)
	}
	if c := feed(js, []byte(`{"input_tokens":99}`)).charged(); c.output != 0 || c.input != 0 {
		t.Errorf("count_tokens answer charged: %+v", c)
	}
}

// TestNothingPassedOnAfterClose: bytes the upstream delivers once the
// session has ended are counted but not passed on, so the Usage read right
// after Close covers everything the client got.
func TestNothingPassedOnAfterClose(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s := &Session{ctx: ctx}
	ev := `data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"late words"}}` + "\n\n"
	tp := s.track("claude-opus-4-8", io.NopCloser(strings.NewReader(ev+ev)), &sseParser{}, false)
	b := make([]byte, len(ev))
	if n, err := tp.Read(b); n != len(ev) || err != nil {
		t.Fatalf("open session: read %d, %v", n, err)
	}
	cancel()
	if n, err := tp.Read(b); n != 0 || err != context.Canceled {
		t.Fatalf("after the session ended: read %d, %v; want nothing and context.Canceled", n, err)
	}
	if got := tp.c.content; got != 2*int64(len("late words")) {
		t.Errorf("content = %d, want both events counted", got)
	}
}
