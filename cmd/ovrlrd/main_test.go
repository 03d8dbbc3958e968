package main

import (
	"context"
	"flag"
	"io"
	"slices"
	"testing"
)

// A "--" given as a flag's value is that value, not the end of the flags.
func TestParseDashDashValue(t *testing.T) {
	for _, tc := range []struct {
		args, pos []string
		title     string
	}{
		{[]string{"--title", "--", "id"}, []string{"id"}, "--"},
		{[]string{"id", "--title", "--"}, []string{"id"}, "--"},
		{[]string{"--title", "--", "id", "--all"}, []string{"id"}, "--"},
		{[]string{"--title", "--", "id", "--title", "x"}, []string{"id"}, "x"},
		{[]string{"--title", "x", "--", "--title"}, []string{"--title"}, "x"},
		{[]string{"--title=--", "--", "-x"}, []string{"-x"}, "--"},
		{[]string{"--all", "--", "--title"}, []string{"--title"}, ""},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		title := fs.String("title", "", "")
		fs.Bool("all", false, "")
		pos, err := parse(fs, tc.args)
		if err != nil || !slices.Equal(pos, tc.pos) || *title != tc.title {
			t.Errorf("%q: %q, title %q, %v", tc.args, pos, *title, err)
		}
	}
}

// Once the first interrupt has cancelled the run, the next one is the
// system's own: it ends the process.
func TestReleaseOnDone(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	releaseOnDone(ctx, func() { close(stopped) })
	cancel()
	<-stopped
}
