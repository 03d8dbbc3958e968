package main

import (
	"math"
	"math/bits"
	"sync"
	"time"
)

// Histogram is a fixed-size log-linear histogram of durations: exact below
// 128 ns, then 64 buckets per power of two (under 0.8 % error). It is
// 30 KiB whatever the number of samples, so an in-process client stays
// small while the server's memory is measured, and it is safe for
// concurrent use. The zero value is empty.
type Histogram struct {
	mu       sync.Mutex
	counts   [histBuckets]uint64
	n        uint64
	min, max int64
}

const (
	histSub     = 64 // buckets per power of two
	histBuckets = histSub * 60
)

func histIndex(v int64) int {
	if v < 2*histSub {
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - 7 // v>>shift is in [64, 128)
	return shift*histSub + int(uint64(v)>>shift)
}

// histValue is the middle of bucket i.
func histValue(i int) int64 {
	if i < 2*histSub {
		return int64(i)
	}
	shift := i/histSub - 1
	m := int64(i%histSub + histSub)
	lo, hi := m<<shift, (m+1)<<shift-1
	return lo + (hi-lo)/2
}

// Add records d; a negative value counts as zero.
func (h *Histogram) Add(d time.Duration) {
	v := max(int64(d), 0)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n == 0 || v < h.min {
		h.min = v
	}
	h.max = max(h.max, v)
	h.counts[histIndex(v)]++
	h.n++
}

// Quantile returns the q-quantile (0 < q ≤ 1), clamped to the exact
// extremes; 0 without samples.
func (h *Histogram) Quantile(q float64) time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(min(max(histValue(i), h.min), h.max))
		}
	}
	return time.Duration(h.max)
}

// Max is the largest sample; 0 without samples.
func (h *Histogram) Max() time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return time.Duration(h.max)
}
