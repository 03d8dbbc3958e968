package dynamolocal

import (
	"cmp"
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/guregu/dynamo/v2"

	"github.com/ovrlrd/cloud/internal/config"
	"github.com/ovrlrd/cloud/internal/store"
)

// TableDef describes the store's one table. It is written once, here:
// CreateTable builds local and test tables from it, a test checks that
// template.yaml declares the same keys, index and TTL attribute, and the
// store's tests run against the tables it makes.
type TableDef struct {
	HashKey      string
	RangeKey     string
	Attributes   map[string]string // name -> DynamoDB scalar type (S, N, B)
	Indexes      []IndexDef
	TTLAttribute string
}

// IndexDef is a global secondary index.
type IndexDef struct {
	Name       string
	HashKey    string
	RangeKey   string
	Projection string // ALL, KEYS_ONLY
}

// Definition returns the table's definition.
func Definition() TableDef {
	return TableDef{
		HashKey:    "PK",
		RangeKey:   "SK",
		Attributes: map[string]string{"PK": "S", "SK": "S", "GSI1PK": "S", "GSI1SK": "S"},
		Indexes: []IndexDef{
			// Conversations of one owner, newest updatedAt first. Sparse:
			// only conversation items carry GSI1PK.
			{Name: "GSI1", HashKey: "GSI1PK", RangeKey: "GSI1SK", Projection: "ALL"},
		},
		TTLAttribute: "ttl",
	}
}

// CreateTable creates the table on demand and turns on TTL. In AWS the table
// comes from template.yaml.
func CreateTable(ctx context.Context, db *dynamo.DB, name string) error {
	def := Definition()
	// guregu builds key schema and attribute definitions from a struct's tags.
	ct := db.CreateTable(name, struct {
		PK string `dynamo:"PK,hash"`
		SK string `dynamo:"SK,range"`
	}{}).OnDemand(true)
	for _, ix := range def.Indexes {
		ct = ct.Index(dynamo.Index{
			Name:           ix.Name,
			HashKey:        ix.HashKey,
			HashKeyType:    dynamo.StringType,
			RangeKey:       ix.RangeKey,
			RangeKeyType:   dynamo.StringType,
			ProjectionType: dynamo.IndexProjection(ix.Projection),
		})
	}
	if err := ct.Wait(ctx); err != nil {
		return fmt.Errorf("create table %s: %w", name, err)
	}
	if err := db.Table(name).UpdateTTL(def.TTLAttribute, true).Run(ctx); err != nil {
		return fmt.Errorf("enable ttl on %s: %w", name, err)
	}
	return nil
}

// EnsureAppTable creates the table cfg names unless it exists, in the
// database its functions see: DynamoDB Local keeps one per access key and
// region, and they call it with the local key as the app does.
func EnsureAppTable(ctx context.Context, cfg config.Config) error {
	db := store.NewDB(AWSConfig(cfg.Region, cmp.Or(cfg.LocalAWSKey.Reveal(), "local")), cfg.DynamoDBEndpoint)
	if err := CreateTable(ctx, db, cfg.TableName); !errors.As(err, new(*types.ResourceInUseException)) {
		return err
	}
	return nil
}

// AWSConfig is the SDK's settings for DynamoDB Local, which takes any
// credentials: the access key and region only pick the database.
func AWSConfig(region, key string) aws.Config {
	return aws.Config{Region: region, Credentials: credentials.NewStaticCredentialsProvider(key, key, "")}
}
