package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ovrlrd/cloud/internal/dynamolocal"
)

// Turns' tools run on the machine make dev runs on, and its stand-ins
// listen on loopback: only the generated key opens them.
func TestLocalStandInsNeedTheGeneratedKey(t *testing.T) {
	ok := httptest.NewServer(onlyKey("LOCALKEY", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusTeapot)
	})))
	defer ok.Close()
	for auth, want := range map[string]int{
		"": http.StatusForbidden,
		"AWS4-HMAC-SHA256 Credential=local/20261203/us-east-1/s3/aws4_request":    http.StatusForbidden,
		"AWS4-HMAC-SHA256 Credential=LOCALKEY/20261203/us-east-1/s3/aws4_request": http.StatusTeapot,
	} {
		req, _ := http.NewRequest("GET", ok.URL+"/ovrlrd-sessions?list-type=2", nil)
		req.Header.Set("Authorization", auth)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("S3 stand-in with %q: %d, want %d", auth, resp.StatusCode, want)
		}
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
