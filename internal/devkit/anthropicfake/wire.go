package anthropicfake

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
)

func errorType(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "invalid_request_error"
	case http.StatusUnauthorized:
		return "authentication_error"
	case http.StatusForbidden:
		return "permission_error"
	case http.StatusNotFound:
		return "not_found_error"
	case http.StatusRequestEntityTooLarge:
		return "request_too_large"
	case http.StatusTooManyRequests:
		return "rate_limit_error"
	case 529:
		return "overloaded_error"
	default:
		return "api_error"
	}
}

func defaultErrorMessage(typ string) string {
	switch typ {
	case "overloaded_error":
		return "Overloaded"
	case "rate_limit_error":
		return "Rate limited"
	case "api_error":
		return "Internal server error"
	default:
		return "Request failed"
	}
}

func writeError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("request-id", "req_"+randomID())
	writeJSON(w, status, map[string]any{
		"type":  "error",
		"error": map[string]string{"type": typ, "message": msg},
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		panic(fmt.Sprintf("anthropicfake: encode response: %v", err))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// estimateTokens turns a byte count into a plausible non-zero token count.
func estimateTokens(n int) int { return n/4 + 1 }

// randomID looks like the tail of an API id (msg_01…, toolu_01…).
func randomID() string {
	var b [12]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	return "01" + hex.EncodeToString(b[:])
}
