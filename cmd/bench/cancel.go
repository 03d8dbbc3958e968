package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/ovrlrd/cloud/internal/devkit/claudetest"
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
		d, err := b.s.client.cancelled(ctx, b.s)
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
func (c *client) cancelled(ctx context.Context, s *stack) (time.Duration, error) {
	conv, err := s.conversation(ctx)
	if err != nil {
		return 0, err
	}
	b, _ := json.Marshal(map[string]string{"message": claudetest.Script("silent")})
	req, err := c.request(ctx, http.MethodPost, "/chat/"+conv+"/stream", string(b))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("POST /chat/%s/stream: %d", conv, resp.StatusCode)
	}
	br := bufio.NewReaderSize(resp.Body, 16<<10)
	if _, err := br.Peek(1); err != nil {
		return 0, fmt.Errorf("stream ended before its first byte: %w", err)
	}
	sent := time.Now()
	if err := c.cancel(ctx, conv); err != nil {
		return 0, err
	}
	var r streamResult
	if err := r.read(br, nil); err != nil {
		return 0, err
	}
	took := time.Since(sent)
	if r.terminal != "error" || r.message != "Cancelled" {
		return 0, fmt.Errorf("a cancelled turn ended with %s %q", r.terminal, r.message)
	}
	return took, nil
}

// cancel is POST /chat/{id}/cancel.
func (c *client) cancel(ctx context.Context, conv string) error {
	req, err := c.request(ctx, http.MethodPost, "/chat/"+conv+"/cancel", "")
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return fmt.Errorf("POST /chat/%s/cancel: %d %s", conv, resp.StatusCode, body)
	}
	return nil
}
