package samtemplate

import (
	"cmp"
	_ "embed"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/ovrlrd/cloud/internal/devkit/gateway"
)

// Statement is one IAM policy statement with its intrinsics resolved.
type Statement struct {
	Sid       string
	Effect    string
	Actions   []string
	Resources []string
	// Condition maps an operator (StringLike, Bool, ...) to keys and their
	// accepted values.
	Condition map[string]map[string][]string
}

// RoleOf returns the logical id of the IAM role a function runs with: its
// Role property must be !GetAtt <Role>.Arn of a role in the template.
func (t Template) RoleOf(function string) (string, error) {
	role := at(t.Resources()[function], "Properties", "Role")
	ga, _ := at(role, "Fn::GetAtt").([]any)
	if len(ga) != 2 || ga[1] != "Arn" || at(t.Resources()[fmt.Sprint(ga[0])], "Type") != "AWS::IAM::Role" {
		return "", fmt.Errorf("%s: Role is %v, want !GetAtt <Role>.Arn of an AWS::IAM::Role", function, role)
	}
	return fmt.Sprint(ga[0]), nil
}

// RoleStatements returns the statements of a role's policies, its inline
// ones, those of AWS::IAM::RolePolicy resources naming it and the
// AWS::IAM::ManagedPolicy resources of the template it attaches (!Ref), as
// CloudFormation would create them in e (conditional policies included or
// dropped by their condition). Any other managed policy is refused: what a
// role may do must be readable here.
func (t Template) RoleStatements(role string, e Env) ([]Statement, error) {
	props := t.Resources()[role]["Properties"]
	policies := []any{at(props, "Policies")}
	managed, isList := at(props, "ManagedPolicyArns").([]any)
	if !isList && at(props, "ManagedPolicyArns") != nil {
		return nil, fmt.Errorf("%s: ManagedPolicyArns must be a list", role)
	}
	for _, m := range managed {
		id, _ := at(m, "Ref").(string)
		if at(t.Resources()[id], "Type") != "AWS::IAM::ManagedPolicy" {
			return nil, fmt.Errorf("%s: managed policy %v is not an AWS::IAM::ManagedPolicy of the template", role, m)
		}
		policies = append(policies, []any{at(t.Resources()[id], "Properties")})
	}
	for _, id := range t.ResourceIDs() {
		r := t.Resources()[id]
		if r["Type"] != "AWS::IAM::RolePolicy" || at(r, "Properties", "RoleName", "Ref") != role {
			continue
		}
		if on, err := t.Creates(id, e); err != nil {
			return nil, fmt.Errorf("%s: %w", id, err)
		} else if on {
			policies = append(policies, []any{r["Properties"]})
		}
	}
	v, err := t.Eval(policies, e)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", role, err)
	}
	var out []Statement
	for _, list := range v.([]any) {
		policies, _ := list.([]any)
		for _, p := range policies {
			stmts, err := statements(at(p, "PolicyDocument"), "NotAction", "NotResource")
			if err != nil {
				return nil, fmt.Errorf("%s: %w", role, err)
			}
			out = append(out, stmts...)
		}
	}
	return out, nil
}

// statements reads the statements of a policy document, refusing those
// with a key the evaluation here does not model.
func statements(doc any, refused ...string) ([]Statement, error) {
	list, _ := at(doc, "Statement").([]any)
	var out []Statement
	for _, s := range list {
		sm, _ := s.(map[string]any)
		for _, k := range refused {
			if _, bad := sm[k]; bad {
				return nil, fmt.Errorf("%s is not allowed", k)
			}
		}
		st := Statement{Actions: strs(sm["Action"]), Resources: strs(sm["Resource"]), Condition: map[string]map[string][]string{}}
		st.Sid, _ = sm["Sid"].(string)
		st.Effect, _ = sm["Effect"].(string)
		conds, _ := sm["Condition"].(map[string]any)
		for op, kv := range conds {
			keys, _ := kv.(map[string]any)
			st.Condition[op] = map[string][]string{}
			for k, vals := range keys {
				st.Condition[op][k] = strs(vals)
			}
		}
		out = append(out, st)
	}
	return out, nil
}

// strs reads a value that is one string or a list of them.
func strs(v any) []string {
	list, isList := v.([]any)
	if !isList && v != nil {
		list = []any{v}
	}
	out := make([]string, len(list))
	for i, item := range list {
		out[i] = fmt.Sprint(item)
	}
	return out
}

