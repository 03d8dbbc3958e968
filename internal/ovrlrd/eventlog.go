package ovrlrd

// LoggedEvent is one streamed event of a turn as its log keeps it: its
// sequence number in the turn (from 1) and the event's JSON, as sent.
type LoggedEvent struct {
	Seq  int
	Data []byte
}
