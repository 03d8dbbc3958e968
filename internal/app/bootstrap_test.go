package app_test

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A deployed function whose secrets cannot be read must not start: the built
// bootstrap, with STAGE=prod and SSM unreachable, exits non-zero by itself
// (its load is bounded by config.InitTimeout) and names every parameter it
// could not load.
func TestBootstrapFailsFastWithoutSSM(t *testing.T) {
	closed := closedAddr(t)
	for _, fn := range []string{"auth", "chat", "stream"} {
		t.Run(fn, func(t *testing.T) {
			bin := filepath.Join(t.TempDir(), "bootstrap")
			build := exec.Command("go", "build", "-tags", "lambda.norpc", "-o", bin, "../../functions/"+fn)
			build.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := build.CombinedOutput(); err != nil {
				t.Fatalf("build: %v\n%s", err, out)
			}
			// Only a hang runs into this: the bootstrap's own bound is far
			// shorter.
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin)
			cmd.Env = []string{
				"PATH=" + os.Getenv("PATH"),
				"STAGE=prod",
				"AWS_REGION=eu-west-1",
				"SSM_PREFIX=/ovrlrd/prod",
				"TABLE_NAME=ovrlrd-prod",
				"AWS_ACCESS_KEY_ID=AKIDEXAMPLE",
				"AWS_SECRET_ACCESS_KEY=example",
				"AWS_EC2_METADATA_DISABLED=true",
				"AWS_ENDPOINT_URL_SSM=http://" + closed,
			}
			var stderr, stdout bytes.Buffer
			cmd.Stderr, cmd.Stdout = &stderr, &stdout
			start := time.Now()
			err := cmd.Run()
			elapsed := time.Since(start)

			if ctx.Err() != nil {
				t.Fatalf("did not end by itself; killed after %v\nstderr: %s", elapsed, stderr.String())
			}
			var exit *exec.ExitError
			if !errorsAs(err, &exit) || exit.ExitCode() == 0 {
				t.Fatalf("want a non-zero exit, got %v\nstderr: %s", err, stderr.String())
			}
			msg := stderr.String()
			for _, name := range []string{"/ovrlrd/prod/jwt-keys", "/ovrlrd/prod/api-key"} {
				if !strings.Contains(msg, name) {
					t.Errorf("error does not name %s:\n%s", name, msg)
				}
			}
			if n := strings.Count(strings.TrimSpace(msg), "\n"); n != 0 {
				t.Errorf("want ONE message line, got %d:\n%s", n+1, msg)
			}
			t.Logf("%s failed in %v", fn, elapsed.Round(time.Millisecond))
		})
	}
}

func errorsAs(err error, target **exec.ExitError) bool {
	e, ok := err.(*exec.ExitError)
	if ok {
		*target = e
	}
	return ok
}

func closedAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
