package samtemplate_test

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/ovrlrd/cloud/internal/devkit/samtemplate"
)

// samExpands lists what the SAM transform turns each SAM resource type of
// template.yaml into (the property that brings each in, or "" for always).
var samExpands = map[string]map[string]string{
	"AWS::Serverless::Function": {
		"AWS::Lambda::Function": "", "AWS::Lambda::Permission": "Events",
		"AWS::Lambda::Url": "FunctionUrlConfig", "AWS::Lambda::EventInvokeConfig": "EventInvokeConfig",
	},
	"AWS::Serverless::HttpApi": {"AWS::ApiGatewayV2::Api": "", "AWS::ApiGatewayV2::Stage": ""},
}

// handlerFree lists the calls CloudFormation makes for resource types
// without a registry schema handler section in testdata/schemas.
var handlerFree = map[string][]string{
	"AWS::S3::BucketPolicy":    {"s3:GetBucketPolicy", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy"},
	"AWS::IAM::RolePolicy":     {"iam:GetRolePolicy", "iam:PutRolePolicy", "iam:DeleteRolePolicy"},
	"AWS::ApiGatewayV2::Stage": {"apigateway:GET", "apigateway:POST", "apigateway:PATCH", "apigateway:DELETE"},
}

// unusedFeatures are handler calls made only for a property no resource of
// the type in template.yaml sets (SAM function properties carry the same
// names); the test asks for the grant once one does.
var unusedFeatures = map[string]string{
	"lambda:GetCodeSigningConfig":                    "CodeSigningConfigArn",
	"lambda:PutFunctionCodeSigningConfig":            "CodeSigningConfigArn",
	"lambda:DeleteFunctionCodeSigningConfig":         "CodeSigningConfigArn",
	"lambda:GetLayerVersion":                         "Layers",
	"iam:AttachRolePolicy":                           "ManagedPolicyArns",
	"iam:DetachRolePolicy":                           "ManagedPolicyArns",
	"logs:PutDataProtectionPolicy":                   "DataProtectionPolicy",
	"logs:DeleteDataProtectionPolicy":                "DataProtectionPolicy",
	"logs:PutIndexPolicy":                            "FieldIndexPolicies",
	"logs:DeleteIndexPolicy":                         "FieldIndexPolicies",
	"logs:AssociateKmsKey":                           "KmsKeyId",
	"logs:DisassociateKmsKey":                        "KmsKeyId",
	"cloudfront:UpdateDistributionWithStagingConfig": "DistributionConfig.ContinuousDeploymentPolicyId",
	"sns:PutDataProtectionPolicy":                    "DataProtectionPolicy",
	"dynamodb:DescribeImport":                        "ImportSourceSpecification",
	"dynamodb:ImportTable":                           "ImportSourceSpecification",
	"dynamodb:UpdateContributorInsights":             "ContributorInsightsSpecification",
	"dynamodb:EnableKinesisStreamingDestination":     "KinesisStreamSpecification",
	"dynamodb:DisableKinesisStreamingDestination":    "KinesisStreamSpecification",
	"dynamodb:UpdateKinesisStreamingDestination":     "KinesisStreamSpecification",
	"dynamodb:PutResourcePolicy":                     "ResourcePolicy",
	"dynamodb:DeleteResourcePolicy":                  "ResourcePolicy",
	"s3:PutAnalyticsConfiguration":                   "AnalyticsConfigurations",
	"s3:PutBucketCORS":                               "CorsConfiguration",
	"s3:PutInventoryConfiguration":                   "InventoryConfigurations",
	"s3:PutMetricsConfiguration":                     "MetricsConfigurations",
	"s3:PutBucketNotification":                       "NotificationConfiguration",
	"s3:PutReplicationConfiguration":                 "ReplicationConfiguration",
	"s3:PutBucketWebsite":                            "WebsiteConfiguration",
	"s3:DeleteBucketWebsite":                         "WebsiteConfiguration",
	"s3:PutAccelerateConfiguration":                  "AccelerateConfiguration",
	"s3:PutBucketAcl":                                "AccessControl",
	"s3:PutObjectAcl":                                "AccessControl",
	"s3:PutBucketObjectLockConfiguration":            "ObjectLockConfiguration",
	"s3:PutObjectLockConfiguration":                  "ObjectLockConfiguration",
	"s3:PutBucketLogging":                            "LoggingConfiguration",
	"s3:PutIntelligentTieringConfiguration":          "IntelligentTieringConfigurations",
	"s3:CreateBucketMetadataTableConfiguration":      "MetadataTableConfiguration",
	"s3:DeleteBucketMetadataTableConfiguration":      "MetadataTableConfiguration",
	"kms:DisableKey":                                 "Enabled",
	"kms:EnableKey":                                  "Enabled",
}

// withheld are handler calls the role does without, each for its reason.
var withheld = map[string]string{
	"s3:DeleteObject": "on a stage's buckets it would reach the users' workspaces in the sessions bucket, " +
		"and none of the buckets' properties in template.yaml concerns objects; the role deletes the web client's " +
		"files alone (deploy.yml, checked below)",
	"ecr:PutLifecyclePolicy":            "the SAM CLI's companion template sets no lifecycle policy",
	"ecr:DeleteLifecyclePolicy":         "as PutLifecyclePolicy",
	"ecr:DeleteRepositoryPolicy":        "the SAM CLI always sets the repository's policy",
	"ecr:PutImageScanningConfiguration": "the SAM CLI's companion template sets no scanning configuration",
	"ecr:PutImageTagMutability":         "the SAM CLI's companion template sets no tag mutability",
	"iam:DeleteRolePermissionsBoundary": "removing a role's boundary is what the boundary exists to stop (the role denies it); " +
		"CloudFormation calls it only when a deploy drops RolesPermissionsBoundary, which must fail",
	"kms:ScheduleKeyDeletion": "the projects' key is Retain: CloudFormation never deletes it, and its deletion would lose " +
		"every sealed token; an operator deletes a key no stack holds",
	"kms:DisableKeyRotation": "the projects' key rotates (EnableKeyRotation: true); a deploy that stops it must fail",
}

// otherCall is a handler's call to a service other than its type's own:
// made only for a property of template.yaml's resource (the test asks for
// a grant once the resource sets it), or, with no property, needing no
// grant of the deploy role's own, for the reason given.
type otherCall struct{ prop, why string }

// kmsManagedKey: the table's SSESpecification names no key, so DynamoDB
// uses the AWS managed key aws/dynamodb, whose key policy allows every
// principal of the account through DynamoDB (kms:ViaService,
// kms:CallerAccount); a key policy suffices within the account.
const kmsManagedKey = "a customer managed key; the AWS managed aws/dynamodb key's own policy lets the account's principals use it through DynamoDB"

// otherServices lists, per resource type, every call its handlers make to
// another service. None is ACM's: CloudFront checks a custom domain's
// certificate itself (the Service Authorization Reference names no
// dependent action of CreateDistribution or UpdateDistribution, and the
// distribution's handlers call none); only the console lists certificates
// with the user's acm:ListCertificates.
var otherServices = map[string]map[string]otherCall{
	"AWS::ApiGatewayV2::Api": {
		"s3:getObject": {prop: "DefinitionUri", why: "an OpenAPI document in S3; SAM inlines the routes as the API's Body"},
	},
	"AWS::DynamoDB::Table": {
		"iam:CreateServiceLinkedRole": {prop: "KinesisStreamSpecification", why: "the service-linked role of Kinesis streaming"},
		"kinesis:DescribeStream":      {prop: "KinesisStreamSpecification"},
		"kinesis:PutRecords":          {prop: "KinesisStreamSpecification"},
		"kms:CreateGrant":             {prop: "SSESpecification.KMSMasterKeyId", why: kmsManagedKey},
		"kms:Decrypt":                 {prop: "SSESpecification.KMSMasterKeyId", why: kmsManagedKey},
		"kms:DescribeKey":             {prop: "SSESpecification.KMSMasterKeyId", why: kmsManagedKey},
		"kms:Encrypt":                 {prop: "SSESpecification.KMSMasterKeyId", why: kmsManagedKey},
		"kms:ListAliases":             {prop: "SSESpecification.KMSMasterKeyId", why: kmsManagedKey},
		"kms:RevokeGrant":             {prop: "SSESpecification.KMSMasterKeyId", why: kmsManagedKey},
		"logs:CreateLogGroup":         {prop: "ImportSourceSpecification", why: "an import from S3 and its error log"},
		"logs:CreateLogStream":        {prop: "ImportSourceSpecification"},
		"logs:DescribeLogGroups":      {prop: "ImportSourceSpecification"},
		"logs:DescribeLogStreams":     {prop: "ImportSourceSpecification"},
		"logs:PutLogEvents":           {prop: "ImportSourceSpecification"},
		"logs:PutRetentionPolicy":     {prop: "ImportSourceSpecification"},
		"s3:GetObject":                {prop: "ImportSourceSpecification"},
		"s3:GetObjectMetadata":        {prop: "ImportSourceSpecification"},
		"s3:ListBucket":               {prop: "ImportSourceSpecification"},
	},
	"AWS::ECR::Repository": {
		"kms:CreateGrant": {why: "the SAM CLI's companion template sets no EncryptionConfiguration (AES256)"},
		"kms:DescribeKey": {why: "as kms:CreateGrant"},
		"kms:RetireGrant": {why: "as kms:CreateGrant"},
	},
	"AWS::Lambda::Function": {
		"iam:PassRole":                           {why: "checked below: the roles, to Lambda only"},
		"s3:GetObject":                           {why: "checked below on the artifacts sam deploy uploads (the zip functions' code)"},
		"s3:GetObjectVersion":                    {why: "as s3:GetObject"},
		"ec2:DescribeNetworkInterfaces":          {prop: "VpcConfig"},
		"ec2:DescribeSecurityGroups":             {prop: "VpcConfig"},
		"ec2:DescribeSubnets":                    {prop: "VpcConfig"},
		"ec2:DescribeVpcs":                       {prop: "VpcConfig"},
		"elasticfilesystem:DescribeMountTargets": {prop: "FileSystemConfigs"},
		"kms:CreateGrant":                        {prop: "KmsKeyArn", why: "a customer managed key for the environment"},
		"kms:Decrypt":                            {prop: "KmsKeyArn"},
		"kms:Encrypt":                            {prop: "KmsKeyArn"},
		"kms:GenerateDataKey":                    {prop: "KmsKeyArn"},
	},
	"AWS::Logs::LogGroup": {
		"firehose:TagDeliveryStream": {prop: "DataProtectionPolicy", why: "delivery of audit findings"},
		"s3:REST.PUT.OBJECT":         {prop: "DataProtectionPolicy", why: "not an IAM action: delivery of audit findings to S3"},
	},
	"AWS::S3::Bucket": {
		"iam:PassRole":                         {prop: "ReplicationConfiguration", why: "the replication role"},
		"s3tables:CreateNamespace":             {prop: "MetadataTableConfiguration"},
		"s3tables:CreateTable":                 {prop: "MetadataTableConfiguration"},
		"s3tables:GetTable":                    {prop: "MetadataTableConfiguration"},
		"s3tables:GetTableMetadataLocation":    {prop: "MetadataTableConfiguration"},
		"s3tables:PutTablePolicy":              {prop: "MetadataTableConfiguration"},
		"s3tables:UpdateTableMetadataLocation": {prop: "MetadataTableConfiguration"},
	},
	"AWS::SNS::Topic": {
		"iam:GetRole":  {prop: "DeliveryStatusLogging", why: "the delivery status logging role"},
		"iam:PassRole": {prop: "DeliveryStatusLogging"},
	},
}

// boundaryKeyed are the role actions whose requests carry
// iam:PermissionsBoundary (the Service Authorization Reference, IAM): the
// boundary a CreateRole or PutRolePermissionsBoundary sets, the role's
// own for the others. The roles of template.yaml carry the deploy stack's
// boundary, so CloudFormation's calls on them carry it.
var boundaryKeyed = map[string]bool{
	"iam:CreateRole": true, "iam:DeleteRole": true, "iam:UpdateRole": true, "iam:UpdateRoleDescription": true,
	"iam:UpdateAssumeRolePolicy": true, "iam:PutRolePolicy": true, "iam:DeleteRolePolicy": true,
	"iam:AttachRolePolicy": true, "iam:DetachRolePolicy": true,
	"iam:PutRolePermissionsBoundary": true, "iam:DeleteRolePermissionsBoundary": true,
}

// iamPrefix is the IAM service prefix of a CloudFormation service name.
var iamPrefix = map[string]string{
	"ApiGatewayV2": "apigateway", "CloudFront": "cloudfront", "CloudWatch": "cloudwatch", "DynamoDB": "dynamodb",
	"ECR": "ecr", "IAM": "iam", "KMS": "kms", "Lambda": "lambda", "Logs": "logs", "S3": "s3", "SNS": "sns",
}

// handlerActions returns the IAM actions of typ's own service that its
// registry schema says the create, read, update and delete handlers call,
// and apart the calls they make to other services.
func handlerActions(t *testing.T, typ string) (own, other []string) {
	t.Helper()
	if calls, ok := handlerFree[typ]; ok {
		return calls, nil
	}
	var schema struct {
		Handlers map[string]struct{ Permissions []string } `json:"handlers"`
	}
	readJSON(t, filepath.Join(schemasDir, strings.ReplaceAll(typ, "::", "-")+".json"), &schema)
	if len(schema.Handlers) == 0 {
		t.Fatalf("%s: its schema has no handlers; list its calls in handlerFree", typ)
	}
	prefix := iamPrefix[strings.Split(typ, "::")[1]]
	if prefix == "" {
		t.Fatalf("%s: no IAM prefix for its service in iamPrefix", typ)
	}
	seen := map[string]bool{}
	for _, h := range []string{"create", "read", "update", "delete"} {
		for _, a := range schema.Handlers[h].Permissions {
			service, name, _ := strings.Cut(a, ":")
			a = strings.ToLower(service) + ":" + name
			if seen[strings.ToLower(a)] {
				continue
			}
			seen[strings.ToLower(a)] = true
			switch {
			case strings.ToLower(service) != prefix:
				other = append(other, a)
			case samtemplate.ActionExists(a): // not a pseudo-action such as s3:REST.PUT.OBJECT
				own = append(own, a)
			}
		}
	}
	return own, other
}

// deployStage is what samconfig.toml says about one stage's deploy.
type deployStage struct{ stack, s3Prefix, ssmPrefix string }

func deployStages(t *testing.T) []deployStage {
	t.Helper()
	cfg := samconfig(t)
	var out []deployStage
	for _, env := range []string{"default", "prod"} {
		d := cfg[env+".deploy.parameters"]
		s := deployStage{stack: cfg[env+".global.parameters"]["stack_name"], s3Prefix: d["s3_prefix"]}
		for _, kv := range strings.Fields(d["parameter_overrides"]) {
			if v, ok := strings.CutPrefix(kv, "SsmPrefix="); ok {
				s.ssmPrefix = v
			}
		}
		if s.stack == "" || s.s3Prefix == "" || s.ssmPrefix == "" {
			t.Fatalf("samconfig.toml %s: %+v", env, s)
		}
		out = append(out, s)
	}
	return out
}

func md5hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// sampleARN is the ARN of the resource logical id of type typ as
// CloudFormation names it in stack (<stack>-<id>-<suffix>).
func sampleARN(typ, stack, id string) string {
	acct, region := samtemplate.SampleAccount, samtemplate.SampleRegion
	name := stack + "-" + id + "-1A2B3C4D5E6F"
	switch typ {
	case "AWS::IAM::Role", "AWS::IAM::RolePolicy":
		return "arn:aws:iam::" + acct + ":role/" + name
	case "AWS::DynamoDB::Table":
		return "arn:aws:dynamodb:" + region + ":" + acct + ":table/" + name
	case "AWS::S3::Bucket", "AWS::S3::BucketPolicy":
		return "arn:aws:s3:::" + strings.ToLower(name)
	case "AWS::Logs::LogGroup":
		return "arn:aws:logs:" + region + ":" + acct + ":log-group:" + name
	case "AWS::CloudWatch::Alarm":
		return "arn:aws:cloudwatch:" + region + ":" + acct + ":alarm:" + name
	case "AWS::SNS::Topic":
		return "arn:aws:sns:" + region + ":" + acct + ":" + name
	case "AWS::CloudFront::Distribution":
		return "arn:aws:cloudfront::" + acct + ":distribution/E1A2B3C4D5E6F7"
	case "AWS::CloudFront::OriginAccessControl": // ids AWS picks
		return "arn:aws:cloudfront::" + acct + ":origin-access-control/E2B3C4D5E6F7A1"
	case "AWS::CloudFront::ResponseHeadersPolicy":
		return "arn:aws:cloudfront::" + acct + ":response-headers-policy/0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"
	case "AWS::CloudFront::Function": // as template.yaml names WebIndexFunction
		return "arn:aws:cloudfront::" + acct + ":function/" + stack + "-web-index"
	case "AWS::Lambda::Function", "AWS::Lambda::Permission", "AWS::Lambda::Url", "AWS::Lambda::EventInvokeConfig":
		return "arn:aws:lambda:" + region + ":" + acct + ":function:" + name
	case "AWS::KMS::Key": // its id is AWS's, not a name
		return "arn:aws:kms:" + region + ":" + acct + ":key/0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"
	case "AWS::KMS::Alias": // as template.yaml names ProjectsKeyAlias
		return "arn:aws:kms:" + region + ":" + acct + ":alias/" + stack + "-projects"
	case "AWS::ApiGatewayV2::Api":
		return "arn:aws:apigateway:" + region + "::/apis/a1b2c3d4e5"
	case "AWS::ApiGatewayV2::Stage":
		return "arn:aws:apigateway:" + region + "::/apis/a1b2c3d4e5/stages/$default"
	case "AWS::ECR::Repository":
		// The SAM CLI's companion stack names it from the stack's and
		// the function's names.
		escape := func(s string) string { return regexp.MustCompile(`[^a-z0-9]`).ReplaceAllString(strings.ToLower(s), "") }
		return "arn:aws:ecr:" + region + ":" + acct + ":repository/" + escape(stack) + md5hex(stack)[:8] + "/" +
			escape(id) + md5hex(id)[:8] + "repo"
	}
	return ""
}

// created maps each resource type a deploy of template.yaml creates to the
// resources of template.yaml it comes from (for SAM types, the SAM
// resources that bring it in), the image repository included.
func created(t *testing.T, tpl samtemplate.Template) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, id := range tpl.ResourceIDs() {
		r := tpl.Resources()[id]
		typ, _ := r["Type"].(string)
		p, _ := r["Properties"].(map[string]any)
		if !strings.HasPrefix(typ, "AWS::Serverless::") {
			out[typ] = append(out[typ], id)
			continue
		}
		expands, ok := samExpands[typ]
		if !ok {
			t.Errorf("%s: what does the SAM transform make of %s? Add it to samExpands", id, typ)
		}
		for made, prop := range expands {
			if prop == "" || p[prop] != nil {
				out[made] = append(out[made], id)
			}
		}
		if p["PackageType"] == "Image" {
			out["AWS::ECR::Repository"] = append(out["AWS::ECR::Repository"], id)
		}
	}
	return out
}

