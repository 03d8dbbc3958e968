package main

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/transcript"
)

// localSession is one transcript as sessions lists it.
type localSession struct {
	id, slug string
	modified time.Time
	sess     transcript.Session // zero unless problem is ""
	problem  string             // why it could not be read
}

// listed is how many sessions the list parses, newest first, unless
// --all: each parse reads a whole transcript, up to 100 MB.
const listed = 50

// list lists the sessions, newest first: all of them looked at (Lstat),
// the newest limit (all for limit < 0) read, and how many were left
// out. One that cannot be read is listed with the reason; a link is
// listed as refused.
func (p *projects) list(ctx context.Context, limit int) (out []localSession, left int, err error) {
	dirs, others, err := p.slugs()
	if err != nil {
		return nil, 0, err
	}
	for _, o := range others {
		out = append(out, localSession{slug: o.name, problem: o.why})
	}
	var found []localSession
	for _, slug := range dirs {
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
		found = append(found, p.listSlug(slug)...)
	}
	slices.SortStableFunc(found, func(a, b localSession) int { return b.modified.Compare(a.modified) })
	if limit >= 0 && len(found) > limit {
		found, left = found[:limit], len(found)-limit
	}
	for i := range found {
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
		if s := &found[i]; s.problem == "" {
			var err error
			if s.sess, err = p.readSession(s.slug, s.id); err != nil {
				s.problem = problem(err)
			}
		}
	}
	out = append(out, found...)
	slices.SortStableFunc(out, func(a, b localSession) int { return b.modified.Compare(a.modified) })
	return out, left, nil
}

// listSlug looks at the sessions of one slug folder, unread.
func (p *projects) listSlug(slug string) []localSession {
	dir, err := p.openSlug(slug)
	if err != nil {
		return []localSession{{slug: slug, problem: problem(err)}}
	}
	defer dir.Close()
	entries, err := readDir(dir)
	if err != nil {
		return []localSession{{slug: slug, problem: problem(err)}}
	}
	var out []localSession
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), ".jsonl")
		if !ok || !transcript.IsSessionID(id) {
			continue
		}
		s := localSession{id: id, slug: slug}
		if fi, err := dir.Lstat(e.Name()); err != nil {
			s.problem = problem(err)
		} else {
			s.modified = fi.ModTime()
		}
		out = append(out, s)
	}
	return out
}

// readSession parses one transcript, counting every message: the server
// decides how many it takes.
func (p *projects) readSession(slug, id string) (transcript.Session, error) {
	dir, err := p.openSlug(slug)
	if err != nil {
		return transcript.Session{}, err
	}
	defer dir.Close()
	name := id + ".jsonl"
	f, _, err := p.openTranscript(dir, slug, name)
	if err != nil {
		return transcript.Session{}, err
	}
	defer f.Close()
	data, err := readAll(f, p.name(slug, name))
	if err != nil {
		return transcript.Session{}, err
	}
	return transcript.Parse(bytes.NewReader(data), id, math.MaxInt32)
}

// problem is err as a listing shows it on the entry's row: a refusal by
// its reason, a transcript's by its own message ("Line 3 of the transcript
// is not valid JSON."), else the error.
func problem(err error) string {
	if r, ok := errors.AsType[*refusal](err); ok {
		return "it " + r.why
	}
	return transcriptProblem(err)
}

// sessionsCommand lists the sessions of this machine, newest first.
func sessionsCommand(ctx context.Context, args []string, sys system, stdout, stderr io.Writer) error {
	var c common
	fs := flags("sessions", &c, stderr)
	all := fs.Bool("all", false, fmt.Sprintf("read every session, not only the newest %d", listed))
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := positionals(fs, pos, 0, "no arguments"); err != nil {
		return err
	}
	p, err := openSessions(c.claudeDir, sys)
	if err != nil {
		return err
	}
	defer p.Close()
	limit := listed
	if *all {
		limit = -1
	}
	list, left, err := p.list(ctx, limit)
	if err != nil {
		return err
	}
	if len(list) == 0 {
		fmt.Fprintf(stdout, "No sessions in %s.\n", printable(p.path))
		return nil
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "SESSION\tDATE\tMESSAGES\tPROJECT\tFIRST PROMPT")
	for _, s := range list {
		fmt.Fprintln(w, row(s))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if left > 0 {
		fmt.Fprintf(stderr, "%d older sessions not shown (--all lists them).\n", left)
	}
	return nil
}

// row is one session's line: the project is the folder the session ran
// in, or, when the transcript could not be read, its slug folder.
func row(s localSession) string {
	date := "-"
	if !s.modified.IsZero() {
		date = s.modified.Local().Format("2006-01-02 15:04")
	}
	id := cmp.Or(s.id, "-")
	if s.problem != "" {
		return strings.Join([]string{id, date, "-", oneLine(s.slug, 200), "(not read: " + oneLine(s.problem, 100) + ")"}, "\t")
	}
	var first string
	for _, m := range s.sess.Messages {
		if m.Role == ovrlrd.RoleUser {
			first = m.Content
			break
		}
	}
	project := cmp.Or(s.sess.Cwd, s.slug)
	return strings.Join([]string{id, date, fmt.Sprint(len(s.sess.Messages)), oneLine(project, 200), oneLine(first, 60)}, "\t")
}

// oneLine is s on one line (its runs of white space made one space, tabs
// included, which would break the table), printable, cut to max
// characters.
func oneLine(s string, max int) string {
	s = printable(strings.Join(strings.Fields(s), " "))
	if utf8.RuneCountInString(s) > max {
		s = string([]rune(s)[:max-1]) + "…"
	}
	return s
}
