package main

import (
	"math"
	"math/bits"
	"sync"
	"time"
)

// hist is a fixed-size log-linear histogram of durations in nanoseconds:
// exact below 64 ns, then 32 buckets per power of two (under 1.6 % error).
// It is 15 KiB whatever the number of samples, and safe for concurrent use.
type hist struct {
	mu       sync.Mutex
	counts   [histBuckets]uint64
	n        uint64
	min, max int64
}

const (
	histSub     = 32 // buckets per power of two
	histBuckets = histSub * 60
)

func histIndex(v int64) int {
	if v < 2*histSub {
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - 6 // v>>shift is in [32, 64)
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

// add records d (a negative value counts as zero).
func (h *hist) add(d time.Duration) {
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

// merge adds o's samples to h.
func (h *hist) merge(o *hist) {
	o.mu.Lock()
	defer o.mu.Unlock()
	h.mu.Lock()
	defer h.mu.Unlock()
	if o.n == 0 {
		return
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
}

// quantile returns the q-quantile (0 < q ≤ 1), clamped to the exact
// extremes; 0 without samples.
func (h *hist) quantile(q float64) time.Duration {
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

func (h *hist) maximum() time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return time.Duration(h.max)
}
