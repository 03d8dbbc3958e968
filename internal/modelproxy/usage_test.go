package modelproxy

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
)

// feed runs body through a fresh parser in the given pieces and returns
// the counts it yields.
func feed(newParser func() parser, pieces ...[]byte) counts {
	s := &Session{ctx: context.Background()}
	pr := newParser()
	_, whole := pr.(*jsonParser)
	m := s.track("from-request", nil, pr, whole)
	for _, b := range pieces {
		pr.write(b, m.event)
	}
	pr.end(m.event)
	return *m.c
}

func sse() parser { return &sseParser{} }

// TestSSEEverySplit: an SSE stream parsed whole, split in two at every
// byte, byte by byte, and with CRLF line ends gives the same usage: the
// larger of message_start's and message_delta's counts, not their sum.
func TestSSEEverySplit(t *testing.T) {
	body := []byte(sseBody("claude-opus-4-8", 1234, 567))
	want := feed(sse, body)
	if want.model != "claude-opus-4-8" || want.input != 1234 || want.output != 567 {
		t.Fatalf("whole stream: %+v", want)
	}
	for i := range body {
		if got := feed(sse, body[:i], body[i:]); got != want {
			t.Fatalf("split at %d: %+v, want %+v", i, got, want)
		}
	}
	var bytewise [][]byte
	for i := range body {
		bytewise = append(bytewise, body[i:i+1])
	}
	if got := feed(sse, bytewise...); got != want {
		t.Errorf("byte by byte: %+v", got)
	}
	crlf := []byte(strings.ReplaceAll(string(body), "\n", "\r\n"))
	if got := feed(sse, crlf); got != want {
		t.Errorf("CRLF: %+v", got)
	}
}

// TestSSEUsageFields: cache counts, the one-hour share, web searches and
// the fast tier are read; an unterminated last event still counts; a
// multi-line data field is joined.
func TestSSEUsageFields(t *testing.T) {
	body := "event: message_start\n" +
		`data: {"type":"message_start","message":{"model":"claude-opus-4-6","usage":{"input_tokens":5,` + "\n" +
		`data: "cache_creation_input_tokens":300,"cache_read_input_tokens":7000,"output_tokens":1,` +
		`"cache_creation":{"ephemeral_1h_input_tokens":100}}}}` + "\n\n" +
		`data: {"type":"message_delta","usage":{"output_tokens":80,"server_tool_use":{"web_search_requests":2},"speed":"fast"}}`
	got := feed(sse, []byte(body))
	want := counts{model: "claude-opus-4-6", fast: true, input: 5, cacheWrite: 300, cacheWrite1h: 100, cacheRead: 7000, output: 80, webSearch: 2, final: true}
	if got != want {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}

// TestAbsurdCountsIgnored: negative, huge and non-numeric counts leave the
// believable ones standing.
func TestAbsurdCountsIgnored(t *testing.T) {
	body := sseBody("claude-sonnet-4-6", 100, 20) +
		`data: {"type":"message_delta","usage":{"output_tokens":-5,"input_tokens":1000000000000}}` + "\n\n" +
		`data: {"type":"message_delta","usage":{"output_tokens":"lots"}}` + "\n\n"
	got := feed(sse, []byte(body))
	if got.input != 100 || got.output != 20 {
		t.Errorf("got %+v", got)
	}
}

// TestJSONBody: a non-streaming message, split anywhere, gives its usage
// and model; a body that is not a message gives nothing.
func TestJSONBody(t *testing.T) {
	body := []byte(`{"id":"m","type":"message","model":"claude-haiku-4-5","content":[{"type":"text","text":"{}"}],` +
		`"usage":{"input_tokens":11,"cache_read_input_tokens":22,"output_tokens":33}}` + "\n")
	js := func() parser { return &jsonParser{} }
	for i := range body {
		got := feed(js, body[:i], body[i:])
		if got.model != "claude-haiku-4-5" || got.input != 11 || got.cacheRead != 22 || got.output != 33 {
			t.Fatalf("split at %d: %+v", i, got)
		}
	}
	if got := feed(js, []byte(`{"input_tokens":99}`)); got.input != 0 {
		t.Errorf("count_tokens answer counted as usage: %+v", got)
	}
}

// frames encodes events as Bedrock's eventstream chunk frames.
func frames(t *testing.T, events ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := eventstream.NewEncoder()
	for _, e := range events {
		payload, _ := json.Marshal(map[string]any{"bytes": []byte(e), "p": "abcdefghij"})
		typ, kind := "chunk", "event"
		if strings.HasPrefix(e, "!") {
			typ, kind = "throttlingException", "exception"
		}
		err := enc.Encode(&buf, eventstream.Message{
			Headers: eventstream.Headers{
				{Name: ":event-type", Value: eventstream.StringValue(typ)},
				{Name: ":content-type", Value: eventstream.StringValue("application/json")},
				{Name: ":message-type", Value: eventstream.StringValue(kind)},
			},
			Payload: payload,
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func bedrockEvents() []string {
	return []string{
		`{"type":"message_start","message":{"model":"claude-sonnet-4-5-20250929","usage":{"input_tokens":40,"output_tokens":1}}}`,
		`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"hello"}}`,
		`!{"message":"ignored exception"}`,
		`{"type":"message_delta","usage":{"output_tokens":12}}`,
		`{"type":"message_stop","amazon-bedrock-invocationMetrics":{"inputTokenCount":41,"outputTokenCount":12,"cacheReadInputTokenCount":3}}`,
	}
}

// TestEventstreamSplitAcrossReads: frames cut at every byte, and into
// three pieces, decode to the same usage, including Bedrock's invocation
// metrics; exception frames are skipped.
func TestEventstreamSplitAcrossReads(t *testing.T) {
	body := frames(t, bedrockEvents()...)
	fp := func() parser { return &frameParser{} }
	want := feed(fp, body)
	if want.model != "claude-sonnet-4-5-20250929" || want.input != 41 || want.output != 12 || want.cacheRead != 3 {
		t.Fatalf("whole stream: %+v", want)
	}
	for i := range body {
		if got := feed(fp, body[:i], body[i:]); got != want {
			t.Fatalf("split at %d: %+v", i, got)
		}
	}
	for i := 0; i < len(body); i += 7 {
		for j := i; j < len(body); j += 13 {
			if got := feed(fp, body[:i], body[i:j], body[j:]); got != want {
				t.Fatalf("split at %d and %d: %+v", i, j, got)
			}
		}
	}
}

// TestEventstreamCorruptStops: a frame with a bad checksum or length stops
// the parsing (the client still gets the bytes) without inventing usage.
func TestEventstreamCorruptStops(t *testing.T) {
	body := frames(t, bedrockEvents()...)
	bad := bytes.Clone(body)
	bad[20] ^= 0xff // inside the first frame's headers: its CRC fails
	if got := feed(func() parser { return &frameParser{} }, bad); got.input != 0 || got.output != 0 {
		t.Errorf("corrupt stream counted: %+v", got)
	}
	huge := append([]byte{0x7f, 0xff, 0xff, 0xff}, body...)
	if got := feed(func() parser { return &frameParser{} }, huge); got.input != 0 {
		t.Errorf("oversized frame counted: %+v", got)
	}
}
