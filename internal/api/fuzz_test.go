package api

import (
	"bytes"
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// bodies are a fresh value of every route's request body.
var bodies = map[string]func() Validator{
	"POST /auth":                            func() Validator { return &signInBody{} },
	"POST /chat/{id}/events":                func() Validator { return &eventBody{} },
	"POST /devices":                         func() Validator { return &deviceBody{} },
	"POST /chat/stream":                     func() Validator { return &streamBody{} },
	"POST /chat (buffered)":                 func() Validator { return &streamBody{} },
	"POST /chat/{id}/stream":                func() Validator { return &streamBody{} },
	"POST /chat/{id}/approvals/{requestId}": func() Validator { return &approvalBody{} },
}

// The strict decoder of every route: whatever arrives, it never panics and
// answers only 400 or 413 as a domain error, or a body that validated.
func FuzzDecodeBodies(f *testing.F) {
	for _, seed := range []string{
		``, `{}`, `null`, `[]`, `{"identityToken":"a.b.c"}`, `{"identityToken":"x","deviceToken":"` + string(bytes.Repeat([]byte("ab"), 32)) + `"}`,
		`{"role":"system","content":"✗ Denied: Bash"}`, `{"content":""}`, `{"deviceToken":"ab","environment":"staging"}`,
		`{"message":"hi","allowedTools":["Bash","Bash"]}`, `{"message":"hi"} {}`, `{"message":1}`, `{"MESSAGE":"case"}`,
		"{\"message\":\"\\ud800\"}", `{"message":"hi","approvals":"live"}`, `{"approvals":true}`, `{"decision":"deny","message":"no"}`, `{"decision":null}`,
		`{"a":` + string(bytes.Repeat([]byte("["), 10000)),
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for route, fresh := range bodies {
			req := httptest.NewRequest("POST", "/x", bytes.NewReader(data))
			err := Decode(req, fresh())
			if err == nil {
				continue
			}
			var e *ovrlrd.Error
			if !errors.As(err, &e) {
				t.Fatalf("%s: not a domain error: %v", route, err)
			}
			if s := StatusOf(err); s != 400 && s != 413 {
				t.Fatalf("%s: status %d for %q", route, s, data)
			}
			if e.Message == "" {
				t.Fatalf("%s: empty message", route)
			}
		}
	})
}
