package ovrlrd

import "time"

// TimeFormat is the one timestamp format the app parses without locale
// trouble: UTC, exactly three fractional digits, and Z (never +00:00, whose
// '+' breaks query strings).
const TimeFormat = "2006-01-02T15:04:05.000Z"

// Timestamp is a time that marshals to JSON in TimeFormat.
type Timestamp time.Time

func (t Timestamp) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Time(t).UTC().Format(TimeFormat) + `"`), nil
}

// Time returns t as a time.Time.
func (t Timestamp) Time() time.Time { return time.Time(t) }

// Page is a request for one page of a list.
type Page struct {
	Limit  int
	Cursor string // opaque; empty for the first page
}