// The deploy role may make every call CloudFormation's handlers make to
// create, read, update and delete each resource a deploy of template.yaml
// makes, for each stage samconfig.toml deploys, and the calls of sam
// deploy itself; every call a handler makes that it may not is listed,
// with why, and checked to stay unneeded.
func TestDeployRoleCanDeploy(t *testing.T) {
	tpl := load(t)
	dt := loadDeploy(t)
	st := deployStatements(t, dt, deployVariants()["new provider"])
	boundary := rolesBoundary(t, dt)
	acct, region := samtemplate.SampleAccount, samtemplate.SampleRegion
	checked := 0
	check := func(r samtemplate.Request) {
		t.Helper()
		checked++
		if !samtemplate.Allows(st, r) {
			t.Errorf("the deploy role may not %s", r)
		}
	}
	types := created(t, tpl)
	for _, stage := range deployStages(t) {
		for _, typ := range sortedKeys(types) {
			for _, id := range types[typ] {
				arn := sampleARN(typ, stage.stack, id)
				if arn == "" {
					t.Fatalf("%s (%s): no sample ARN; add the type to sampleARN and its grants to %s", id, typ, deployTemplate)
				}
				if typ == "AWS::CloudFront::Function" { // named by the template, not by CloudFormation
					env := tpl.SampleEnv(map[string]string{"SsmPrefix": stage.ssmPrefix, "AWS::StackName": stage.stack}, nil)
					if name, err := tpl.EvalString(props(t, tpl, id)["Name"], env); err != nil || !strings.HasSuffix(arn, ":function/"+name) {
						t.Errorf("%s: named %q (%v) in %s; sampleARN has %s", id, name, err, stage.stack, arn)
					}
				}
				own, other := handlerActions(t, typ)
				for _, a := range own {
					if prop, ok := unusedFeatures[a]; ok {
						if v := path(props(t, tpl, id), strings.Split(prop, ".")...); v != nil {
							t.Errorf("%s sets %s: the deploy role needs %s", id, prop, a)
						}
						continue
					}
					if withheld[a] != "" {
						continue
					}
					r := samtemplate.Request{Action: a, Resource: arn}
					if (typ == "AWS::IAM::Role" || typ == "AWS::IAM::RolePolicy") && boundaryKeyed[a] {
						r.Context = map[string]string{"iam:PermissionsBoundary": boundary}
					}
					check(r)
				}
				for _, a := range other {
					call, ok := otherServices[typ][a]
					switch {
					case !ok:
						t.Errorf("%s: its handlers call %s; grant it or say why not in otherServices", typ, a)
					case call.prop != "" && path(props(t, tpl, id), strings.Split(call.prop, ".")...) != nil:
						t.Errorf("%s sets %s: the deploy role needs %s", id, call.prop, a)
					}
				}
			}
		}
		// The roles go to Lambda, and to nothing else.
		for _, id := range types["AWS::IAM::Role"] {
			check(samtemplate.Request{Action: "iam:PassRole", Resource: sampleARN("AWS::IAM::Role", stage.stack, id),
				Context: map[string]string{"iam:PassedToService": "lambda.amazonaws.com"}})
		}

		// sam deploy: the stage's change sets through the SAM transform,
		// the artifacts it uploads, the companion stack of the image
		// repositories and the push, the HTTP API's creation and access
		// logs, and the parameters CloudFormation resolves.
		stack := func(name string) string {
			return "arn:aws:cloudformation:" + region + ":" + acct + ":stack/" + name + "/0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"
		}
		for _, a := range []string{"CreateChangeSet", "DescribeChangeSet", "ExecuteChangeSet", "DescribeStacks", "DescribeStackEvents", "GetTemplate"} {
			check(samtemplate.Request{Action: "cloudformation:" + a, Resource: stack(stage.stack)})
			check(samtemplate.Request{Action: "cloudformation:" + a, Resource: stack("aws-sam-cli-managed-default")})
		}
		check(samtemplate.Request{Action: "cloudformation:CreateChangeSet",
			Resource: "arn:aws:cloudformation:" + region + ":aws:transform/Serverless-2016-10-31"})
		companion := stage.stack + "-" + md5hex(stage.stack)[:8] + "-CompanionStack"
		for _, a := range []string{"CreateStack", "UpdateStack", "DescribeStacks", "ListStackResources"} {
			check(samtemplate.Request{Action: "cloudformation:" + a, Resource: stack(companion)})
		}
		artifacts := "arn:aws:s3:::aws-sam-cli-managed-default-samclisourcebucket-1a2b3c4d5e6f"
		for _, a := range []string{"s3:PutObject", "s3:GetObject", "s3:GetObjectVersion"} {
			check(samtemplate.Request{Action: a, Resource: artifacts + "/" + stage.s3Prefix + "/0123456789abcdef.template"})
		}
		for _, a := range []string{"s3:CreateBucket", "s3:PutBucketVersioning", "s3:PutBucketPolicy", "s3:ListBucket"} {
			check(samtemplate.Request{Action: a, Resource: artifacts})
		}
		for _, id := range types["AWS::ECR::Repository"] {
			for _, a := range []string{"BatchCheckLayerAvailability", "InitiateLayerUpload", "UploadLayerPart", "CompleteLayerUpload", "PutImage", "BatchGetImage"} {
				check(samtemplate.Request{Action: "ecr:" + a, Resource: sampleARN("AWS::ECR::Repository", stage.stack, id)})
			}
		}
		check(samtemplate.Request{Action: "ecr:GetAuthorizationToken", Resource: "*"})
		check(samtemplate.Request{Action: "apigateway:POST", Resource: "arn:aws:apigateway:" + region + "::/apis"})
		check(samtemplate.Request{Action: "apigateway:POST", Resource: "arn:aws:apigateway:" + region + "::/tags/" +
			"arn:aws:apigateway:" + region + "::/apis/a1b2c3d4e5"})
		for _, a := range []string{"CreateLogDelivery", "GetLogDelivery", "UpdateLogDelivery", "DeleteLogDelivery", "ListLogDeliveries", "PutResourcePolicy", "DescribeResourcePolicies"} {
			check(samtemplate.Request{Action: "logs:" + a, Resource: "*"})
		}
		check(samtemplate.Request{Action: "logs:DescribeLogGroups", Resource: "arn:aws:logs:" + region + ":" + acct + ":log-group:*"})
		for _, p := range resolvedParameters(t, stage.ssmPrefix) {
			check(samtemplate.Request{Action: "ssm:GetParameters", Resource: "arn:aws:ssm:" + region + ":" + acct + ":parameter" + p})
		}
		// deploy.yml after the deploy: aws s3 sync of the web client into
		// its bucket's web/, and the invalidation of CloudFront's copies.
		web := strings.ToLower(sampleARN("AWS::S3::Bucket", stage.stack, "WebBucket"))
		check(samtemplate.Request{Action: "s3:ListBucket", Resource: web})
		for _, a := range []string{"s3:PutObject", "s3:DeleteObject"} {
			check(samtemplate.Request{Action: a, Resource: web + "/web/app.js"})
		}
		check(samtemplate.Request{Action: "cloudfront:CreateInvalidation", Resource: sampleARN("AWS::CloudFront::Distribution", stage.stack, "Distribution")})
		for _, id := range cloudFrontPolicies(t, tpl) {
			check(samtemplate.Request{Action: "cloudfront:GetCachePolicy", Resource: "arn:aws:cloudfront::" + acct + ":cache-policy/" + id})
			check(samtemplate.Request{Action: "cloudfront:GetOriginRequestPolicy", Resource: "arn:aws:cloudfront::" + acct + ":origin-request-policy/" + id})
		}
	}
	t.Logf("%d calls of %d resource types in %d stages", checked, len(types), len(deployStages(t)))
}

