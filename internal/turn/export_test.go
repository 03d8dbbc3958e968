package turn

import (
	"context"
	"time"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/sse"
)

// Shorten sets the turn's timings for a test and returns a restore func;
// save is kept back from the deadline for the whole end of a turn.
func Shorten(check, ping, save time.Duration) func() {
	oc, op, os, of := checkEvery, pingEvery, saveMargin, finishMargin
	checkEvery, pingEvery, saveMargin, finishMargin = check, ping, save, save/3
	return func() { checkEvery, pingEvery, saveMargin, finishMargin = oc, op, os, of }
}

// ShortenLease sets the lease, the margin before it runs out at which a
// turn stops, and the bound on one renewal.
func ShortenLease(l, margin, renew time.Duration) func() {
	ol, om, or := lease, leaseMargin, renewTimeout
	lease, leaseMargin, renewTimeout = l, margin, renew
	return func() { lease, leaseMargin, renewTimeout = ol, om, or }
}

// SetTitleTimes sets the title run's timeout and how long a finished turn
// waits for it.
func SetTitleTimes(timeout, grace time.Duration) func() {
	ot, og := titleTimeout, titleGrace
	titleTimeout, titleGrace = timeout, grace
	return func() { titleTimeout, titleGrace = ot, og }
}

// RunOutcome runs j as Run does and returns how it ended.
func (s *Service) RunOutcome(ctx context.Context, j ovrlrd.Turn, sink sse.Sink) Outcome {
	return s.run(ctx, j, sink)
}

// SetApprovalTimes sets how often a waiting turn reads its request, what
// it keeps back from its deadline, and the shortest wait worth asking for.
func SetApprovalTimes(poll, reserve, minWait time.Duration) func() {
	op, or, om := approvalPoll, approvalReserve, approvalMinWait
	approvalPoll, approvalReserve, approvalMinWait = poll, reserve, minWait
	return func() { approvalPoll, approvalReserve, approvalMinWait = op, or, om }
}
