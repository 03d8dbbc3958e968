package ssetest

import (
	"strings"
	"testing"
)

func TestDecodeAcceptsAppFraming(t *testing.T) {
	stream := "data: {\"type\":\"chunk\",\"content\":\"a\"}\n\n" +
		": keepalive\n\n" +
		"event: x\nid: 1\ndata:  {\"type\":\"chunk\",\t\ndata: \"content\":\"b\"} \t\n\n" +
		"data: {\"type\":\"complete\",\"conversationId\":\"c\",\"title\":null}\n\n"
	evs, err := Decode([]byte(stream))
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 3 || evs[0].Content != "a" || evs[1].Content != "b" || evs[2].ConversationID != "c" || evs[2].Present["title"] {
		t.Fatalf("decoded %+v", evs)
	}
}

func TestDecodeRejects(t *testing.T) {
	for name, stream := range map[string]string{
		"CRLF framing":         "data: {\"type\":\"ping\"}\r\n\r\n",
		"incomplete":           "data: {\"type\":\"ping\"}\n",
		"unknown type":         "data: {\"type\":\"title_update\",\"title\":\"x\"}\n\n",
		"missing type":         "data: {\"content\":\"x\"}\n\n",
		"null type":            "data: {\"type\":null}\n\n",
		"number content":       "data: {\"type\":\"chunk\",\"content\":1}\n\n",
		"object message":       "data: {\"type\":\"error\",\"message\":{}}\n\n",
		"denials not array":    "data: {\"type\":\"permission_required\",\"denials\":{}}\n\n",
		"tool_input null":      "data: {\"type\":\"permission_required\",\"denials\":[{\"tool_name\":\"a\",\"tool_use_id\":\"b\",\"tool_input\":null}]}\n\n",
		"tool_input missing":   "data: {\"type\":\"permission_required\",\"denials\":[{\"tool_name\":\"a\",\"tool_use_id\":\"b\"}]}\n\n",
		"tool_input array":     "data: {\"type\":\"permission_required\",\"denials\":[{\"tool_name\":\"a\",\"tool_use_id\":\"b\",\"tool_input\":[]}]}\n\n",
		"denial not an object": "data: {\"type\":\"permission_required\",\"denials\":[1]}\n\n",
		"denial null":          "data: {\"type\":\"permission_required\",\"denials\":[null]}\n\n",
		"tool_use_id missing":  "data: {\"type\":\"permission_required\",\"denials\":[{\"tool_name\":\"a\",\"tool_input\":{}}]}\n\n",
		"lone surrogate":       "data: {\"type\":\"chunk\",\"content\":\"\\ud83c\"}\n\n",
		"lone low surrogate":   "data: {\"type\":\"chunk\",\"content\":\"\\udf89x\"}\n\n",
		"invalid UTF-8":        "data: {\"type\":\"chunk\",\"content\":\"\xff\"}\n\n",
		"not an object":        "data: [1]\n\n",
		"split JSON":           "data: {\"type\":\"chunk\",\n\n\"content\":\"x\"}\n\n",
	} {
		if _, err := Decode([]byte(stream)); err == nil {
			t.Errorf("%s: accepted %q", name, stream)
		}
	}
	if _, err := Decode([]byte("data: {\"type\":\"chunk\",\"content\":\"\\ud83c\\udf89 \\\\ud83c\"}\n\n")); err != nil {
		t.Errorf("valid pair / escaped backslash rejected: %v", err)
	}
}

func TestDataTrimsOnlySpacesAndTabs(t *testing.T) {
	d, ok := Data([]byte("data: \t{}\r"))
	if !ok || d != "{}\r" {
		t.Errorf("Data = %q, %v", d, ok)
	}
	if _, ok := Data([]byte(": comment\nretry: 1")); ok {
		t.Error("event without data accepted")
	}
	if strings.Contains(d, "data:") {
		t.Error("prefix kept")
	}
}
