package samtemplate

import (
	"cmp"
	_ "embed"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"sync"
)

// The actions AWS's Service Authorization Reference lists for the services
// this project uses; the file's header names its source.
//
//go:embed iam-actions.txt
var actionsFile string

// knownActions holds every action in lower case: IAM matches actions
// case-insensitively.
var knownActions = sync.OnceValue(func() map[string]bool {
	set := map[string]bool{}
	for line := range strings.Lines(actionsFile) {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			set[strings.ToLower(line)] = true
		}
	}
	return set
})

// ActionExists reports whether action (service:Action) is an IAM action of
// one of the services in the data file. A name IAM does not know is
// accepted in a policy and never matches a request, so a grant of it is a
// grant of nothing.
func ActionExists(action string) bool {
	return knownActions()[strings.ToLower(action)]
}

// DynamoDBRequests returns the IAM requests DynamoDB authorizes one call
// with, given the operation of its X-Amz-Target header and its JSON body.
// tableARN turns a table name into its ARN (a name that already is an ARN
// is kept). Transactions are authorized item by item with the item's own
// action, so TransactWriteItems and TransactGetItems are never requests
// themselves; a query or scan of an index is a request on the index.
func DynamoDBRequests(op string, body []byte, tableARN func(table string) string) []Request {
	if i := strings.LastIndex(op, "."); i >= 0 {
		op = op[i+1:]
	}
	var in struct {
		TableName     string
		IndexName     string
		RequestItems  map[string]json.RawMessage
		TransactItems []map[string]struct{ TableName string }
	}
	// An unreadable body still becomes a request (on no table), so a call
	// the mapping does not understand is denied rather than unrecorded.
	_ = json.Unmarshal(body, &in)
	arn := func(table string) string {
		if table == "" {
			return "*"
		}
		if strings.HasPrefix(table, "arn:") {
			return table
		}
		return tableARN(table)
	}
	var out []Request
	seen := map[[2]string]bool{}
	add := func(action, resource string) {
		key := [2]string{"dynamodb:" + action, resource}
		if !seen[key] {
			seen[key] = true
			out = append(out, Request{Action: key[0], Resource: key[1]})
		}
	}
	switch op {
	case "TransactWriteItems", "TransactGetItems":
		for _, item := range in.TransactItems {
			for _, kind := range slices.Sorted(maps.Keys(item)) {
				// An unknown kind keeps its name, which no policy can grant.
				add(cmp.Or(transactActions[kind], kind), arn(item[kind].TableName))
			}
		}
	case "BatchWriteItem", "BatchGetItem":
		for _, table := range slices.Sorted(maps.Keys(in.RequestItems)) {
			add(op, arn(table))
		}
	case "Query", "Scan":
		res := arn(in.TableName)
		if in.IndexName != "" {
			res += "/index/" + in.IndexName
		}
		add(op, res)
	default:
		add(op, arn(in.TableName))
	}
	return out
}

// transactActions are the actions transaction items are authorized with,
// by kind.
var transactActions = map[string]string{
	"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "ConditionCheck": "ConditionCheckItem", "Get": "GetItem",
}
