package samtemplate_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ovrlrd/cloud/internal/devkit/samtemplate"
)

// The data holds the per-item actions DynamoDB authorizes a transaction
// with, and not the operation's name, which IAM does not know.
func TestActionData(t *testing.T) {
	for action, want := range map[string]bool{
		"dynamodb:TransactWriteItems":   false,
		"dynamodb:TransactGetItems":     false,
		"dynamodb:ConditionCheckItem":   true,
		"dynamodb:BatchWriteItem":       true,
		"DynamoDB:conditioncheckitem":   true, // IAM ignores case
		"lambda:InvokeFunction":         true,
		"sts:AssumeRoleWithWebIdentity": true,
		"nosuchservice:GetItem":         false,
		"dynamodb:":                     false,
		"":                              false,
	} {
		if got := samtemplate.ActionExists(action); got != want {
			t.Errorf("ActionExists(%q) = %v, want %v", action, got, want)
		}
	}
	for pattern, want := range map[string]bool{
		"dynamodb:*":           true,
		"dynamodb:Get*":        true,
		"dynamodb:?etItem":     true,
		"S3:*Object":           true,
		"dynamodb:Transact*":   false,
		"dynamodb:GetItem?":    false,
		"nosuchservice:*":      false,
		"nosuchservice:Get*":   false,
		"dynamodb:PutItem":     true,
		"dynamodb:PutItems":    false,
		"cloudformation:*Set*": true,
	} {
		if got := samtemplate.ActionPatternMatches(pattern); got != want {
			t.Errorf("ActionPatternMatches(%q) = %v, want %v", pattern, got, want)
		}
	}

	// The file is what its header says: one service:Action a line, sorted,
	// each once.
	b, err := os.ReadFile("iam-actions.txt")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for line := range strings.Lines(string(b)) {
		line = strings.TrimRight(line, "\n")
		if strings.HasPrefix(line, "#") {
			continue
		}
		service, name, ok := strings.Cut(line, ":")
		if !ok || service == "" || name == "" || strings.ContainsAny(line, " \t*?") {
			t.Errorf("line %q is not service:Action", line)
		}
		lines = append(lines, line)
	}
	if !slices.IsSorted(lines) || len(slices.Compact(slices.Clone(lines))) != len(lines) {
		t.Error("the actions are not sorted, or not each once")
	}
}

// wire captures what the real DynamoDB client sends: the operation of its
// X-Amz-Target and its body.
type wire struct {
	mu    sync.Mutex
	calls []wireCall
}

type wireCall struct {
	op   string
	body []byte
}

func (w *wire) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	w.mu.Lock()
	w.calls = append(w.calls, wireCall{op: r.Header.Get("X-Amz-Target"), body: body})
	w.mu.Unlock()
	rw.Header().Set("Content-Type", "application/x-amz-json-1.0")
	_, _ = rw.Write([]byte("{}"))
}

// take returns the one call made since the last take.
func (w *wire) take(t *testing.T) wireCall {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.calls) != 1 {
		t.Fatalf("%d calls on the wire, want 1", len(w.calls))
	}
	c := w.calls[0]
	w.calls = nil
	return c
}

