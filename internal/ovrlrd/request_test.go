package ovrlrd_test

import (
	"strings"
	"testing"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

func TestRequestValidation(t *testing.T) {
	allowList := []string{"Bash", "Read", "Grep(src:*)"}
	tools := make([]string, 51)
	for i := range tools {
		tools[i] = "Read"
	}
	req := func(msg string, tools ...string) ovrlrd.TurnRequest {
		return ovrlrd.TurnRequest{UserID: "u", Message: msg, AllowedTools: tools}
	}
	cases := []struct {
		name string
		req  ovrlrd.TurnRequest
		want string
	}{
		{"empty", req(""), `Field "message" is required.`},
		{"not UTF-8", req("\xff"), `Field "message" must be valid UTF-8.`},
		{"too long", req(strings.Repeat("✓", ovrlrd.MaxMessage+1)), `Field "message" must be at most 100000 characters.`},
		{"tool outside the list", req("hi", "Write"), `Tool "Write" is not allowed on this server.`},
		{"pattern of a listed tool", req("hi", "Read(/etc/*)"), ""},
		{"pattern listed verbatim", req("hi", "Grep(src:*)"), ""},
		{"other pattern of an unlisted tool", req("hi", "Grep(etc:*)"), `Tool "Grep(etc:*)" is not allowed on this server.`},
		{"a space splits the CLI argument", req("hi", "Bash(git log:*)"), `Tool "Bash(git log:*)" is not allowed on this server.`},
		{"space in a name", req("hi", "Bash Write"), `Tool "Bash Write" is not allowed on this server.`},
		{"unbalanced pattern", req("hi", "Bash(x"), `Tool "Bash(x" is not allowed on this server.`},
		{"too many", req("hi", tools...), `Field "allowedTools" may hold at most 50 tools.`},
		{"long name, clipped", req("hi", strings.Repeat("é", 80)), `Tool "` + strings.Repeat("é", 50) + `…" is not allowed on this server.`},
	}
	for _, c := range cases {
		err := c.req.Check(allowList)
		if c.want == "" {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		if ovrlrd.ErrorMessage(err) != c.want {
			t.Errorf("%s: got %v, want %q", c.name, err, c.want)
		}
	}
}

// An approval retry stores what was approved, not the prompt again, and
// hands the CLI each approved tool once.
func TestOpeningAndTools(t *testing.T) {
	retry := ovrlrd.TurnRequest{Message: "hi", AllowedTools: []string{"Read", "Bash", "Read"}}
	if o := retry.Opening(); o.Role != ovrlrd.RoleSystem || o.Content != "✓ Approved: Read, Bash, Read" {
		t.Fatalf("approval retry opens with %+v", o)
	}
	if got := strings.Join(retry.Tools(), " "); got != "Read Bash" {
		t.Fatalf("tools %q", got)
	}
	if o := (ovrlrd.TurnRequest{Message: "hi"}).Opening(); o.Role != ovrlrd.RoleUser || o.Content != "hi" {
		t.Fatalf("a prompt opens with %+v", o)
	}
}
