package main

import (
	"testing"
	"time"
)

// Quantiles are by nearest rank over every sample, whatever the order they
// came in; a negative duration counts as zero, and no samples read as 0.
func TestSamplesQuantiles(t *testing.T) {
	var s samples
	if got := s.at(0.5); got != 0 {
		t.Errorf("empty: %v", got)
	}
	for _, ms := range []int{7, 3, 9, 1, 5, -2, 8, 2, 6, 4} {
		s.add(time.Duration(ms) * time.Millisecond)
	}
	for q, want := range map[float64]int{0: 0, 0.1: 0, 0.5: 4, 0.9: 8, 0.99: 9, 1: 9} {
		if got := s.at(q); got != time.Duration(want)*time.Millisecond {
			t.Errorf("at(%v) = %v, want %d ms", q, got, want)
		}
	}
}

// A request's DynamoDB share counts overlapping calls once: the wall time
// with a call in flight up to the answer, and the round trips made one
// after another; calls from before the request, and one still in flight
// when the answer started, add no round trip.
func TestDBShareOfOverlappingCalls(t *testing.T) {
	from := time.Now()
	ms := func(n float64) time.Time { return from.Add(time.Duration(n * float64(time.Millisecond))) }
	d := dbTimer{spans: []span{
		{ms(-10), ms(-1), true},   // the previous request's
		{ms(1), ms(11), false},    // beside the transaction
		{ms(1), ms(13), false},    // beside the transaction
		{ms(0.5), ms(29), true},   // the transaction
		{ms(29.5), ms(40), false}, // started just before the answer, not waited for
	}}
	got := d.within(from, ms(30))
	want := dbShare{inFlight: ms(29).Sub(ms(0.5)) + ms(30).Sub(ms(29.5)), trips: 1, calls: 4,
		longest: ms(29).Sub(ms(0.5)), tx: ms(29).Sub(ms(0.5))}
	if got != want {
		t.Errorf("one round trip: %+v, want %+v", got, want)
	}

	d.spans = []span{{ms(0), ms(5), false}, {ms(2), ms(8), false}, {ms(6), ms(10), false}}
	got = d.within(from, ms(12))
	want = dbShare{inFlight: 10 * time.Millisecond, trips: 2, calls: 3, longest: 6 * time.Millisecond}
	if got != want {
		t.Errorf("two in a row: %+v, want %+v", got, want)
	}
}
