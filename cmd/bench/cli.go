package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"time"

	"github.com/ovrlrd/cloud/internal/claude"
	"github.com/ovrlrd/cloud/internal/devkit/claudetest"
	"github.com/ovrlrd/cloud/internal/devkit/harness"
)

// The CLI runner's own rows: claude.Start and its Events, with no turn, no
// HTTP and no client around them.
const (
	mCLIDelivery50 = "CLI line delivery p50"
	mHugeLineAlloc = "allocated skipping a 20 MiB line"
)

func init() {
	// Before the last relay row, which is taken once everything stopped.
	metrics = slices.Insert(metrics, slices.Index(metrics, mProcessesAfter), mCLIDelivery50, mHugeLineAlloc)
}

// cliRunner times what internal/claude adds between the CLI's stdout and
// Events: the delay of each line at the steady rate, and what a line far
// longer than MaxLine costs to skip.
func (b *bench) cliRunner(ctx context.Context) error {
	dir, err := os.MkdirTemp("", "ovrlrd-bench-cli-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	opts := func(script string) claude.Options {
		return claude.Options{
			Path:      b.s.CLI,
			Dir:       filepath.Join(dir, "work"),
			ConfigDir: filepath.Join(dir, "config"),
			Prompt:    script,
			Env:       claude.Environment(claude.Env{Path: "/usr/bin:/bin", Home: dir}),
		}
	}

	var lat harness.Histogram
	r, err := claude.Start(ctx, opts(claudetest.Script("rate", "n", b.o.relayN, "rate", b.o.relayRate)))
	if err != nil {
		return err
	}
	for ev := range r.Events() {
		now := time.Now().UnixNano()
		if len(ev.Blocks) == 1 {
			if ts, err := strconv.ParseInt(ev.Blocks[0].Text, 10, 64); err == nil {
				lat.Add(time.Duration(now - ts))
			}
		}
	}
	if _, err := r.Wait(); err != nil {
		return err
	}
	if n := lat.Count(); n != uint64(b.o.relayN) {
		return fmt.Errorf("%d of %d lines arrived", n, b.o.relayN)
	}
	b.atMost(mCLIDelivery50, lat.Quantile(0.5), 20*time.Millisecond,
		fmt.Sprintf(" (p99 %s, max %s, %d lines @ %d/s)", fmtMS(lat.Quantile(0.99)), fmtMS(lat.Max()), b.o.relayN, b.o.relayRate))

	// Process-wide, as a test would see it: the service is idle meanwhile.
	huge := opts(claudetest.Script("garbage"))
	huge.MaxLine = 1 << 20
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if r, err = claude.Start(ctx, huge); err != nil {
		return err
	}
	for range r.Events() {
	}
	exit, err := r.Wait()
	runtime.ReadMemStats(&after)
	if err != nil {
		return err
	}
	if exit.HugeLines != 1 {
		return fmt.Errorf("%d huge lines skipped, want 1", exit.HugeLines)
	}
	alloc := int64(after.TotalAlloc - before.TotalAlloc)
	mark := markPass
	if alloc > 6<<20 {
		mark = markMiss
	}
	b.set(mHugeLineAlloc, fmtMB(alloc)+" (MaxLine 1 MiB)", "≤ "+fmtMB(6<<20), mark)
	return nil
}
