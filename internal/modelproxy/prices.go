package modelproxy

import (
	"cmp"
	"strconv"
	"strings"
)

// rate is a price in US dollars per million tokens.
type rate struct{ in, out float64 }

// model is one row of the price table.
type model struct {
	family       string // opus, sonnet, haiku, fable, mythos
	major, minor int
	rate
	fast rate // the fast-mode price, when the model has one
	// long: a prompt over 200k input tokens costs twice the input price and
	// 1.5 times the output price (Sonnet 4 and 4.5 with the 1M context).
	long bool
}

// prices are Anthropic's published list prices per million tokens (the
// "Model pricing" table of https://platform.claude.com/docs/en/about-claude/pricing),
// which the pinned CLI's own cost table (2.1.197) agrees with for every
// model it knows (it leaves out Sonnet 4/4.5's long-context price). Cache
// writes cost 1.25 times the input price (2 times for the one-hour
// lifetime), cache reads 0.1 times; web search is $10 per thousand. Bedrock
// calls are priced from the same table.
var prices = []model{
	{family: "opus", major: 5, rate: rate{5, 25}},
	{family: "opus", major: 4, minor: 8, rate: rate{5, 25}, fast: rate{10, 50}},
	{family: "opus", major: 4, minor: 7, rate: rate{5, 25}, fast: rate{30, 150}},
	{family: "opus", major: 4, minor: 6, rate: rate{5, 25}, fast: rate{30, 150}},
	{family: "opus", major: 4, minor: 5, rate: rate{5, 25}},
	{family: "opus", major: 4, minor: 1, rate: rate{15, 75}},
	{family: "opus", major: 4, rate: rate{15, 75}},
	{family: "opus", major: 3, rate: rate{15, 75}},
	// Sonnet 5's standard rate; its launch price of $2/$10 was introductory
	// (to 2026-08-31), and an overcharge is the safe mistake.
	{family: "sonnet", major: 5, rate: rate{3, 15}},
	{family: "sonnet", major: 4, minor: 6, rate: rate{3, 15}},
	{family: "sonnet", major: 4, minor: 5, rate: rate{3, 15}, long: true},
	{family: "sonnet", major: 4, rate: rate{3, 15}, long: true},
	{family: "sonnet", major: 3, minor: 7, rate: rate{3, 15}},
	{family: "sonnet", major: 3, minor: 5, rate: rate{3, 15}},
	{family: "haiku", major: 4, minor: 5, rate: rate{1, 5}},
	{family: "haiku", major: 3, minor: 5, rate: rate{0.8, 4}},
	{family: "haiku", major: 3, rate: rate{0.25, 1.25}},
	{family: "fable", major: 5, rate: rate{10, 50}},
	{family: "mythos", major: 5, rate: rate{10, 50}},
}

// parseModel reads the family and version from any spelling of a Claude
// model id: claude-opus-4-8, claude-opus-4-1-20250805, claude-3-5-haiku-
// 20241022, us.anthropic.claude-sonnet-4-5-20250929-v1:0,
// claude-opus-4-1@20250805, claude-opus-4-8[1m].
func parseModel(id string) (family string, version []int) {
	s := strings.ToLower(id)
	if i := strings.Index(s, "claude-"); i >= 0 {
		s = s[i+len("claude-"):]
	}
	if i := strings.IndexAny(s, "[@:"); i >= 0 {
		s = s[:i]
	}
	for _, part := range strings.Split(s, "-") {
		switch part {
		case "opus", "sonnet", "haiku", "fable", "mythos":
			family = part
			continue
		}
		// Versions are small numbers; an 8-digit date or "v1" is not one.
		if n, err := strconv.Atoi(part); err == nil && len(part) <= 2 && len(version) < 2 {
			version = append(version, n)
		}
	}
	return family, version
}

// lookup prices a model id. An id not in the table gets the highest price
// of its family, or of all models when even the family is unknown, and
// known is false: an unpriced model is never free.
func lookup(id string, fast bool) (r rate, long, known bool) {
	family, v := parseModel(id)
	if len(v) == 1 {
		v = append(v, 0)
	}
	var inFamily, top rate
	for _, m := range prices {
		p := m.rate
		if fast && m.fast != (rate{}) {
			p = m.fast
		}
		// A fast tier we have no price for is not a match.
		if len(v) == 2 && m.family == family && m.major == v[0] && m.minor == v[1] && (!fast || m.fast != (rate{})) {
			return p, m.long, true
		}
		if p.out > top.out {
			top = p
		}
		if m.family == family && p.out > inFamily.out {
			inFamily = p
		}
	}
	return cmp.Or(inFamily, top), false, false
}

// cost is what c costs at rate r.
func (r rate) cost(c counts, long bool) float64 {
	in, out := r.in, r.out
	if long && c.input+c.cacheWrite+c.cacheRead > 200_000 {
		in, out = in*2, out*1.5
	}
	hour := min(c.cacheWrite1h, c.cacheWrite)
	usd := float64(c.input)*in +
		float64(c.cacheWrite-hour)*in*1.25 + float64(hour)*in*2 +
		float64(c.cacheRead)*in*0.1 +
		float64(c.output)*out
	return usd/1e6 + float64(c.webSearch)*0.01
}

// cost prices one response, warning once per proxy about each unpriced
// model.
func (p *Proxy) cost(c counts) float64 {
	if c.input+c.cacheWrite+c.cacheRead+c.output+c.webSearch == 0 {
		return 0
	}
	r, long, ok := lookup(c.model, c.fast)
	if !ok {
		if _, seen := p.warned.LoadOrStore([2]any{c.model, c.fast}, true); !seen {
			p.log.Warn("modelproxy: no price for model; charging the highest price of its family",
				"model", c.model, "fast", c.fast, "input_usd_per_mtok", r.in, "output_usd_per_mtok", r.out)
		}
	}
	return r.cost(c, long)
}