// resolvedParameters lists the SSM parameters template.yaml's dynamic
// references ({{resolve:ssm:name[:version]}}) name, with the stage's
// SsmPrefix; CloudFormation reads them with the deploying credentials.
func resolvedParameters(t *testing.T, ssmPrefix string) []string {
	t.Helper()
	b, err := os.ReadFile("../../../template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	text := strings.ReplaceAll(string(b), "${SsmPrefix}", ssmPrefix)
	for _, m := range regexp.MustCompile(`\{\{resolve:ssm:([^:}]+)`).FindAllStringSubmatch(text, -1) {
		seen[m[1]] = true
	}
	if len(seen) == 0 {
		t.Fatal("template.yaml resolves no SSM parameter; the deploy role's DeployParameters grant would be unused")
	}
	return sortedKeys(seen)
}

// cloudFrontPolicies lists the cache and origin request policy ids the
// distribution's behaviours name.
func cloudFrontPolicies(t *testing.T, tpl samtemplate.Template) []string {
	t.Helper()
	seen := map[string]bool{}
	dc := path(props(t, tpl, "Distribution"), "DistributionConfig")
	behaviours := append([]any{path(dc, "DefaultCacheBehavior")}, path(dc, "CacheBehaviors").([]any)...)
	for _, b := range behaviours {
		for _, k := range []string{"CachePolicyId", "OriginRequestPolicyId"} {
			if id, ok := path(b, k).(string); ok {
				seen[id] = true
			}
		}
	}
	return sortedKeys(seen)
}

// The deploy role reads exactly the parameters CloudFormation resolves for
// the stages samconfig.toml deploys: none of the functions' secrets.
func TestDeployRoleReadsOnlyResolvedParameters(t *testing.T) {
	dt := loadDeploy(t)
	want := map[string]bool{}
	for _, stage := range deployStages(t) {
		for _, p := range resolvedParameters(t, stage.ssmPrefix) {
			want["arn:aws:ssm:"+samtemplate.SampleRegion+":"+samtemplate.SampleAccount+":parameter"+p] = true
		}
	}
	var got []string
	for _, s := range deployStatements(t, dt, deployVariants()["new provider"]) {
		for _, a := range s.Actions {
			if strings.HasPrefix(strings.ToLower(a), "ssm:") {
				got = append(got, s.Resources...)
			}
		}
	}
	sort.Strings(got)
	if fmt.Sprint(got) != fmt.Sprint(sortedKeys(want)) {
		t.Errorf("SSM grants %v, want exactly %v", got, sortedKeys(want))
	}
}
