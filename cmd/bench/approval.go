package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ovrlrd/cloud/internal/devkit/claudetest"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/turn"
)

// Live tool approval's rows: how long an answer takes to reach the CLI
// that waits for it.
const (
	mApproval50 = "approval answer to CLI p50"
	mApproval99 = "approval answer to CLI p99"
	// approvalGoal is the p99 for an answer to reach the CLI.
	approvalGoal = 500 * time.Millisecond
)

// approvals streams one turn with live approvals, on a conversation of its
// own, whose fake CLI asks for Bash o.approvalN times, one after another.
// Each permission_request is answered (allow) with POST
// /chat/{id}/approvals/{requestId} as it arrives; the fake CLI writes, once
// it read the answer on its stdin, a text "<ns> <request id> <behavior>"
// stamped with that moment. An answer's delay is that stamp minus the time
// just before its POST.
func (b *bench) approvals(ctx context.Context) error {
	n := b.o.approvalN
	conv, err := b.s.newConversation(ctx, b.userID)
	if err != nil {
		return err
	}
	// A turn that missed an answer would wait for it to expire.
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second+time.Duration(n)*approvalGoal)
	defer cancel()
	lat := samples{ds: make([]time.Duration, 0, n)}
	var (
		sent            time.Time // just before the POST of the answer the CLI has yet to read
		asked, answered int
		failure         error
	)
	fail := func(format string, a ...any) {
		failure = fmt.Errorf(format, a...)
		cancel()
	}
	r, err := b.s.StreamLive(ctx, "/chat/"+conv+"/stream", claudetest.Script("ask", "n", n), b.token, func(data []byte) {
		var e struct {
			Type           string `json:"type"`
			Content        string `json:"content"`
			ConversationID string `json:"conversationId"`
			RequestID      string `json:"requestId"`
			ToolName       string `json:"toolName"`
		}
		if failure != nil || json.Unmarshal(data, &e) != nil {
			return
		}
		switch e.Type {
		case "permission_request":
			asked++
			if !sent.IsZero() || e.ToolName != "Bash" || e.ConversationID != conv || e.RequestID == "" {
				fail("request %d, want one for Bash in %s after the CLI read the answer before it: %.300s", asked, conv, data)
				return
			}
			path := "/chat/" + conv + "/approvals/" + e.RequestID
			sent = time.Now()
			status, body, err := b.s.Call(ctx, http.MethodPost, path, `{"decision":"allow"}`, b.token)
			var got struct{ RequestID, Decision string }
			switch {
			case err != nil:
				fail("POST %s: %w", path, err)
			case status != http.StatusOK || json.Unmarshal(body, &got) != nil || got.RequestID != e.RequestID || got.Decision != "allow":
				fail("POST %s: %d %.200s", path, status, body)
			}
		case "chunk":
			f := strings.Fields(e.Content)
			stamp, perr := int64(0), error(nil)
			if len(f) == 3 {
				stamp, perr = strconv.ParseInt(f[0], 10, 64)
			}
			if want := "ask-" + strconv.Itoa(answered); sent.IsZero() || len(f) != 3 || perr != nil || f[1] != want || f[2] != "allow" {
				fail("text %q after %d answers, want \"<ns> %s allow\" after an answer", e.Content, answered, want)
				return
			}
			lat.add(time.Duration(stamp - sent.UnixNano()))
			answered, sent = answered+1, time.Time{}
		}
	})
	switch {
	case failure != nil:
		return failure
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("the turn did not end in time (%d requests, %d answers read): %w", asked, answered, err)
	case err != nil:
		return err
	case r.Terminal != ovrlrd.OutcomeComplete:
		return fmt.Errorf("the turn ended with %s %q after %d requests, %d answers read", r.Terminal, r.Message, asked, answered)
	case asked != n || answered != n || r.Chunks != n:
		return fmt.Errorf("%d requests, %d answers read, %d texts; want %d each", asked, answered, r.Chunks, n)
	}
	b.set(mApproval50, lat.p50p90(), "", markInfo)
	b.atMost(mApproval99, lat.at(0.99), approvalGoal, " (the issue's goal)",
		fmt.Sprintf("%s (max %s, min %s, of %d answers)", fmtMS(lat.at(0.99)), fmtMS(lat.at(1)), fmtMS(lat.at(0)), n))
	b.notes = append(b.notes, fmt.Sprintf(`Approval answer to CLI: one turn with live approvals ("approvals":"live") on a conversation of its own, whose fake CLI asks for Bash %d times, one after another; each permission_request is answered allow with POST /chat/{id}/approvals/{requestId} (200 checked) as it arrives, and the turn must complete with %d texts, each naming its request and "allow". The time is from just before the answer's POST to the fake CLI reading the control response on its stdin (its stamp, in the text it writes next): the answer's write to DynamoDB, the waiting turn's next read of its request (it polls every %d ms, so up to that is the wait for the poll), then the answer written to the CLI's stdin. The bench answers as soon as a request arrives, just after the turn began to wait, so each answer waits nearly a whole poll: the poll's worst phase, where a person's answer waits half a poll on average. With %d answers the p99 is the slowest.`,
		n, n, turn.ApprovalPoll.Milliseconds(), n))
	return nil
}
