package dynamolocal_test

import (
	"context"
	"testing"
	"time"

	"github.com/guregu/dynamo/v2"

	"github.com/ovrlrd/cloud/internal/config"
	"github.com/ovrlrd/cloud/internal/devkit/dynamolocal"
	"github.com/ovrlrd/cloud/internal/devkit/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

// EnsureAppTable makes a missing table, and leaves one that exists as it
// is, items included: make dev starts over the data of its last run.
func TestEnsureAppTableKeepsAnExistingOne(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := config.Config{Region: "us-east-1", DynamoDBEndpoint: storetest.Endpoint(), TableName: "ensure-" + storetest.TableName()}
	if err := dynamolocal.EnsureAppTable(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	table := storetest.DB().Table(cfg.TableName)
	defer table.DeleteTable().Run(ctx)
	if err := table.Put(map[string]any{"PK": "k", "SK": "s"}).Run(ctx); err != nil {
		t.Fatal(err)
	}
	if err := dynamolocal.EnsureAppTable(ctx, cfg); err != nil {
		t.Fatalf("over an existing table: %v", err)
	}
	var item map[string]any
	if err := table.Get("PK", "k").Range("SK", dynamo.Equal, "s").One(ctx, &item); err != nil {
		t.Fatalf("the item put before: %v", err)
	}
}
