package devserver

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ovrlrd/cloud/internal/config"
	"github.com/ovrlrd/cloud/internal/devkit/devenv"
	"github.com/ovrlrd/cloud/internal/devkit/sandboxtest"
)

// make dev serves sam local (events/env.json) from the ports it is given,
// with a table and a bucket of its own for sam local's public key: that key
// sees them, and nothing of make dev's own data; make dev's key keeps
// every bucket.
func TestDevServesSAMLocal(t *testing.T) {
	dir := sandboxtest.Dir(t)
	ports, err := devenv.FreePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	dynamoPort, s3Port := ports[0], ports[1]
	env := map[string]string{
		"DEV_DATA_DIR": dir, "LISTEN_ADDR": "127.0.0.1:0",
		"DEV_DYNAMODB_PORT": strconv.Itoa(dynamoPort), "DEV_S3_PORT": strconv.Itoa(s3Port), "DEV_GIT_PORT": "0",
	}
	devCtx, stopDev := context.WithCancel(context.Background())
	out := &devenv.Buffer{}
	done := make(chan error, 1)
	ready := make(chan string, 1)
	go func() {
		done <- Run(devCtx, Options{Getenv: func(k string) string { return env[k] }, Out: out, Ready: func(i Info) { ready <- i.Addr }})
	}()
	t.Cleanup(func() {
		stopDev()
		if err := <-done; err != nil {
			t.Errorf("dev: %v", err)
		}
	})
	select {
	case addr := <-ready:
		if status := healthStatus(t, "http://"+addr+"/health"); status != 200 {
			t.Fatalf("/health = %d", status)
		}
	case err := <-done:
		done <- err // for the clean-up
		t.Fatalf("dev stopped before serving: %v", err)
	}
	if !strings.Contains(out.String(), "DynamoDB Local on port "+strconv.Itoa(dynamoPort)) {
		t.Errorf("the banner does not say where sam local finds DynamoDB Local:\n%s", out.String())
	}
	secrets, err := readEnvFile(filepath.Join(dir, "secrets.env"))
	if err != nil {
		t.Fatal(err)
	}
	own := secrets["LOCAL_AWS_KEY"]
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	ddb := func(key string) *dynamodb.Client {
		return dynamodb.NewFromConfig(aws.Config{Region: devenv.SAMLocalRegion, Credentials: credentials.NewStaticCredentialsProvider(key, key, "")},
			func(o *dynamodb.Options) { o.BaseEndpoint = aws.String("http://127.0.0.1:" + strconv.Itoa(dynamoPort)) })
	}
	items := func(key string) int32 {
		t.Helper()
		out, err := ddb(key).Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(devenv.DevTable), Select: types.SelectCount})
		if err != nil {
			t.Fatalf("table %s with key %s: %v", devenv.DevTable, key, err)
		}
		return out.Count
	}
	if n := items(own); n == 0 {
		t.Fatal("make dev's own table is empty: the demo user was not signed in")
	}
	if n := items(devenv.SAMLocalKey); n != 0 {
		t.Errorf("sam local's key sees %d items: make dev's own data", n)
	}

	s3c := func(key string) *s3.Client {
		return s3.NewFromConfig(aws.Config{Region: devenv.SAMLocalRegion, Credentials: credentials.NewStaticCredentialsProvider(key, key, "")},
			func(o *s3.Options) {
				o.BaseEndpoint = aws.String("http://127.0.0.1:" + strconv.Itoa(s3Port))
				o.UsePathStyle = true
			})
	}
	denied := func(err error) bool {
		var re *awshttp.ResponseError
		return errors.As(err, &re) && re.HTTPStatusCode() == 403
	}
	sam := s3c(devenv.SAMLocalKey)
	if _, err := sam.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(devenv.SAMLocalBucket), Key: aws.String("users/u1/c1.tar.gz"),
		Body: strings.NewReader("x")}); err != nil {
		t.Errorf("sam local's key in its bucket: %v", err)
	}
	if _, err := sam.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(config.DefaultLocalBucket)}); !denied(err) {
		t.Errorf("sam local's key in make dev's bucket: %v, want 403", err)
	}
	if _, err := sam.ListBuckets(ctx, &s3.ListBucketsInput{}); !denied(err) {
		t.Errorf("sam local's key lists the buckets: %v, want 403", err)
	}
	for _, bucket := range []string{config.DefaultLocalBucket, devenv.SAMLocalBucket} {
		if _, err := s3c(own).HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(bucket)}); err != nil {
			t.Errorf("make dev's key in %s: %v", bucket, err)
		}
	}
}
