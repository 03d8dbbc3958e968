package main

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/ovrlrd/cloud/internal/devkit/claudetest"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// mCancel is how soon POST /chat/{id}/cancel ends a running turn for its
// client.
const mCancel = "cancel to terminal event"

// cancelTurns is how many turns the cancel row is the slowest of.
const cancelTurns = 3

func init() {
	// Before the last relay row, which is taken once everything stopped.
	metrics = slices.Insert(metrics, slices.Index(metrics, mProcessesAfter), mCancel)
}

// cancels times cancelTurns cancels: each turn runs until it is cancelled,
// the cancel is sent once its first byte arrived, and the time is from
// sending the cancel to the end of the turn's stream.
func (b *bench) cancels(ctx context.Context) error {
	var took []time.Duration
	for range cancelTurns {
		d, err := b.cancelled(ctx)
		if err != nil {
			return err
		}
		took = append(took, d)
	}
	slices.Sort(took)
	b.atMost(mCancel, took[len(took)-1], 2*time.Second,
		fmt.Sprintf(" (slowest of %d; fastest %s)", len(took), fmtMS(took[0])))
	return nil
}

// cancelled starts a turn that only a cancel ends, cancels it once its
// first byte arrived and reads its stream to the end.
func (b *bench) cancelled(ctx context.Context) (time.Duration, error) {
	conv, err := b.s.conversation(ctx)
	if err != nil {
		return 0, err
	}
	// A cancel that fails leaves the turn running: stop reading it then.
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	var sent time.Time
	var cancelErr error
	r, err := b.s.stream(ctx, conv, claudetest.Script("silent"), nil, func() {
		sent = time.Now()
		if cancelErr = b.s.cancel(ctx, conv); cancelErr != nil {
			stop()
		}
	})
	if err = cmp.Or(cancelErr, err); err != nil {
		return 0, err
	}
	if r.Terminal != ovrlrd.OutcomeError || r.Message != "Cancelled" {
		return 0, fmt.Errorf("a cancelled turn ended with %s %q", r.Terminal, r.Message)
	}
	return r.End.Sub(sent), nil
}
