package ovrlrd_test

import (
	"testing"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// A conversation keeps its project once something was kept for it; until
// then a turn may name any.
func TestConversationAccepts(t *testing.T) {
	session := "s"
	for _, c := range []struct {
		name string
		conv ovrlrd.Conversation
		want error
	}{
		{"new", ovrlrd.Conversation{}, nil},
		{"its own", ovrlrd.Conversation{ProjectID: "p", Base: "b", Workspace: "v"}, nil},
		{"another after a checkout", ovrlrd.Conversation{ProjectID: "q", Base: "b"}, ovrlrd.ErrOtherProject},
		{"another before the checkout", ovrlrd.Conversation{ProjectID: "q"}, nil},
		{"none, with files", ovrlrd.Conversation{Workspace: "v"}, ovrlrd.ErrNoProject},
		{"none, with a session", ovrlrd.Conversation{ClaudeSessionID: &session}, ovrlrd.ErrNoProject},
	} {
		if got := c.conv.Accepts("p"); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
		if got := c.conv.Accepts(""); got != nil {
			t.Errorf("%s, naming none: %v", c.name, got)
		}
	}
}
