package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"time"

	"github.com/ovrlrd/cloud/internal/config"
	"github.com/ovrlrd/cloud/internal/devkit/devenv"
	"github.com/ovrlrd/cloud/internal/devkit/runtimetest"
)

var functions = runtimetest.Functions

func initRow(fn string) string { return "cold start init p50, " + fn }
func sizeRow(fn string) string { return "arm64 binary size, " + fn }

var (
	// The zip functions' targets; the stream function ships as an image.
	initTargets = map[string]time.Duration{"auth": 50 * time.Millisecond, "chat": 50 * time.Millisecond, "stream": 80 * time.Millisecond}
	sizeTargets = map[string]int64{"auth": 20_000_000, "chat": 20_000_000}
	// What each function answers its GET /health event (runtimetest.ColdStart).
	coldStatus = map[string]int{"auth": 404, "chat": 200, "stream": 404}
)

// emulated runs each function's bootstrap under the emulator, in a
// process of its own as Lambda runs it: its cold starts, then its resident
// set.
func (b *bench) emulated(ctx context.Context) error {
	if runtime.GOOS != "linux" {
		for _, fn := range functions {
			b.set(initRow(fn), "not measured: the emulator needs Linux", "", markSkip)
		}
		for _, m := range rssRows {
			b.set(m, "not measured: the emulator needs Linux", "", markSkip)
		}
		return nil
	}
	start := time.Now()
	c, err := runtimetest.NewColdStarter(ctx, runtimetest.ColdStartOptions{
		DynamoDBEndpoint: b.s.endpoint, Table: b.s.table, ClaudePath: b.s.cli,
		JWTKeys: b.s.jwtKeys, APIKey: b.s.apiKey, S3Endpoint: b.s.s3.URL, Bucket: config.DefaultLocalBucket,
	})
	if err != nil {
		return err
	}
	defer c.Close()
	if err := b.coldStarts(ctx, c); err != nil {
		return err
	}
	b.notes = append(b.notes, fmt.Sprintf(
		"cold starts: %d per function, interleaved, each a new emulator process (aws-lambda-rie@%s) and bootstrap, built for this machine (linux/%s, -trimpath -tags lambda.norpc -ldflags \"-s -w\"), STAGE=dev, the template's environment, secrets from the SSM stand-in, DynamoDB Local; init = the emulator's INIT REPORT, then GET /health answered (auth 404, chat 200 after DescribeTable, stream 404 streamed); %.1f s with the builds",
		b.o.coldStarts, runtimetest.EmulatorVersion, runtime.GOARCH, time.Since(start).Seconds()))
	return b.functionRSS(ctx, c)
}

// coldStarts starts each function's bootstrap, a new emulator process each
// time, o.coldStarts times, interleaved so that a drift of the machine
// touches every function alike.
func (b *bench) coldStarts(ctx context.Context, c *runtimetest.ColdStarter) error {
	inits := map[string][]time.Duration{}
	for range b.o.coldStarts {
		for _, fn := range functions {
			cs, err := c.ColdStart(ctx, fn)
			if err == nil && cs.Status != coldStatus[fn] {
				err = fmt.Errorf("GET /health answered %d, want %d", cs.Status, coldStatus[fn])
			}
			if err != nil {
				return fmt.Errorf("%s: %w", fn, err)
			}
			inits[fn] = append(inits[fn], cs.Init)
		}
	}
	for _, fn := range functions {
		// The median: the mean of the middle two of an even count.
		s := slices.Sorted(slices.Values(inits[fn]))
		n := len(s)
		med := (s[(n-1)/2] + s[n/2]) / 2
		b.atMost(initRow(fn), med, initTargets[fn], "",
			fmt.Sprintf("%s (min %s, max %s, n=%d)", fmtMS(med), fmtMS(s[0]), fmtMS(s[n-1]), n))
	}
	return nil
}

// sizes builds the bootstraps as `make build` does (linux/arm64).
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
	paths, err := runtimetest.BuildBootstraps(ctx, root, dir, "arm64", functions...)
	if err != nil {
		return err
	}
	for _, fn := range functions {
		st, err := os.Stat(paths[fn])
		if err != nil {
			return err
		}
		value := fmt.Sprintf("%.1f MB (%d B)", float64(st.Size())/1e6, st.Size())
		if target, ok := sizeTargets[fn]; ok {
			b.set(sizeRow(fn), value, fmt.Sprintf("< %.0f MB", float64(target)/1e6), judge(st.Size() < target, markMiss))
		} else {
			b.set(sizeRow(fn), value, "— (container image)", markInfo)
		}
	}
	return nil
}
