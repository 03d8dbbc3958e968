package modelproxy

import (
	"strings"
	"testing"

	"github.com/ovrlrd/cloud/internal/devkit/devenv"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// TestLookup: every spelling of a model id the CLI, the API, Bedrock and
// Vertex use finds its row; unknown models get the highest price of their
// family, or of all models, and are marked unknown.
func TestLookup(t *testing.T) {
	cases := []struct {
		id    string
		fast  bool
		want  rate
		long  bool
		known bool
	}{
		{"claude-opus-4-8", false, rate{5, 25}, false, true},
		{"claude-opus-4-8[1m]", false, rate{5, 25}, false, true},
		{"claude-opus-4-8", true, rate{10, 50}, false, true},
		{"claude-opus-4-6", true, rate{30, 150}, false, true},
		{"claude-opus-4-5-20251101", false, rate{5, 25}, false, true},
		{"claude-opus-4-1-20250805", false, rate{15, 75}, false, true},
		{"claude-opus-4-1@20250805", false, rate{15, 75}, false, true},
		{"claude-opus-4-20250514", false, rate{15, 75}, false, true},
		{"us.anthropic.claude-opus-4-20250514-v1:0", false, rate{15, 75}, false, true},
		{"claude-3-opus-20240229", false, rate{15, 75}, false, true},
		{"us.anthropic.claude-sonnet-4-5-20250929-v1:0", false, rate{3, 15}, true, true},
		{"global.anthropic.claude-sonnet-4-5-20250929-v1:0", false, rate{3, 15}, true, true},
		{"claude-sonnet-4-6", false, rate{3, 15}, false, true},
		{"claude-sonnet-5", false, rate{3, 15}, false, true},
		{"anthropic.claude-3-5-sonnet-20241022-v2:0", false, rate{3, 15}, false, true},
		{"claude-3-7-sonnet-20250219", false, rate{3, 15}, false, true},
		{"claude-haiku-4-5-20251001", false, rate{1, 5}, false, true},
		{"us.anthropic.claude-3-5-haiku-20241022-v1:0", false, rate{0.8, 4}, false, true},
		{"claude-3-haiku-20240307", false, rate{0.25, 1.25}, false, true},
		{"claude-fable-5", false, rate{10, 50}, false, true},
		{"claude-mythos-5", false, rate{10, 50}, false, true},
		// Unknown: the highest price of the family, or of everything.
		{"claude-opus-9-9", false, rate{15, 75}, false, false},
		{"claude-opus-4-5", true, rate{30, 150}, false, false},
		{"claude-haiku-7", false, rate{1, 5}, false, false},
		{"claude-sonnet-4-7", false, rate{3, 15}, false, false},
		{"claude-sonnet-4-6", true, rate{3, 15}, false, false},
		{"", false, rate{15, 75}, false, false},
		{"arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc", false, rate{15, 75}, false, false},
		{"gpt-4o", true, rate{30, 150}, false, false},
	}
	for _, c := range cases {
		got, long, known := lookup(c.id, c.fast)
		if got != c.want || long != c.long || known != c.known {
			t.Errorf("lookup(%q, fast=%v) = %v long=%v known=%v, want %v long=%v known=%v",
				c.id, c.fast, got, long, known, c.want, c.long, c.known)
		}
	}
}

// TestCost: cache writes cost 1.25 times input (2 times for an hour),
// cache reads 0.1 times, web searches a cent, and a long Sonnet 4.5 prompt
// the long-context price.
func TestCost(t *testing.T) {
	c := counts{input: 1_000_000, cacheWrite: 1_000_000, cacheWrite1h: 400_000, cacheRead: 1_000_000, output: 1_000_000, webSearch: 3}
	want := 5 + 0.6*5*1.25 + 0.4*5*2 + 5*0.1 + 25 + 0.03
	if got := (rate{5, 25}).cost(c, false); !near(got, want) {
		t.Errorf("cost = %v, want %v", got, want)
	}
	short := counts{input: 150_000, cacheRead: 50_000, output: 1000}
	if got, want := (rate{3, 15}).cost(short, true), (150_000*3+50_000*0.3+1000*15)/1e6; !near(got, want) {
		t.Errorf("200k prompt = %v, want %v", got, want)
	}
	long := counts{input: 150_000, cacheRead: 50_001, output: 1000}
	if got, want := (rate{3, 15}).cost(long, true), (150_000*6+50_001*0.6+1000*22.5)/1e6; !near(got, want) {
		t.Errorf("over 200k = %v, want %v", got, want)
	}
}

// TestUnknownModelWarnsOnce: an unpriced model is charged the highest
// price of its family and logged once per proxy as a warning, however
// often it is priced; a priced model logs nothing.
func TestUnknownModelWarnsOnce(t *testing.T) {
	var logs devenv.Buffer
	p := newProxy(t, Options{Provider: ovrlrd.Anthropic, Credential: realKey, Log: logger(&logs)})
	s := &Session{p: p}
	s.track("claude-opus-9-9", nil, nil, false).c.observe(&payload{Usage: &wireUsage{InputTokens: 1_000_000, OutputTokens: 1_000_000}})
	s.track("claude-opus-4-8", nil, nil, false).c.observe(&payload{Usage: &wireUsage{InputTokens: 1_000_000}})
	for range 3 {
		if u := s.Usage(); !near(u.CostUSD, 15+75+5) {
			t.Fatalf("cost = %v, want %v", u.CostUSD, 15+75+5)
		}
	}
	out := logs.String()
	if n := strings.Count(out, "no price for model"); n != 1 {
		t.Fatalf("%d warnings, want 1:\n%s", n, out)
	}
	if !strings.Contains(out, "level=WARN") || !strings.Contains(out, "claude-opus-9-9") || strings.Contains(out, "claude-opus-4-8") {
		t.Errorf("warning = %s", out)
	}
}
