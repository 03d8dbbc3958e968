// Package storetest gives each test package its own table in DynamoDB Local.
// `make test` starts one DynamoDB Local for the whole run and exports
// DYNAMODB_ENDPOINT; a package run on its own (go test ./internal/x) starts a
// private one instead, so tests never need a mock.
package storetest

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/guregu/dynamo/v2"

	"github.com/ovrlrd/cloud/internal/devkit/dynamolocal"
	"github.com/ovrlrd/cloud/internal/store"
)

var (
	endpoint  string
	tableName string
)

// Main wraps testing.M: it makes sure DynamoDB Local is reachable, creates a
// table for this package, runs the tests and drops the table.
func Main(m *testing.M) {
	os.Exit(Run(m))
}

// Run is Main without the exit, for a TestMain with work of its own after
// the tests; it returns the exit code.
func Run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	endpoint = os.Getenv("DYNAMODB_ENDPOINT")
	if endpoint == "" {
		srv, err := dynamolocal.Start(ctx, dynamolocal.Options{})
		if err != nil {
			fmt.Fprintln(os.Stderr, "storetest:", err)
			return 1
		}
		defer srv.Stop()
		endpoint = srv.Endpoint
	}
	tableName = "test-" + rand.Text()[:12]
	db := DB()
	if err := dynamolocal.CreateTable(ctx, db, tableName); err != nil {
		fmt.Fprintln(os.Stderr, "storetest:", err)
		return 1
	}
	code := m.Run()
	_ = db.Table(tableName).DeleteTable().Run(context.Background())
	return code
}

// Endpoint returns the DynamoDB Local endpoint of this run.
func Endpoint() string { return endpoint }

// TableName returns this package's table.
func TableName() string { return tableName }

// AWSConfig returns SDK settings for DynamoDB Local.
func AWSConfig() aws.Config { return dynamolocal.AWSConfig("us-east-1", "local") }

// DB returns a handle on DynamoDB Local.
func DB() *dynamo.DB { return store.NewDB(AWSConfig(), endpoint) }

// New returns a Store over this package's table.
func New(t testing.TB) *store.Store {
	t.Helper()
	return store.New(DB(), store.Options{Table: tableName, CursorKey: []byte("test-cursor-key-0123456789abcdef")})
}
