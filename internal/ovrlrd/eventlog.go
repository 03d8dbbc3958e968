package ovrlrd

import (
	"errors"
	"strconv"
	"strings"
)

// LoggedEvent is one streamed event of a turn as its log keeps it: its
// sequence number in the turn (from 1) and the event's JSON, as sent.
type LoggedEvent struct {
	Seq  int
	Data []byte
}

// EventBatch is a run of a turn's events for its log: the events numbered
// First, First+1, ... of the turn TurnID (its lease holder).
type EventBatch struct {
	TurnID string
	First  int
	Events [][]byte
}

// Last is the sequence number of the batch's last event.
func (b EventBatch) Last() int { return b.First + len(b.Events) - 1 }

// MaxEventSeq bounds a turn's sequence numbers: nine digits of them, as
// the log's keys hold them.
const MaxEventSeq = 999_999_999

// EventID is the SSE id of a turn's event: the turn and the event's
// sequence number, so a client reattaching names both.
func EventID(turnID string, seq int) string {
	var b [80]byte // one allocation per event: the string
	return string(strconv.AppendInt(append(append(b[:0], turnID...), '.'), int64(seq), 10))
}

// ParseEventID splits an EventID. ok is false for anything EventID cannot
// have made.
func ParseEventID(id string) (turnID string, seq int, ok bool) {
	turnID, n, found := strings.Cut(id, ".")
	seq, err := strconv.Atoi(n)
	if !found || err != nil || seq < 0 || seq > MaxEventSeq || n != strconv.Itoa(seq) || !IsTurnID(turnID) {
		return "", 0, false
	}
	return turnID, seq, true
}

// IsTurnID reports whether id may be a turn's id (its holder, rand.Text):
// letters and digits only, so it can never reach past its own keys.
func IsTurnID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, r := range id {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9') {
			return false
		}
	}
	return true
}

// ActiveTurn is a conversation's running turn as GET /chat/{id} shows it,
// so a client knows it can reattach: the turn's id, when it began, and
// the id of its last event logged so far (null before the first).
type ActiveTurn struct {
	ID          string    `json:"id"`
	StartedAt   Timestamp `json:"startedAt"`
	LastEventID *string   `json:"lastEventId"`
}

// ErrNothingToFollow answers a client that reattaches when no turn ever
// ran, or when it has every event of the turn it names, terminal included:
// 204, which tells an EventSource to stop reconnecting.
var ErrNothingToFollow = errors.New("no turn to follow")

// ErrOtherTurn refuses an event id whose turn is not the conversation's.
var ErrOtherTurn = Errorf(EINVALID, "The event id does not belong to this conversation.")