// The IAM requests of each kind of DynamoDB call, from the bytes the SDK
// really sends.
func TestDynamoDBRequestsOnTheWire(t *testing.T) {
	w := &wire{}
	srv := httptest.NewServer(w)
	defer srv.Close()
	client := dynamodb.New(dynamodb.Options{
		Region:       samtemplate.SampleRegion,
		BaseEndpoint: aws.String(srv.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIAEXAMPLE", "example-secret", ""),
	})
	const prefix = "arn:aws:dynamodb:" + samtemplate.SampleRegion + ":" + samtemplate.SampleAccount + ":table/"
	tableARN := func(name string) string { return prefix + name }
	main, other := prefix+"main", prefix+"other"
	key := map[string]types.AttributeValue{"PK": &types.AttributeValueMemberS{Value: "k"}}
	req := func(action, resource string) samtemplate.Request {
		return samtemplate.Request{Action: action, Resource: resource}
	}
	cases := []struct {
		name string
		call func(ctx context.Context) error
		want []samtemplate.Request
	}{
		{"transact write", func(ctx context.Context) error {
			_, err := client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
				{ConditionCheck: &types.ConditionCheck{TableName: aws.String("main"), Key: key, ConditionExpression: aws.String("attribute_exists(PK)")}},
				{Put: &types.Put{TableName: aws.String("main"), Item: key}},
				{Update: &types.Update{TableName: aws.String("main"), Key: key, UpdateExpression: aws.String("SET n = :n"),
					ExpressionAttributeValues: map[string]types.AttributeValue{":n": &types.AttributeValueMemberN{Value: "1"}}}},
				{Delete: &types.Delete{TableName: aws.String("other"), Key: key}},
				{Put: &types.Put{TableName: aws.String("main"), Item: key}},
			}})
			return err
		}, []samtemplate.Request{
			req("dynamodb:ConditionCheckItem", main), req("dynamodb:PutItem", main),
			req("dynamodb:UpdateItem", main), req("dynamodb:DeleteItem", other),
		}},
		{"transact get", func(ctx context.Context) error {
			_, err := client.TransactGetItems(ctx, &dynamodb.TransactGetItemsInput{TransactItems: []types.TransactGetItem{
				{Get: &types.Get{TableName: aws.String("main"), Key: key}},
				{Get: &types.Get{TableName: aws.String("other"), Key: key}},
			}})
			return err
		}, []samtemplate.Request{req("dynamodb:GetItem", main), req("dynamodb:GetItem", other)}},
		{"query of an index", func(ctx context.Context) error {
			_, err := client.Query(ctx, &dynamodb.QueryInput{TableName: aws.String("main"), IndexName: aws.String("GSI1"),
				KeyConditionExpression:    aws.String("GSI1PK = :p"),
				ExpressionAttributeValues: map[string]types.AttributeValue{":p": &types.AttributeValueMemberS{Value: "p"}}})
			return err
		}, []samtemplate.Request{req("dynamodb:Query", main+"/index/GSI1")}},
		{"query of the table", func(ctx context.Context) error {
			_, err := client.Query(ctx, &dynamodb.QueryInput{TableName: aws.String("main"),
				KeyConditionExpression:    aws.String("PK = :p"),
				ExpressionAttributeValues: map[string]types.AttributeValue{":p": &types.AttributeValueMemberS{Value: "p"}}})
			return err
		}, []samtemplate.Request{req("dynamodb:Query", main)}},
		{"scan of an index", func(ctx context.Context) error {
			_, err := client.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String("main"), IndexName: aws.String("GSI1")})
			return err
		}, []samtemplate.Request{req("dynamodb:Scan", main+"/index/GSI1")}},
		{"batch write", func(ctx context.Context) error {
			del := []types.WriteRequest{{DeleteRequest: &types.DeleteRequest{Key: key}}}
			_, err := client.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{
				"other": del, "main": del,
			}})
			return err
		}, []samtemplate.Request{req("dynamodb:BatchWriteItem", main), req("dynamodb:BatchWriteItem", other)}},
		{"batch get", func(ctx context.Context) error {
			_, err := client.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{
				"main": {Keys: []map[string]types.AttributeValue{key}},
			}})
			return err
		}, []samtemplate.Request{req("dynamodb:BatchGetItem", main)}},
		{"get item", func(ctx context.Context) error {
			_, err := client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("main"), Key: key})
			return err
		}, []samtemplate.Request{req("dynamodb:GetItem", main)}},
		{"get item by table ARN", func(ctx context.Context) error {
			_, err := client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(other), Key: key})
			return err
		}, []samtemplate.Request{req("dynamodb:GetItem", other)}},
		{"describe table", func(ctx context.Context) error {
			_, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String("main")})
			return err
		}, []samtemplate.Request{req("dynamodb:DescribeTable", main)}},
	}
	for _, c := range cases {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := c.call(ctx)
		cancel()
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		sent := w.take(t)
		got := samtemplate.DynamoDBRequests(sent.op, sent.body, tableARN)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s (%s %s):\n got %v\nwant %v", c.name, sent.op, sent.body, got, c.want)
		}
		for _, r := range got {
			if !samtemplate.ActionExists(r.Action) {
				t.Errorf("%s: %s is not an IAM action", c.name, r.Action)
			}
		}
	}
}
