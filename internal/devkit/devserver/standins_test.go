package devserver

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ovrlrd/cloud/internal/devkit/devenv"
	"github.com/ovrlrd/cloud/internal/devkit/dynamolocal"
)

// Turns' tools run on the machine make dev runs on, and its stand-ins
// listen there: only the generated key opens them, and sam local's public
// key opens its own bucket and nothing else.
func TestLocalStandInsNeedTheGeneratedKey(t *testing.T) {
	ok := httptest.NewServer(s3Access("LOCALKEY", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusTeapot)
	})))
	defer ok.Close()
	sam := devenv.SAMLocalKey
	for _, c := range []struct {
		key, path string
		want      int
	}{
		{"", "/ovrlrd-sessions?list-type=2", http.StatusForbidden},
		{"local", "/ovrlrd-sessions?list-type=2", http.StatusForbidden},
		{"LOCALKEY", "/ovrlrd-sessions?list-type=2", http.StatusTeapot},
		{"LOCALKEY", "/" + devenv.SAMLocalBucket + "/users/u1/c1.tar.gz", http.StatusTeapot},
		{"LOCALKEY", "/", http.StatusTeapot},
		{sam, "/" + devenv.SAMLocalBucket, http.StatusTeapot},
		{sam, "/" + devenv.SAMLocalBucket + "?list-type=2&prefix=users/", http.StatusTeapot},
		{sam, "/" + devenv.SAMLocalBucket + "/users/u1/c1.tar.gz", http.StatusTeapot},
		{sam, "/", http.StatusForbidden}, // every bucket's name
		{sam, "/ovrlrd-sessions?list-type=2", http.StatusForbidden},
		{sam, "/ovrlrd-sessions/users/u1/c1.tar.gz", http.StatusForbidden},
		{sam, "/" + devenv.SAMLocalBucket + "x/users/u1/c1.tar.gz", http.StatusForbidden},
	} {
		req, _ := http.NewRequest("GET", ok.URL+c.path, nil)
		if c.key != "" {
			req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+c.key+"/20261203/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("S3 stand-in, key %q, %s: %d, want %d", c.key, c.path, resp.StatusCode, c.want)
		}
	}
	// Without a generated key nothing opens, whatever the header names.
	closed := httptest.NewServer(s3Access("", http.NotFoundHandler()))
	defer closed.Close()
	req, _ := http.NewRequest("GET", closed.URL+"/ovrlrd-sessions", nil)
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=/20261203/us-east-1/s3/aws4_request")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("S3 stand-in without a key: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	ctx := context.Background()
	srv, err := dynamolocal.Start(ctx, dynamolocal.Options{PerKey: true})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	client := func(key string) *dynamodb.Client {
		return dynamodb.NewFromConfig(aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider(key, key, "")},
			func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(srv.Endpoint) })
	}
	_, err = client("LOCALKEY").CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String("ovrlrd-local"),
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("PK"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("PK"), KeyType: types.KeyTypeHash}},
		BillingMode:          types.BillingModePayPerRequest,
	})
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]int{"LOCALKEY": 1, "local": 0, "AKIAEXAMPLE": 0} {
		out, err := client(key).ListTables(ctx, &dynamodb.ListTablesInput{})
		if err != nil || len(out.TableNames) != want {
			t.Errorf("DynamoDB Local with key %s: %v %v, want %d tables", key, out, err, want)
		}
	}
}
