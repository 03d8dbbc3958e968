package samtemplate

import (
	_ "embed"
	"encoding/json"
	"sort"
	"strings"
	"sync"
)

// The actions AWS's Service Authorization Reference lists for the services
// this project uses; the file's header names its source.
//
//go:embed iam-actions.txt
var actionsFile string

// knownActions holds every action in lower case (IAM matches actions
// case-insensitively), in the file's order.
var knownActions = sync.OnceValues(func() (map[string]bool, []string) {
	set := map[string]bool{}
	var list []string
	for line := range strings.Lines(actionsFile) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		a := strings.ToLower(line)
		if !set[a] {
			set[a] = true
			list = append(list, a)
		}
	}
	return set, list
})

// ActionExists reports whether action (service:Action) is an IAM action of
// one of the services in the data file. A name IAM does not know is
// accepted in a policy and never matches a request, so a grant of it is a
// grant of nothing.
func ActionExists(action string) bool {
	set, _ := knownActions()
	return set[strings.ToLower(action)]
}

// ActionPatternMatches reports whether an action pattern with IAM wildcards
// ('*', '?') matches at least one known action.
func ActionPatternMatches(pattern string) bool {
	_, list := knownActions()
	for _, a := range list {
		if Glob(pattern, a, true) {
			return true
		}
	}
	return false
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
			kinds := make([]string, 0, len(item))
			for kind := range item {
				kinds = append(kinds, kind)
			}
			sort.Strings(kinds)
			for _, kind := range kinds {
				add(transactAction(kind), arn(item[kind].TableName))
			}
		}
	case "BatchWriteItem", "BatchGetItem":
		tables := make([]string, 0, len(in.RequestItems))
		for table := range in.RequestItems {
			tables = append(tables, table)
		}
		sort.Strings(tables)
		for _, table := range tables {
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

// transactAction is the action a transaction item of kind is authorized
// with; an unknown kind keeps its name, which no policy can grant.
func transactAction(kind string) string {
	switch kind {
	case "Put":
		return "PutItem"
	case "Update":
		return "UpdateItem"
	case "Delete":
		return "DeleteItem"
	case "ConditionCheck":
		return "ConditionCheckItem"
	case "Get":
		return "GetItem"
	}
	return kind
}
