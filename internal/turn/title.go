package turn

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ovrlrd/cloud/internal/claude"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/sandbox"
)

// titleRun is the title of an untitled conversation being made by the CLI, in
// parallel with the turn (contract §6), once the turn's CLI asked the model
// or ended. A
// failure never fails the turn: the conversation just stays untitled. It
// runs in the turn's sandbox, with no tools: its prompt is the user's
// message, which may try to steer it.
type titleRun struct {
	done   chan struct{}
	title  string
	usage  ovrlrd.Usage // read after done
	cancel context.CancelFunc
}

// startTitle starts the title run once asked or ended is closed; its
// timeout runs from then.
func (s *Service) startTitle(ctx context.Context, box *sandbox.Box, message string, asked, ended <-chan struct{}) *titleRun {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	t := &titleRun{done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(t.done)
		select {
		case <-asked:
		case <-ended:
		case <-ctx.Done():
			return
		}
		ctx, cancel := context.WithTimeout(ctx, titleTimeout)
		defer cancel()
		title, err := s.makeTitle(ctx, box, message, &t.usage)
		if err != nil {
			s.log.WarnContext(ctx, "title generation failed", "err", err)
			return
		}
		t.title = title
	}()
	return t
}

// waitAtMost returns the title if it is ready within d, else "".
func (t *titleRun) waitAtMost(d time.Duration) string {
	select {
	case <-t.done:
		return t.title
	case <-time.After(d):
		return ""
	}
}

// stop ends the title run if it is still going, and waits for it.
func (t *titleRun) stop() {
	t.cancel()
	<-t.done
}

func (s *Service) makeTitle(ctx context.Context, box *sandbox.Box, message string, usage *ovrlrd.Usage) (string, error) {
	// A scratch directory: the title run's throwaway session must not land
	// in any conversation's transcript folder.
	scratch := filepath.Join(s.cfg.ConfigRoot, ".title-"+rand.Text())
	defer os.RemoveAll(scratch)
	cfgDir, cwd := filepath.Join(scratch, "config"), filepath.Join(scratch, "cwd")
	if err := box.Own(scratch, cfgDir, cwd); err != nil {
		return "", err
	}
	models, err := s.cfg.Models.Open(ctx)
	if err != nil {
		return "", err
	}
	defer func() {
		models.Close()
		*usage = models.Usage()
	}()
	run, err := claude.Start(ctx, claude.Options{
		Path:       s.cfg.CLIPath,
		Dir:        cwd,
		ConfigDir:  cfgDir,
		Mode:       claude.Text,
		Prompt:     titlePrompt(message),
		Env:        s.env(cfgDir, box, models),
		Credential: box.Credential(),
		ExtraArgs:  []string{"--tools", ""},
	})
	if err != nil {
		return "", err
	}
	exit, err := run.Wait()
	if err != nil {
		return "", err
	}
	if exit.Reason != nil {
		return "", exit.Reason
	}
	return cleanTitle(exit.Output), nil
}

// titlePrompt asks for a title from the first message, cut to 200
// characters as the old server did.
func titlePrompt(message string) string {
	return "Here is the start of a conversation:\n\nuser: " + clipRunes(message, 200) +
		"\n\nGive it a short title of 3 to 6 words. Reply with only the title."
}

// maxTitle is the longest title kept, in characters.
const maxTitle = 60

// cleanTitle trims the CLI's answer: KEEP or nothing means no title; one pair
// of quotes goes; a long title is cut to 57 characters and "...".
func cleanTitle(out string) string {
	t := strings.TrimSpace(out)
	if t == "" || t == "KEEP" {
		return ""
	}
	t = strings.TrimPrefix(strings.TrimPrefix(t, `"`), "'")
	t = strings.TrimSuffix(strings.TrimSuffix(t, `"`), "'")
	t = strings.TrimSpace(strings.Join(strings.Fields(t), " "))
	if utf8.RuneCountInString(t) > maxTitle {
		t = clipRunes(t, maxTitle-3) + "..."
	}
	return t
}

func clipRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}
