package claude_test

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/ovrlrd/cloud/internal/claude"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// A streaming turn: start the CLI, handle each event, then wait.
func ExampleStart() {
	// Once, at start-up.
	if err := claude.BecomeSubreaper(); err != nil {
		slog.Warn("not a subreaper", "err", err)
	}

	// The run's total deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 14*time.Minute)
	defer cancel()
	r, err := claude.Start(ctx, claude.Options{
		Path:         "claude",
		Dir:          "/tmp/ovrlrd/work/conv-1",
		ConfigDir:    "/tmp/ovrlrd/claude",
		AllowedTools: []string{"Read", "Bash(git status:*)"},
		Resume:       "",
		Prompt:       "Why does the build fail?",
		Env: claude.Environment(claude.Env{
			Home: "/tmp/ovrlrd/home", ConfigDir: "/tmp/ovrlrd/claude",
			Provider: ovrlrd.Anthropic, MaxRetries: 3,
			// A loopback proxy holds the real key; the CLI only gets a
			// token valid for this turn.
			BaseURL: "http://127.0.0.1:7777/t/<turn token>", Token: "<turn token>",
		}),
		IdleTimeout: 2 * time.Minute,
	})
	if err != nil {
		slog.Error("claude", "err", err) // ErrNotFound, ErrNotExecutable: the turn's error event
		return
	}
	for ev := range r.Events() {
		switch {
		case ev.Type == "system" && ev.Subtype == "init":
			_ = ev.SessionID // the id the next turn resumes
		case ev.Type == "assistant":
			_ = ev.Blocks // text chunks, tool starts
		case ev.Result != nil:
			_ = ev.Result // complete, error or permission_required
		}
		// On a client's stop: r.Stop(reason) (from any goroutine).
	}
	exit, err := r.Wait()
	if errors.Is(exit.Reason, claude.ErrTimeout) || errors.Is(exit.Reason, claude.ErrIdle) {
		_ = "Request timed out"
	}
	if err != nil {
		slog.Warn("claude ended", "err", err, "code", exit.Code, "bad_lines", exit.BadLines,
			"stderr", claude.Redact(exit.Stderr))
	}
}
