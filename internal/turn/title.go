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
// or ended. A failure never fails the turn: the conversation just stays
// untitled. It runs in the turn's sandbox, with no tools: its prompt is the
// user's message, which may try to steer it.
type titleRun struct {
	done   chan struct{}
	ended  chan struct{} // closed once the turn ended with its title to keep
	title  string
	usage  ovrlrd.Usage // read after done
	cancel context.CancelFunc
}

// startTitle starts the title run once asked is closed, or the turn ended
// (see finish); its timeout runs from then.
func (s *Service) startTitle(ctx context.Context, box *sandbox.Box, message string, asked <-chan struct{}) *titleRun {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	t := &titleRun{done: make(chan struct{}), ended: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(t.done)
		select {
		case <-asked:
		case <-t.ended:
		case <-ctx.Done():
			return
		}
		ctx, cancel := context.WithTimeout(ctx, titleTimeout)
		defer cancel()
		var err error
		if t.title, err = s.makeTitle(ctx, box, message, &t.usage); err != nil {
			s.log.WarnContext(ctx, "title generation failed", "err", err)
		}
	}()
	return t
}

// finish ends the title run and waits for it. If keep, the run starts now
// if it has not yet (the turn's CLI never asked the model), and its title
// is returned if it is ready within titleGrace. Without keep, a run that
// has not started never starts its CLI.
func (t *titleRun) finish(keep bool) string {
	title := ""
	if keep {
		close(t.ended)
		select {
		case <-t.done:
			title = t.title
		case <-time.After(titleGrace):
		}
	}
	t.cancel()
	<-t.done
	return title
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
		Env:        s.env(cfgDir, box, models),
		Credential: box.Credential(),
		ExtraArgs:  []string{"--tools", ""},
		// A title from the first message, cut to 200 characters as the old
		// server did.
		Prompt: "Here is the start of a conversation:\n\nuser: " + ovrlrd.ClipRunes(message, 200) +
			"\n\nGive it a short title of 3 to 6 words. Reply with only the title.",
	})
	if err != nil {
		return "", err
	}
	// Wait's error is exit.Reason when the run was stopped.
	exit, err := run.Wait()
	if err != nil {
		return "", err
	}
	return cleanTitle(exit.Output), nil
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
		t = ovrlrd.ClipRunes(t, maxTitle-3) + "..."
	}
	return t
}
