package anthropicfake

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
)

// message is one answer, framed later as JSON, SSE or eventstream.
type message struct {
	id, model, stop string
	content         []map[string]any
	in, out         int
}

func newMessage(req Request, reply Reply) message {
	m := message{
		id: "msg_" + randomID(), model: cmp.Or(req.Model, "claude-sonnet-4-5"), stop: "end_turn",
		content: []map[string]any{}, in: estimateTokens(len(req.Raw)),
	}
	for _, b := range reply.Blocks {
		if b.ToolName == "" {
			m.content = append(m.content, map[string]any{"type": "text", "text": b.Text})
			continue
		}
		m.stop = "tool_use"
		m.content = append(m.content, map[string]any{
			"type": "tool_use", "id": "toolu_" + randomID(), "name": b.ToolName,
			"input": json.RawMessage(mustJSON(cmp.Or[any](b.Input, struct{}{}))),
		})
	}
	m.out = estimateTokens(len(mustJSON(m.content)))
	return m
}

// json is the message as the API returns it whole, or as message_start
// announces it.
func (m message) json(content []map[string]any, stop any, out int) map[string]any {
	return map[string]any{
		"id": m.id, "type": "message", "role": "assistant", "model": m.model, "content": content,
		"stop_reason": stop, "stop_sequence": nil, "usage": map[string]int{
			"input_tokens": m.in, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": out,
		},
	}
}

// events is the Messages API's streaming sequence: message_start, each
// block's start, deltas and stop, message_delta and message_stop.
func (m message) events() []map[string]any {
	evs := []map[string]any{{"type": "message_start", "message": m.json([]map[string]any{}, nil, 1)}}
	for i, b := range m.content {
		start, deltas := maps.Clone(b), []map[string]any{}
		if b["type"] == "text" {
			start["text"] = ""
			for _, piece := range strings.SplitAfter(b["text"].(string), " ") {
				deltas = append(deltas, map[string]any{"type": "text_delta", "text": piece})
			}
		} else {
			// The API streams a tool's input as JSON fragments; two pieces
			// make a client join them.
			in := string(b["input"].(json.RawMessage))
			start["input"] = json.RawMessage("{}")
			for _, piece := range []string{in[:len(in)/2], in[len(in)/2:]} {
				deltas = append(deltas, map[string]any{"type": "input_json_delta", "partial_json": piece})
			}
		}
		evs = append(evs, map[string]any{"type": "content_block_start", "index": i, "content_block": start})
		for _, d := range deltas {
			evs = append(evs, map[string]any{"type": "content_block_delta", "index": i, "delta": d})
		}
		evs = append(evs, map[string]any{"type": "content_block_stop", "index": i})
	}
	final := m.json(nil, m.stop, m.out)
	return append(evs,
		map[string]any{"type": "message_delta", "delta": map[string]any{"stop_reason": m.stop, "stop_sequence": nil}, "usage": final["usage"]},
		map[string]any{"type": "message_stop"})
}

// stream sends m's events as SSE, or in the Bedrock mode as eventstream
// chunks (no ping, invocation metrics on message_stop), flushing each.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, m message, hang bool) {
	evs, frame := m.events(), sseFrame
	if s.bedrock {
		frame = chunkFrame
		evs[len(evs)-1]["amazon-bedrock-invocationMetrics"] = map[string]int{
			"inputTokenCount": m.in, "outputTokenCount": m.out, "invocationLatency": 1, "firstByteLatency": 1,
		}
		w.Header().Set("Content-Type", "application/vnd.amazon.eventstream")
		w.Header().Set("x-amzn-bedrock-content-type", "application/json")
		w.Header().Set("x-amzn-RequestId", randomID())
	} else {
		evs = slices.Insert(evs, 1, map[string]any{"type": "ping"})
		w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("request-id", "req_"+randomID())
	}
	if hang {
		evs = evs[:len(evs)-2]
	}
	w.WriteHeader(http.StatusOK)
	for _, ev := range evs {
		if _, err := w.Write(frame(ev["type"].(string), mustJSON(ev))); err != nil || http.NewResponseController(w).Flush() != nil {
			return
		}
	}
	if hang {
		<-r.Context().Done()
	}
}

func sseFrame(event string, data []byte) []byte {
	return fmt.Appendf(nil, "event: %s\ndata: %s\n\n", event, data)
}
