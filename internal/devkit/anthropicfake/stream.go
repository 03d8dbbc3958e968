package anthropicfake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// emitter sends one streaming event of the Messages API; it reports whether
// the client is still there. The Anthropic mode frames events as SSE, the
// Bedrock mode as eventstream chunks, so both speak the same event sequence.
type emitter func(event string, data any) bool

// stream answers a streaming request with Server-Sent Events.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, m message, reply Reply) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("request-id", "req_"+randomID())
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	send := func(event string, data any) bool {
		raw, err := json.Marshal(data)
		if err != nil {
			panic(fmt.Sprintf("anthropicfake: encode %s: %v", event, err))
		}
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, raw); err != nil {
			return false
		}
		if flusher != nil {
			flusher.Flush()
		}
		return r.Context().Err() == nil
	}
	s.events(r, m, reply, send, true)
}

// events sends the whole event sequence of message m: message_start, (ping),
// each block's start/deltas/stop, message_delta and message_stop.
func (s *Server) events(r *http.Request, m message, reply Reply, send emitter, ping bool) {
	start := m
	start.Content = []contentBlock{}
	start.StopReason = nil
	start.Usage.OutputTokens = 1
	if !send("message_start", map[string]any{"type": "message_start", "message": start}) {
		return
	}
	if ping && !send("ping", map[string]string{"type": "ping"}) {
		return
	}
	for i, b := range m.Content {
		switch b.Type {
		case "text":
			empty := ""
			if !send("content_block_start", map[string]any{
				"type": "content_block_start", "index": i,
				"content_block": contentBlock{Type: "text", Text: &empty},
			}) {
				return
			}
			for j, piece := range splitText(*b.Text) {
				if j > 0 && reply.ChunkDelay > 0 && !s.wait(r, reply.ChunkDelay) {
					return
				}
				if !send("content_block_delta", map[string]any{
					"type": "content_block_delta", "index": i,
					"delta": map[string]string{"type": "text_delta", "text": piece},
				}) {
					return
				}
			}
		case "tool_use":
			if !send("content_block_start", map[string]any{
				"type": "content_block_start", "index": i,
				"content_block": contentBlock{Type: "tool_use", ID: b.ID, Name: b.Name, Input: json.RawMessage("{}")},
			}) {
				return
			}
			// The real API streams the input as JSON fragments; send it in
			// two pieces so a client must concatenate them.
			in := string(b.Input)
			half := len(in) / 2
			for _, piece := range []string{in[:half], in[half:]} {
				if !send("content_block_delta", map[string]any{
					"type": "content_block_delta", "index": i,
					"delta": map[string]string{"type": "input_json_delta", "partial_json": piece},
				}) {
					return
				}
			}
		}
		if !send("content_block_stop", map[string]any{"type": "content_block_stop", "index": i}) {
			return
		}
	}
	if reply.Hang {
		s.wait(r, -1)
		return
	}
	if !send("message_delta", map[string]any{
		"type":  "message_delta",
		"delta": map[string]any{"stop_reason": *m.StopReason, "stop_sequence": nil},
		"usage": map[string]int{
			"input_tokens":                m.Usage.InputTokens,
			"cache_creation_input_tokens": 0,
			"cache_read_input_tokens":     0,
			"output_tokens":               m.Usage.OutputTokens,
		},
	}) {
		return
	}
	send("message_stop", map[string]string{"type": "message_stop"})
}

// splitText cuts s into word-sized deltas (each keeps its trailing space), so
// a streamed text arrives in several text_delta events.
func splitText(s string) []string {
	if s == "" {
		return []string{""}
	}
	var out []string
	for len(s) > 0 {
		i := strings.IndexByte(s, ' ')
		if i < 0 {
			out = append(out, s)
			break
		}
		out = append(out, s[:i+1])
		s = s[i+1:]
	}
	return out
}
