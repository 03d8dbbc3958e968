package main

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
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

// list reads every session, newest first. One that cannot be read is
// listed with the reason; a link is listed as refused.
func (p *projects) list() ([]localSession, error) {
	dirs, links, err := p.slugs()
	if err != nil {
		return nil, err
	}
	var out []localSession
	for _, slug := range links {
		out = append(out, localSession{slug: slug, problem: "it is a symbolic link, not followed"})
	}
	for _, slug := range dirs {
		out = append(out, p.listSlug(slug)...)
	}
	slices.SortStableFunc(out, func(a, b localSession) int { return b.modified.Compare(a.modified) })
	return out, nil
}

// listSlug reads the sessions of one slug folder.
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
		if !ok || !uuidPattern.MatchString(id) {
			continue
		}
		s := localSession{id: id, slug: slug}
		if fi, err := dir.Lstat(e.Name()); err == nil {
			s.modified = fi.ModTime()
		}
		s.sess, err = p.readSession(dir, slug, e.Name(), id)
		if err != nil {
			s.problem = problem(err)
		}
		out = append(out, s)
	}
	return out
}

// readSession parses one transcript, counting every message: the server
// decides how many it takes.
func (p *projects) readSession(dir *os.Root, slug, name, id string) (transcript.Session, error) {
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
func sessionsCommand(args []string, sys system, stdout, stderr io.Writer) error {
	var c common
	fs := flags("sessions", &c, stderr)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := positionals(fs, pos, 0, "no arguments"); err != nil {
		return err
	}
	dir, err := claudeDir(c.claudeDir, sys)
	if err != nil {
		return err
	}
	p, err := openProjects(dir)
	if err != nil {
		return err
	}
	defer p.Close()
	list, err := p.list()
	if err != nil {
		return err
	}
	if len(list) == 0 {
		fmt.Fprintf(stdout, "No sessions in %s.\n", p.path)
		return nil
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "SESSION\tDATE\tMESSAGES\tPROJECT\tFIRST PROMPT")
	for _, s := range list {
		fmt.Fprintln(w, row(s))
	}
	return w.Flush()
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
		return strings.Join([]string{id, date, "-", s.slug, "(not read: " + oneLine(s.problem, 100) + ")"}, "\t")
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
// included, which would break the table), cut to max characters.
func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) > max {
		s = string([]rune(s)[:max-1]) + "…"
	}
	return s
}
