package devenv

import "github.com/ovrlrd/cloud/internal/config"

// make dev's servers, as `sam local invoke --env-vars events/env.json`
// reaches them from SAM's containers (events/env.json names these values; a
// test keeps them in step).
const (
	// DevDynamoDBPort is where make dev's DynamoDB Local listens unless
	// DEV_DYNAMODB_PORT says otherwise (0: any free port).
	DevDynamoDBPort = 8000
	// DevS3Port is where make dev's S3 stand-in listens unless DEV_S3_PORT
	// says otherwise (0: any free port).
	DevS3Port = 8001
	// DevTable is make dev's table, in its own database and in sam local's.
	DevTable = "ovrlrd-local"

	// SAMLocalKey is the access key events/env.json gives sam local. It is
	// committed, so it is public: make dev gives it a data space of its own,
	// a database of its own in DynamoDB Local (one per key and region) and
	// only SAMLocalBucket in the S3 stand-in. Letters and digits only: it
	// names DynamoDB Local's database file.
	SAMLocalKey = "LOCALSAMINVOKEPUBLICKEY"
	// SAMLocalBucket is sam local's bucket in make dev's S3 stand-in.
	SAMLocalBucket = "ovrlrd-samlocal"
	// SAMLocalRegion is the region make dev makes sam local's table in.
	// DynamoDB Local keeps a database per key and region, and SAM gives its
	// containers the region of the caller's AWS profile unless told
	// otherwise: invocations pass --region with this one.
	SAMLocalRegion = config.DefaultRegion
)
