package sse

// MarshalJSON encodes e exactly as it goes on the wire, without the
// `data: ` prefix and the blank line.
func (e Event) MarshalJSON() ([]byte, error) { return e.appendJSON(nil) }

// Ping writes the heartbeat, as the turn's outbox does.
func (w *Writer) Ping() error { return w.Send(Event{Type: Ping}) }
