package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"time"

	"github.com/ovrlrd/cloud/internal/devkit/devenv"
	"github.com/ovrlrd/cloud/internal/devkit/runtimetest"
)

// The cold-start and size rows, after the relay's.
const (
	mInitAuth    = "cold start init p50, auth"
	mInitChat    = "cold start init p50, chat"
	mInitStream  = "cold start init p50, stream"
	mFirstAuth   = "cold start to first response p50, auth"
	mFirstChat   = "cold start to first response p50, chat"
	mFirstStream = "cold start to first response p50, stream"
	mSizeAuth    = "arm64 binary size, auth"
	mSizeChat    = "arm64 binary size, chat"
	mSizeStream  = "arm64 binary size, stream"
)

var (
	coldInitMetrics  = map[string]string{"auth": mInitAuth, "chat": mInitChat, "stream": mInitStream}
	coldFirstMetrics = map[string]string{"auth": mFirstAuth, "chat": mFirstChat, "stream": mFirstStream}
	sizeMetrics      = map[string]string{"auth": mSizeAuth, "chat": mSizeChat, "stream": mSizeStream}

	// Targets: the zip functions (auth, chat) and the stream function's
	// image. The image's size is reported, not targeted.
	initTargets = map[string]time.Duration{"auth": 50 * time.Millisecond, "chat": 50 * time.Millisecond, "stream": 80 * time.Millisecond}
	sizeTargets = map[string]int64{"auth": 20_000_000, "chat": 20_000_000}
	// What each function answers its GET /health event (see
	// runtimetest.ColdStart).
	coldStatus = map[string]int{"auth": 404, "chat": 200, "stream": 404}
)

func init() {
	metrics = append(metrics, mInitAuth, mInitChat, mInitStream, mFirstAuth, mFirstChat, mFirstStream,
		mSizeAuth, mSizeChat, mSizeStream)
}

// coldStartsAndSizes is the last phase: cold starts of the built
// bootstraps under the Runtime Interface Emulator (median of -cold-starts
// each), then the sizes of the arm64 binaries `make build` ships.
func (b *bench) coldStartsAndSizes(ctx context.Context) {
	start := time.Now()
	var cold []string
	for _, fn := range runtimetest.Functions {
		cold = append(cold, coldInitMetrics[fn], coldFirstMetrics[fn])
	}
	if err := ctx.Err(); err != nil {
		b.fail(cold, fmt.Errorf("not run: %w", err))
	} else if b.o.coldStarts == 0 {
		for _, m := range cold {
			b.set(m, "not run (-cold-starts 0)", "", markSkip)
		}
	} else if err := b.coldStarts(ctx); err != nil {
		b.fail(cold, err)
	}
	var sizes []string
	for _, fn := range runtimetest.Functions {
		sizes = append(sizes, sizeMetrics[fn])
	}
	if err := ctx.Err(); err != nil {
		b.fail(sizes, fmt.Errorf("not run: %w", err))
	} else if err := b.sizes(ctx); err != nil {
		b.fail(sizes, err)
	}
	b.notes = append(b.notes, fmt.Sprintf("cold starts and sizes took %.1f s (builds included)", time.Since(start).Seconds()))
}

func (b *bench) coldStarts(ctx context.Context) error {
	if runtime.GOOS != "linux" {
		for _, fn := range runtimetest.Functions {
			b.set(coldInitMetrics[fn], "not measured: the emulator needs Linux", "", markSkip)
			b.set(coldFirstMetrics[fn], "not measured: the emulator needs Linux", "", markSkip)
		}
		return nil
	}
	c, err := runtimetest.NewColdStarter(ctx, runtimetest.ColdStartOptions{
		DynamoDBEndpoint: b.s.Endpoint, Table: b.s.Table, ClaudePath: b.s.CLI,
	})
	if err != nil {
		return err
	}
	defer c.Close()
	inits := map[string][]time.Duration{}
	firsts := map[string][]time.Duration{}
	failed := map[string]error{}
	// Interleaved, so that a drift of the machine touches every function
	// alike.
	for range b.o.coldStarts {
		for _, fn := range runtimetest.Functions {
			if failed[fn] != nil {
				continue
			}
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("not finished: %w", err)
			}
			cs, err := c.ColdStart(ctx, fn)
			if err == nil && cs.Status != coldStatus[fn] {
				err = fmt.Errorf("GET /health answered %d, want %d", cs.Status, coldStatus[fn])
			}
			if err != nil {
				failed[fn] = err
				continue
			}
			inits[fn] = append(inits[fn], cs.Init)
			firsts[fn] = append(firsts[fn], cs.FirstResponse)
		}
	}
	for _, fn := range runtimetest.Functions {
		if err := failed[fn]; err != nil {
			b.fail([]string{coldInitMetrics[fn], coldFirstMetrics[fn]}, err)
			continue
		}
		med, lo, hi := medianRange(inits[fn])
		b.atMost(coldInitMetrics[fn], med, initTargets[fn], fmt.Sprintf(" (min %s, max %s, n=%d)", fmtMS(lo), fmtMS(hi), len(inits[fn])))
		med, lo, hi = medianRange(firsts[fn])
		b.set(coldFirstMetrics[fn], fmtMS(med)+fmt.Sprintf(" (min %s, max %s, n=%d)", fmtMS(lo), fmtMS(hi), len(firsts[fn])), "", markInfo)
	}
	b.notes = append(b.notes, fmt.Sprintf(
		"cold starts: %d per function, interleaved, each a new emulator process (%s@%s) and bootstrap, built for this machine (linux/%s, -trimpath -tags lambda.norpc -ldflags \"-s -w\"), STAGE=dev, the template's environment, secrets from the SSM stand-in, DynamoDB Local; init = the emulator's INIT REPORT, first response = emulator process start to GET /health answered (auth 404, chat 200 after DescribeTable, stream 404 streamed), the emulator's own start-up included",
		b.o.coldStarts, "aws-lambda-rie", runtimetest.EmulatorVersion, runtime.GOARCH))
	return nil
}

// sizes builds the three bootstraps as `make build` does (linux/arm64) into
// a temporary directory and reports their sizes.
func (b *bench) sizes(ctx context.Context) error {
	root, err := devenv.ModuleRoot()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "ovrlrd-bench-size-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	paths, err := runtimetest.BuildBootstraps(ctx, root, dir, "arm64", runtimetest.Functions...)
	if err != nil {
		return err
	}
	for _, fn := range runtimetest.Functions {
		st, err := os.Stat(paths[fn])
		if err != nil {
			return err
		}
		n := st.Size()
		value := fmt.Sprintf("%.1f MB (%d B)", float64(n)/1e6, n)
		target, ok := sizeTargets[fn]
		if !ok {
			b.set(sizeMetrics[fn], value, "— (container image)", markInfo)
			continue
		}
		mark := markPass
		if n >= target {
			mark = markMiss
		}
		b.set(sizeMetrics[fn], value, fmt.Sprintf("< %.0f MB", float64(target)/1e6), mark)
	}
	return nil
}

// medianRange returns the median (the mean of the middle two of an even
// count), the minimum and the maximum.
func medianRange(ds []time.Duration) (med, lo, hi time.Duration) {
	s := slices.Clone(ds)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return 0, 0, 0
	}
	med = s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return med, s[0], s[n-1]
}
