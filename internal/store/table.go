package store

import (
	"context"
	"fmt"

	"github.com/guregu/dynamo/v2"
)

// TableDef describes the one table. It is written once, here: CreateTable
// builds local and test tables from it, and a test checks that template.yaml
// declares the same keys, index and TTL attribute.
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

// Attribute and index names shared by every item type.
const (
	attrPK    = "PK"
	attrSK    = "SK"
	attrGSIPK = "GSI1PK"
	attrGSISK = "GSI1SK"
	attrTTL   = "ttl"
	indexGSI1 = "GSI1"
)

// Definition returns the table's definition.
func Definition() TableDef {
	return TableDef{
		HashKey:  attrPK,
		RangeKey: attrSK,
		Attributes: map[string]string{
			attrPK: "S", attrSK: "S", attrGSIPK: "S", attrGSISK: "S",
		},
		Indexes: []IndexDef{
			// Conversations of one owner, newest updatedAt first. Sparse:
			// only conversation items carry GSI1PK.
			{Name: indexGSI1, HashKey: attrGSIPK, RangeKey: attrGSISK, Projection: "ALL"},
		},
		TTLAttribute: attrTTL,
	}
}

// CreateTable creates the table on demand and turns on TTL, for local runs
// and tests. In AWS the table comes from template.yaml.
func CreateTable(ctx context.Context, db *dynamo.DB, name string) error {
	def := Definition()
	// guregu builds key schema and attribute definitions from a struct's tags.
	type keys struct {
		PK string `dynamo:"PK,hash"`
		SK string `dynamo:"SK,range"`
	}
	ct := db.CreateTable(name, keys{}).OnDemand(true)
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
