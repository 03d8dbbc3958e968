package api_test

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ovrlrd/cloud/internal/api"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

type sample struct {
	Name  string   `json:"name"`
	Count int      `json:"count"`
	Tags  []string `json:"tags"`
}

func (s *sample) Validate() error {
	if s.Name == "" {
		return ovrlrd.Errorf(ovrlrd.EINVALID, "Field \"name\" is required.")
	}
	return nil
}

func TestDecode(t *testing.T) {
	cases := []struct {
		name, body, code, msg string
	}{
		{"ok", `{"name":"a","count":2,"tags":["x"]}`, "", ""},
		{"ok with whitespace after", "{\"name\":\"a\"}\n  ", "", ""},
		{"empty", ``, ovrlrd.EINVALID, "Request body is empty; a JSON object is required."},
		{"malformed", `{"name":`, ovrlrd.EINVALID, "Request body is not valid JSON."},
		{"syntax", `{"name" "a"}`, ovrlrd.EINVALID, "Request body is not valid JSON."},
		{"unknown field", `{"name":"a","admin":true}`, ovrlrd.EINVALID, `Unknown field "admin".`},
		{"wrong type", `{"name":"a","count":"2"}`, ovrlrd.EINVALID, `Field "count" must be of type number.`},
		{"wrong element type", `{"name":"a","tags":[1]}`, ovrlrd.EINVALID, `Field "tags" must be of type string.`},
		{"not an object", `[1,2]`, ovrlrd.EINVALID, "Request body must be a JSON object."},
		{"null fields fail validation", `{"name":null}`, ovrlrd.EINVALID, `Field "name" is required.`},
		{"trailing value", `{"name":"a"}{"name":"b"}`, ovrlrd.EINVALID, "Request body must contain a single JSON object."},
		{"trailing garbage", `{"name":"a"} x`, ovrlrd.EINVALID, "Request body must contain a single JSON object."},
		{"too large", `{"name":"` + strings.Repeat("a", 1<<20) + `"}`, ovrlrd.ETOOLARGE, "Request body is too large (limit 1048576 bytes)."},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest("POST", "/x", strings.NewReader(c.body))
			err := api.Decode(req, &sample{})
			if got := ovrlrd.ErrorCode(err); got != c.code {
				t.Fatalf("code %q (%v), want %q", got, err, c.code)
			}
			if c.code != "" && ovrlrd.ErrorMessage(err) != c.msg {
				t.Fatalf("message %q, want %q", ovrlrd.ErrorMessage(err), c.msg)
			}
		})
	}
}

func TestStatusOf(t *testing.T) {
	want := map[string]int{
		ovrlrd.EINVALID: 400, ovrlrd.EUNAUTHORIZED: 401, ovrlrd.EFORBIDDEN: 403, ovrlrd.ENOTFOUND: 404,
		ovrlrd.ECONFLICT: 409, ovrlrd.EGONE: 410, ovrlrd.ETOOLARGE: 413, ovrlrd.ERATELIMIT: 429, ovrlrd.EUNAVAILABLE: 503, ovrlrd.EINTERNAL: 500,
	}
	for code, status := range want {
		if got := api.StatusOf(ovrlrd.Errorf(code, "x")); got != status {
			t.Errorf("%s: %d, want %d", code, got, status)
		}
	}
	if got := api.StatusOf(errString("driver exploded")); got != 500 {
		t.Errorf("plain error: %d", got)
	}
	if msg := ovrlrd.ErrorMessage(errString("driver exploded")); msg != "Internal server error" {
		t.Errorf("plain error leaks: %q", msg)
	}
}

type errString string

func (e errString) Error() string { return string(e) }
