package app_test

import (
	"testing"

	"github.com/ovrlrd/cloud/internal/devkit/anthropicfake"
	"github.com/ovrlrd/cloud/internal/devkit/claudetest"
)

// With a model configured (ClaudeModel, the only model a scoped Bedrock
// grant allows), every request of a turn names it: the turn's own, the
// CLI's background ones and the title run's. A request for any other model
// would be refused by that role.
func TestConfiguredModelIsTheOnlyOne(t *testing.T) {
	const pinned = "claude-pinned-test-model"
	model := anthropicfake.New(anthropicfake.Say("an answer from the pinned model"))
	t.Cleanup(model.Close)
	s := newStack(t,
		"CLAUDE_PATH", claudetest.RealCLI(t),
		"ANTHROPIC_BASE_URL", model.URL,
		"ANTHROPIC_API_KEY", "sk-ant-test-key",
		"ANTHROPIC_MODEL", pinned,
	)
	tok, _ := s.signIn(t, uniqueSub("pinned"), "")
	r, evs := s.stream(t, "/chat/stream", `{"message":"hello"}`, tok)
	if r.status != 200 || len(evs) == 0 || evs[len(evs)-1].Type != "complete" {
		t.Fatalf("turn: %d %s %+v", r.status, r.body, evs)
	}
	reqs := model.Requests()
	if len(reqs) == 0 {
		t.Fatal("the turn made no model request")
	}
	for _, req := range reqs {
		if req.Model != pinned {
			t.Errorf("a request asked for %q, want only %q", req.Model, pinned)
		}
	}
	t.Logf("%d model requests, all for %s", len(reqs), pinned)
}
