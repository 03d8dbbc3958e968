package api

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// Validator is a request body that can check its own fields after decoding.
type Validator interface {
	Validate() error
}

// maxBody caps every request body. The largest legitimate one is a 100 000
// character message, up to 400 kB of UTF-8, plus JSON escaping.
const maxBody = 1 << 20

// Decode is the one strict JSON decoder: a size cap (413), then malformed
// JSON, unknown fields, wrong types and trailing data (400, naming the field),
// then the body's own Validate.
func Decode(r *http.Request, v Validator) error { return decodeUpTo(r, v, maxBody) }

// decodeUpTo is Decode with another size cap, for the one route whose body
// may be larger (an imported session).
func decodeUpTo(r *http.Request, v Validator, limit int64) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if errors.As(err, new(*http.MaxBytesError)) {
			return decodeError(err)
		}
		return ovrlrd.Errorf(ovrlrd.EINVALID, "Request body must contain a single JSON object.")
	}
	return v.Validate()
}

func decodeError(err error) error {
	var (
		typeErr *json.UnmarshalTypeError
		tooBig  *http.MaxBytesError
	)
	switch {
	case errors.As(err, &tooBig):
		return ovrlrd.Errorf(ovrlrd.ETOOLARGE, "Request body is too large (limit %d bytes).", tooBig.Limit)
	case errors.Is(err, io.EOF):
		return ovrlrd.Errorf(ovrlrd.EINVALID, "Request body is empty; a JSON object is required.")
	case errors.As(err, new(*json.SyntaxError)), errors.Is(err, io.ErrUnexpectedEOF):
		return ovrlrd.Errorf(ovrlrd.EINVALID, "Request body is not valid JSON.")
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return ovrlrd.Errorf(ovrlrd.EINVALID, "Request body must be a JSON object.")
		}
		return ovrlrd.Errorf(ovrlrd.EINVALID, "Field %q must be of type %s.", typeErr.Field, cmp.Or(jsonTypes[typeErr.Type.Kind()], "number"))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// encoding/json has no typed error for this one.
		field := strings.TrimPrefix(err.Error(), "json: unknown field ")
		return ovrlrd.Errorf(ovrlrd.EINVALID, "Unknown field %s.", field)
	default:
		return ovrlrd.Wrap(ovrlrd.EINVALID, "Request body could not be read.", fmt.Errorf("decode: %w", err))
	}
}

// jsonTypes name Go kinds the way a client thinks of JSON; the rest are
// numbers.
var jsonTypes = map[reflect.Kind]string{
	reflect.String: "string", reflect.Bool: "boolean", reflect.Slice: "array", reflect.Array: "array",
	reflect.Struct: "object", reflect.Map: "object", reflect.Pointer: "object",
}
