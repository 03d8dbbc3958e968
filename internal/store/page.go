package store

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/guregu/dynamo/v2"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// maxPageLimit is the largest page a list returns.
const maxPageLimit = 100

// pageCursor is where a list page ended: the sort key of its last item (K)
// and, for an index, that item's table sort key (S).
type pageCursor struct {
	K string `json:"k"`
	S string `json:"s,omitempty"`
}

// listPage runs q, newest first, for one page after p's cursor, in one
// request, and returns the page's items as out makes them. resume turns a
// decoded cursor into the key to start from, as attribute names and their
// string values, nil when the cursor cannot be this list's; cursorOf makes
// the cursor after an item. scope binds cursors to one list.
func listPage[T, D any](ctx context.Context, s *Store, q *dynamo.Query, scope string, p ovrlrd.Page,
	resume func(pageCursor) map[string]string, cursorOf func(T) pageCursor, out func(T) D) ([]D, string, error) {
	if p.Limit < 1 || p.Limit > maxPageLimit {
		return nil, "", ovrlrd.Errorf(ovrlrd.EINVALID, "The limit must be between 1 and %d.", maxPageLimit)
	}
	if p.Cursor != "" {
		var c pageCursor
		if err := s.cursors.Decode(scope, p.Cursor, &c); err != nil {
			return nil, "", err
		}
		key := resume(c)
		if key == nil {
			return nil, "", ovrlrd.Errorf(ovrlrd.EINVALID, "Invalid cursor.")
		}
		start := dynamo.PagingKey{}
		for name, v := range key {
			start[name] = &types.AttributeValueMemberS{Value: v}
		}
		q.StartFrom(start)
	}
	// SearchLimit, unlike Limit, makes exactly one request; the extra item
	// only tells whether another page exists.
	var items []T
	lek, err := q.SearchLimit(p.Limit+1).AllWithLastEvaluatedKey(ctx, &items)
	if err != nil {
		return nil, "", dbError("list page", err)
	}
	// A page that stopped at DynamoDB's 1 MB (a few long answers) has
	// its rest on the next page, not lost.
	more := len(items) > p.Limit || len(lek) > 0
	items = items[:min(len(items), p.Limit)]
	next := ""
	if more && len(items) > 0 {
		next = s.cursors.Encode(scope, cursorOf(items[len(items)-1]))
	}
	res := make([]D, 0, len(items))
	for _, it := range items {
		res = append(res, out(it))
	}
	return res, next, nil
}
