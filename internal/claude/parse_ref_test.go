package claude

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// parseRef is ParseLine's specification written with encoding/json: exact
// keys (maps), the last of a repeated key, a field of the wrong JSON type
// left zero. FuzzParseLineMatchesRef checks that ParseLine agrees with it.
func parseRef(line []byte) (Event, bool) {
	t := bytes.TrimLeft(line, " \t\r\n")
	if len(t) == 0 || t[0] != '{' || !json.Valid(line) {
		return Event{}, false
	}
	var top map[string]json.RawMessage
	if json.Unmarshal(line, &top) != nil {
		return Event{}, false
	}
	var ev Event
	if !dec(top["type"], &ev.Type) || ev.Type == "" {
		return Event{}, false
	}
	var msg map[string]json.RawMessage
	content := func() json.RawMessage {
		if json.Unmarshal(top["message"], &msg) != nil {
			return nil
		}
		return msg["content"]
	}
	switch ev.Type {
	case "system":
		dec(top["subtype"], &ev.Subtype)
		dec(top["session_id"], &ev.SessionID)
	case "assistant":
		dec(top["session_id"], &ev.SessionID)
		dec(top["parent_tool_use_id"], &ev.ParentToolUseID)
		var elems []json.RawMessage
		if c := content(); len(c) > 0 && c[0] == '[' && json.Unmarshal(c, &elems) == nil && len(elems) > 0 {
			ev.Blocks = []Block{}
			for _, e := range elems {
				var b Block
				var m map[string]json.RawMessage
				if json.Unmarshal(e, &m) == nil {
					dec(m["type"], &b.Type)
					switch b.Type {
					case "text":
						dec(m["text"], &b.Text)
					case "tool_use", "server_tool_use":
						dec(m["name"], &b.ToolName)
						dec(m["id"], &b.ToolUseID)
						b.Input = rawOrNil(m["input"])
					}
				}
				ev.Blocks = append(ev.Blocks, b)
			}
		}
	case "user":
		dec(top["parent_tool_use_id"], &ev.ParentToolUseID)
		if c := content(); len(c) > 0 && c[0] == '"' {
			dec(c, &ev.UserText)
		}
	case "result":
		dec(top["subtype"], &ev.Subtype)
		dec(top["session_id"], &ev.SessionID)
		r := &Result{SessionID: ev.SessionID, APIErrorStatus: apiStatus(val(top["api_error_status"]))}
		dec(top["is_error"], &r.IsError)
		dec(top["result"], &r.Text)
		dec(top["total_cost_usd"], &r.TotalCostUSD)
		dec(top["num_turns"], &r.NumTurns)
		dec(top["duration_ms"], &r.DurationMS)
		var u map[string]json.RawMessage
		if json.Unmarshal(top["usage"], &u) == nil {
			dec(u["input_tokens"], &r.Usage.InputTokens)
			dec(u["output_tokens"], &r.Usage.OutputTokens)
			dec(u["cache_creation_input_tokens"], &r.Usage.CacheCreationInputTokens)
			dec(u["cache_read_input_tokens"], &r.Usage.CacheReadInputTokens)
		}
		var ds []json.RawMessage
		if pd := top["permission_denials"]; len(pd) > 0 && pd[0] == '[' && json.Unmarshal(pd, &ds) == nil {
			r.PermissionDenials = []Denial{}
			for _, e := range ds {
				var d Denial
				var m map[string]json.RawMessage
				if json.Unmarshal(e, &m) == nil {
					dec(m["tool_name"], &d.ToolName)
					dec(m["tool_use_id"], &d.ToolUseID)
					d.ToolInput = rawOrNil(m["tool_input"])
				}
				r.PermissionDenials = append(r.PermissionDenials, d)
			}
		}
		ev.Result = r
	default:
		ev = Event{Type: ev.Type}
	}
	return ev, true
}

// dec decodes a scalar field; null or the wrong type leaves it zero.
func dec[T any](raw json.RawMessage, v *T) bool {
	if len(raw) == 0 || string(raw) == "null" {
		return false
	}
	var x T
	if json.Unmarshal(raw, &x) != nil {
		return false
	}
	*v = x
	return true
}

func rawOrNil(r json.RawMessage) json.RawMessage {
	if r == nil {
		return nil
	}
	return append(json.RawMessage(nil), r...)
}

func FuzzParseLineMatchesRef(f *testing.F) {
	for _, s := range parseSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		want, wantOK := parseRef(line)
		got, err := ParseLine(line)
		if (err == nil) != wantOK {
			t.Fatalf("ParseLine(%q): err %v, reference ok %v", line, err, wantOK)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("ParseLine(%q):\n got %#v\nwant %#v", line, got, want)
		}
	})
}
