package samtemplate

import (
	"path/filepath"
	"slices"
	"strings"
)

// Sample account and region for evaluating the template offline.
const (
	SampleAccount = "123456789012"
	SampleRegion  = "eu-west-1"
)

// SampleEnv is an Env in which every resource of the template exists: each
// resource's physical name is names[logical id], or the logical id in lower
// case, and its ARN is built from the name the way AWS builds it. params
// override parameter defaults.
func (t Template) SampleEnv(params, names map[string]string) Env {
	e := Env{
		Params: map[string]string{
			"AWS::AccountId": SampleAccount, "AWS::Region": SampleRegion,
			"AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com",
			"AWS::StackName": "ovrlrd-sample",
		},
		Refs:  map[string]string{},
		Attrs: map[string]string{},
	}
	for k, v := range params {
		e.Params[k] = v
	}
	prefix := "arn:aws:"
	rgnAcct := SampleRegion + ":" + SampleAccount + ":"
	for id, r := range t.Resources() {
		name := names[id]
		if name == "" {
			name = strings.ToLower(id)
		}
		e.Refs[id] = name
		switch r["Type"] {
		case "AWS::DynamoDB::Table":
			e.Attrs[id+".Arn"] = prefix + "dynamodb:" + rgnAcct + "table/" + name
		case "AWS::S3::Bucket":
			e.Attrs[id+".Arn"] = prefix + "s3:::" + name
		case "AWS::Logs::LogGroup":
			e.Attrs[id+".Arn"] = prefix + "logs:" + rgnAcct + "log-group:" + name + ":*"
		case "AWS::Serverless::Function", "AWS::Lambda::Function":
			e.Attrs[id+".Arn"] = prefix + "lambda:" + rgnAcct + "function:" + name
			e.Attrs[id+"Url.FunctionUrl"] = "https://" + name + ".lambda-url." + SampleRegion + ".on.aws/"
		case "AWS::IAM::Role":
			e.Attrs[id+".Arn"] = prefix + "iam::" + SampleAccount + ":role/" + name
		case "AWS::SNS::Topic":
			e.Refs[id] = prefix + "sns:" + rgnAcct + name
		case "AWS::CloudFront::Distribution":
			e.Attrs[id+".DomainName"] = name + ".cloudfront.net"
		}
	}
	return e
}

// SampleEvents returns the Lambda events among dir's *.json files, sorted:
// all but env.json, which is sam local's environment (--env-vars).
func SampleEvents(dir string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(files, func(f string) bool { return filepath.Base(f) == "env.json" }), nil
}
