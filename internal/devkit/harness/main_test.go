package harness

import (
	"flag"
	"io"
	"testing"
)

// -quick sets what was not given; a flag given explicitly wins, wherever
// it stands; DynamoDB Local's endpoint comes from the environment.
func TestQuickYieldsToExplicitFlags(t *testing.T) {
	var f Flags
	n, m := 0, 0
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f.Register(fs, "fast")
	fs.IntVar(&n, "n", 100, "")
	fs.IntVar(&m, "m", 100, "")
	getenv := func(k string) string { return map[string]string{"DYNAMODB_ENDPOINT": "http://db"}[k] }
	err := f.Parse(fs, []string{"-n", "7", "-quick"}, getenv, map[string]func(){"n": func() { n = 1 }, "m": func() { m = 1 }})
	if err != nil || n != 7 || m != 1 || f.Endpoint != "http://db" {
		t.Errorf("n=%d m=%d endpoint %q, %v", n, m, f.Endpoint, err)
	}
	if err := f.Parse(fs, []string{"left", "over"}, getenv, nil); err == nil {
		t.Error("arguments left over were accepted")
	}
}
