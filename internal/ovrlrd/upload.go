package ovrlrd

// Upload is where a client puts a session too large to send inline: a
// presigned PUT, valid until ExpiresAt, that accepts exactly the headers
// named (its Content-Length is signed, so nothing larger lands).
type Upload struct {
	UploadID  string            `json:"uploadId"`
	URL       string            `json:"url"`
	Method    string            `json:"method"`
	Headers   map[string]string `json:"headers"`
	ExpiresAt Timestamp         `json:"expiresAt"`
}

// Limits of an imported session's transcript.
const (
	MaxInlineTranscript = 5_000_000   // bytes sent in the import request itself
	MaxUploadTranscript = 100_000_000 // bytes uploaded to S3 first
)
