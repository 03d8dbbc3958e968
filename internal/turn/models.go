package turn

import (
	"math"

	"github.com/ovrlrd/cloud/internal/claude"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

func addUsage(a, b ovrlrd.Usage) ovrlrd.Usage {
	return ovrlrd.Usage{
		CostUSD:      a.CostUSD + b.CostUSD,
		InputTokens:  a.InputTokens + b.InputTokens,
		OutputTokens: a.OutputTokens + b.OutputTokens,
	}
}

// reported is what the CLI's own result line says the run cost.
func reported(r *claude.Result) ovrlrd.Usage {
	if r == nil {
		return ovrlrd.Usage{}
	}
	u := r.Usage
	return ovrlrd.Usage{
		CostUSD:      r.TotalCostUSD,
		InputTokens:  u.InputTokens + u.CacheCreationInputTokens + u.CacheReadInputTokens,
		OutputTokens: u.OutputTokens,
	}
}

// disagree reports whether the CLI's report and the proxy's count differ by
// more than pricing tables do: a sign that one of them is wrong.
func disagree(measured, claimed ovrlrd.Usage) bool {
	return math.Abs(measured.CostUSD-claimed.CostUSD) > max(0.01, 0.25*measured.CostUSD) ||
		claimed.OutputTokens > 2*measured.OutputTokens+100
}
