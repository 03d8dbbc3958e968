package main

import (
	"fmt"

	"github.com/ovrlrd/cloud/internal/devkit/harness"
)

// memString is a resident set with its split into anonymous and
// file-backed memory, where known.
func memString(m harness.Mem) string {
	if m.Anon+m.File == 0 {
		return fmtMB(m.RSS)
	}
	return fmt.Sprintf("%s (anon %s + file %s)", fmtMB(m.RSS), fmtMB(m.Anon), fmtMB(m.File))
}

// peakString is a peak with the split of the largest sample.
func peakString(peak int64, sampled harness.Mem) string {
	if sampled.Anon+sampled.File == 0 {
		return fmtMB(peak)
	}
	return fmt.Sprintf("%s (largest sample: anon %s + file %s)", fmtMB(peak), fmtMB(sampled.Anon), fmtMB(sampled.File))
}
