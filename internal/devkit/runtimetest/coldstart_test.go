//go:build linux

package runtimetest

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ovrlrd/cloud/internal/devkit/claudetest"
	"github.com/ovrlrd/cloud/internal/devkit/storetest"
	"github.com/ovrlrd/cloud/internal/procfs"
)

// What make bench measures: each function started twice, each time in a
// new emulator, its INIT phase reported, its GET /health answered, and
// nothing of it left running once ColdStart returns, to weigh on the next
// one.
func TestColdStarts(t *testing.T) {
	ctx := context.Background()
	c, err := NewColdStarter(ctx, ColdStartOptions{
		DynamoDBEndpoint: storetest.Endpoint(), Table: storetest.TableName(), ClaudePath: claudetest.FakeCLI(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, fn := range Functions {
		want := map[string]int{"auth": 404, "chat": 200, "stream": 404}[fn]
		for i := range 2 {
			cs, err := c.ColdStart(ctx, fn)
			if err != nil {
				t.Fatalf("%s, cold start %d: %v", fn, i, err)
			}
			if cs.Status != want || cs.Init <= 0 {
				t.Errorf("%s, cold start %d: status %d, init %v; want status %d and an INIT phase", fn, i, cs.Status, cs.Init, want)
			}
			if left := running(c.bootstraps[fn]); len(left) > 0 {
				t.Fatalf("%s, cold start %d: its bootstrap still runs: %v", fn, i, left)
			}
		}
	}
}

// What make bench reads the resident set of: a started function stays
// warm, its one bootstrap process below the emulator answering every
// invoke (the secrets read once), and is gone once stopped.
func TestAStartedFunctionStaysWarm(t *testing.T) {
	ctx := t.Context()
	c, err := NewColdStarter(ctx, ColdStartOptions{
		DynamoDBEndpoint: storetest.Endpoint(), Table: storetest.TableName(), ClaudePath: claudetest.FakeCLI(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ssmCalls := c.ssm.Calls()
	i, status, err := c.Start(ctx, "chat")
	if err != nil || status != 200 {
		t.Fatalf("GET /health: %d %v", status, err)
	}
	defer i.Stop()
	body, err := i.Invoke(ctx, c.event)
	if err != nil || !strings.Contains(string(body), `"statusCode":200`) {
		t.Fatalf("GET /health again: %v %s", err, body)
	}
	if bootstrap := running(c.bootstraps["chat"]); !slices.Equal(bootstrap, []string{strconv.Itoa(i.Pid)}) {
		t.Errorf("bootstrap pid %d, running %v", i.Pid, bootstrap)
	}
	if n := c.ssm.Calls() - ssmCalls; n != 1 {
		t.Errorf("%d GetParameters calls over two invokes, want 1", n)
	}
	i.Stop()
	if left := running(c.bootstraps["chat"]); len(left) > 0 {
		t.Errorf("the bootstrap still runs after Stop: %v", left)
	}
}

// running lists the processes that run the executable at path.
func running(path string) []string {
	var pids []string
	for _, pid := range procfs.Pids() {
		exe, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(pid), "exe"))
		if err == nil && strings.TrimSuffix(exe, " (deleted)") == path {
			pids = append(pids, strconv.Itoa(pid))
		}
	}
	return pids
}
