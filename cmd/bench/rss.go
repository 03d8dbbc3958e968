package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/ovrlrd/cloud/internal/devkit/claudetest"
	"github.com/ovrlrd/cloud/internal/devkit/devenv"
	"github.com/ovrlrd/cloud/internal/devkit/runtimetest"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// turnEvents is the size of the streamed turn the stream function's
// resident set is read during.
const turnEvents = 2000

func rssRow(fn string) string { return "RSS idle, " + fn + " bootstrap" }

var (
	mRSSTurn    = fmt.Sprintf("RSS, %d-event turn, stream bootstrap", turnEvents)
	mRSSTurnCLI = fmt.Sprintf("RSS, %d-event turn, stream + CLI", turnEvents)
	rssRows     = []string{rssRow("auth"), rssRow("chat"), rssRow("stream"), mRSSTurn, mRSSTurnCLI}
	rssTargets  = map[string]int64{"auth": 20 << 20, "chat": 20 << 20, "stream": 30 << 20}
)

// functionRSS reads each function's resident set from /proc, its bootstrap
// alone in its own process under the emulator: idle after its init and one
// request (GET /health), and for stream during a streamed turn too.
func (b *bench) functionRSS(ctx context.Context, c *runtimetest.ColdStarter) error {
	for _, fn := range functions {
		i, _, err := c.Start(ctx, fn)
		if err != nil {
			return err
		}
		m := readMem(strconv.Itoa(i.Pid))
		b.memAtMost(rssRow(fn), m.rss, rssTargets[fn], fmt.Sprintf("anon %s + file %s; peak %s",
			fmtMB(m.anon), fmtMB(m.file), fmtMB(m.hwm)))
		if fn == "stream" {
			err = b.turnRSS(ctx, i)
		}
		if output := i.Stop(); err != nil {
			return fmt.Errorf("%s: %w\n%s", fn, err, output[max(0, len(output)-2000):])
		}
	}
	b.notes = append(b.notes, fmt.Sprintf(`RSS of a bootstrap: its own process under the emulator, read from /proc/<pid>/status (anon is heap and stacks, file the executable's pages); "peak" is its VmHWM since it started. During the turn (%d events at %d/s, a new conversation, its title run too): the Go process's VmHWM, reset just before; "+ CLI" the largest sum of its RSS and that of every process below it (the CLI runs; a child not yet exec'd shares the bootstrap's memory and is left out), sampled every 2 ms.`,
		turnEvents, relayRate))
	return nil
}

// turnRSS streams a turn of turnEvents chunks in a new conversation
// through the stream function's bootstrap, and records its resident set
// meanwhile, without and with the processes below it.
func (b *bench) turnRSS(ctx context.Context, i *runtimetest.Instance) error {
	event, err := b.turnEvent(ctx)
	if err != nil {
		return err
	}
	pid := strconv.Itoa(i.Pid)
	self, _ := os.Readlink("/proc/" + pid + "/exe")
	peakOf := resetPeak(pid)
	sampling, stopSampling := context.WithCancel(ctx)
	var withCLI, cli int64
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-sampling.Done():
				return
			case <-tick.C:
			}
			var below int64
			for _, p := range descendants(i.Pid) {
				// A child between fork and exec still shares the
				// bootstrap's memory: its RSS is the bootstrap's.
				if exe, _ := os.Readlink("/proc/" + strconv.Itoa(p) + "/exe"); exe != self {
					below += readMem(strconv.Itoa(p)).rss
				}
			}
			withCLI, cli = max(withCLI, readMem(pid).rss+below), max(cli, below)
		}
	})
	call, cancel := context.WithTimeout(ctx, time.Minute)
	answer, err := i.Invoke(call, event)
	cancel()
	stopSampling()
	wg.Wait()
	// A streamed answer: a JSON prelude, eight NUL bytes, the body.
	prelude, body, _ := bytes.Cut(answer, make([]byte, 8))
	var p struct{ StatusCode int }
	var t Turn
	if err == nil && json.Unmarshal(prelude, &p) == nil {
		err = t.read(bytes.NewReader(body), nil)
	}
	if err != nil || p.StatusCode != 200 || t.Chunks != turnEvents || t.Terminal != ovrlrd.OutcomeComplete {
		return fmt.Errorf("the turn: %v; %d chunks, %s %q: %.300q", err, t.Chunks, t.Terminal, t.Message, answer)
	}
	b.memAtMost(mRSSTurn, peakOf(), 40<<20, "VmHWM")
	b.set(mRSSTurnCLI, fmt.Sprintf("%s (the processes below it: up to %s)", fmtMB(withCLI), fmtMB(cli)), "", markInfo)
	return nil
}

// turnEvent is the stream function's Function URL event for a new
// conversation's turn at the relay's rate, from a user of its own: the
// bench's has spent the deployed turn limit.
func (b *bench) turnEvent(ctx context.Context) ([]byte, error) {
	root, err := devenv.ModuleRoot()
	if err != nil {
		return nil, err
	}
	var ev events.LambdaFunctionURLRequest
	raw, err := os.ReadFile(filepath.Join(root, "events", "stream-new.json"))
	if err == nil {
		err = json.Unmarshal(raw, &ev)
	}
	g, signInErr := b.s.signIn(ctx, "bench.rss")
	if err = cmp.Or(err, signInErr); err != nil {
		return nil, err
	}
	body, _ := json.Marshal(map[string]string{"message": claudetest.Script("rate", "n", turnEvents, "rate", relayRate)})
	ev.Headers["authorization"], ev.Headers["x-api-key"] = "Bearer "+g.SessionToken, b.s.apiKey
	ev.Body, ev.IsBase64Encoded = base64.StdEncoding.EncodeToString(body), true
	return json.Marshal(ev)
}