// Request is one call as IAM sees it: an action on a resource ARN, with the
// request's condition keys (s3:prefix, ...).
type Request struct {
	Action   string
	Resource string
	Context  map[string]string
}

func (r Request) String() string {
	if len(r.Context) == 0 {
		return r.Action + " on " + r.Resource
	}
	return fmt.Sprintf("%s on %s with %v", r.Action, r.Resource, r.Context)
}

// Allows evaluates identity-policy statements as IAM does: an explicit Deny
// wins, then any Allow; nothing matching means denied.
func Allows(stmts []Statement, r Request) bool {
	matched := map[string]bool{} // effect -> some statement of it matches
	for _, s := range stmts {
		matched[s.Effect] = matched[s.Effect] || s.matches(r)
	}
	return matched["Allow"] && !matched["Deny"]
}

// conditionOperators are the condition operators Allows models; a
// statement with any other never matches, so the check fails closed.
var conditionOperators = map[string]func(want, got string) bool{
	"StringEquals": func(want, got string) bool { return want == got },
	"StringLike":   gateway.Glob,
	"ArnLike":      gateway.Glob,
	"Bool":         strings.EqualFold,
}

func (s Statement) matches(r Request) bool {
	// IAM matches actions case-insensitively, resources exactly.
	action := strings.ToLower(r.Action)
	if !slices.ContainsFunc(s.Actions, func(p string) bool { return gateway.Glob(strings.ToLower(p), action) }) ||
		!slices.ContainsFunc(s.Resources, func(p string) bool { return gateway.Glob(p, r.Resource) }) {
		return false
	}
	for op, keys := range s.Condition {
		match := conditionOperators[op]
		for k, vals := range keys {
			got, present := r.Context[k]
			if match == nil || !present || !slices.ContainsFunc(vals, func(want string) bool { return match(want, got) }) {
				return false
			}
		}
	}
	return true
}

// The actions AWS's Service Authorization Reference lists for the services
// this project uses, one a line; the file's header names its source.
//
//go:embed iam-actions.txt
var actionsFile string

// knownActions is the file in lower case: IAM matches actions
// case-insensitively.
var knownActions = strings.ToLower(actionsFile)

// ActionExists reports whether action (service:Action) is an IAM action of
// one of the services in the data file. A name IAM does not know is
// accepted in a policy and never matches a request, so a grant of it is a
// grant of nothing.
func ActionExists(action string) bool {
	// Each line of the file is one whole action, or a header line with a
	// '#', and ends in a newline.
	return !strings.ContainsAny(action, "#\n") && strings.Contains(knownActions, "\n"+strings.ToLower(action)+"\n")
}

// DynamoDBRequests returns the IAM requests DynamoDB authorizes one call
// with, given the operation of its X-Amz-Target header and its JSON body.
// tableARN turns a table name into its ARN (a name that already is an ARN
// is kept). Transactions are authorized item by item with the item's own
// action, so TransactWriteItems and TransactGetItems are never requests
// themselves; a query or scan of an index is a request on the index.
func DynamoDBRequests(op string, body []byte, tableARN func(table string) string) []Request {
	op = op[strings.LastIndex(op, ".")+1:]
	var in struct {
		TableName     string
		IndexName     string
		RequestItems  map[string]json.RawMessage
		TransactItems []map[string]struct{ TableName string }
	}
	// An unreadable body still becomes a request (on no table), so a call
	// the mapping does not understand is denied rather than unrecorded.
	_ = json.Unmarshal(body, &in)
	var out []Request
	add := func(action, table string) {
		if table != "" && !strings.HasPrefix(table, "arn:") {
			table = tableARN(table)
		}
		r := Request{Action: "dynamodb:" + action, Resource: cmp.Or(table, "*")}
		if (action == "Query" || action == "Scan") && in.IndexName != "" {
			r.Resource += "/index/" + in.IndexName
		}
		if !slices.ContainsFunc(out, func(o Request) bool { return o.Action == r.Action && o.Resource == r.Resource }) {
			out = append(out, r)
		}
	}
	switch op {
	case "TransactWriteItems", "TransactGetItems":
		for _, item := range in.TransactItems {
			for kind, target := range item {
				// Each kind is authorized as its item action (Put as
				// PutItem, ConditionCheck as ConditionCheckItem); an
				// unknown kind makes an action no policy can grant.
				add(kind+"Item", target.TableName)
			}
		}
	case "BatchWriteItem", "BatchGetItem":
		for _, table := range slices.Sorted(maps.Keys(in.RequestItems)) {
			add(op, table)
		}
	default:
		add(op, in.TableName)
	}
	return out
}
