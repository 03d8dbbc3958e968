package paramstore_test

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go"

	"github.com/ovrlrd/cloud/internal/devkit/ssmfake"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/paramstore"
)

// client builds the real SDK client against endpoint, with no ambient AWS
// configuration involved.
func client(endpoint string) *ssm.Client {
	return paramstore.NewClient(aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
		BaseEndpoint: aws.String(endpoint),
	})
}

func fake(t *testing.T, params map[string]string) *ssmfake.Server {
	t.Helper()
	srv := ssmfake.New(params)
	t.Cleanup(srv.Close)
	return srv
}

func TestFetchUnderPrefix(t *testing.T) {
	t.Parallel()
	srv := fake(t, map[string]string{"/app/prod/a": "alpha", "/app/prod/b": "beta"})
	store := paramstore.New(client(srv.URL), "/app/prod/")

	found, err := store.Fetch(context.Background(), []string{"a", "b", "missing"})
	if err != nil {
		t.Fatal(err)
	}
	if found["a"] != "alpha" || found["b"] != "beta" || len(found) != 2 {
		t.Errorf("found = %v", found)
	}
	reqs := srv.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d calls, want 1", len(reqs))
	}
	if !reqs[0].WithDecryption {
		t.Error("WithDecryption not set")
	}
	if want := []string{"/app/prod/a", "/app/prod/b", "/app/prod/missing"}; !slices.Equal(reqs[0].Names, want) {
		t.Errorf("names sent = %v, want %v", reqs[0].Names, want)
	}
}

func TestFetchRetriesThrottling(t *testing.T) {
	t.Parallel()
	srv := fake(t, map[string]string{"/p/k": "v"})
	srv.Throttle(2)

	found, err := paramstore.New(client(srv.URL), "/p").Fetch(context.Background(), []string{"k"})
	if err != nil {
		t.Fatal(err)
	}
	if found["k"] != "v" {
		t.Errorf("found = %v", found)
	}
	if srv.Calls() != 3 {
		t.Errorf("%d calls, want 3 (two throttled, one served)", srv.Calls())
	}
}

func TestFetchGivesUpAfterMaxAttempts(t *testing.T) {
	t.Parallel()
	srv := fake(t, map[string]string{"/p/k": "v"})
	srv.FailNext(10, 500, "InternalServerError", "boom")

	_, err := paramstore.New(client(srv.URL), "/p").Fetch(context.Background(), []string{"k", "j"})
	if err == nil {
		t.Fatal("no error")
	}
	if srv.Calls() != paramstore.MaxAttempts {
		t.Errorf("%d calls, want %d", srv.Calls(), paramstore.MaxAttempts)
	}
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "InternalServerError" {
		t.Errorf("cause not wrapped: %v", err)
	}
	if !ovrlrd.IsCode(err, ovrlrd.EUNAVAILABLE) {
		t.Errorf("code = %q, want %q", ovrlrd.ErrorCode(err), ovrlrd.EUNAVAILABLE)
	}
	for _, name := range []string{"/p/k", "/p/j"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
}

func TestFetchUnreachableFailsFast(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	start := time.Now()
	_, err = paramstore.New(client("http://"+addr), "/p").Fetch(context.Background(), []string{"k"})
	if err == nil {
		t.Fatal("no error")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
	if !strings.Contains(err.Error(), "/p/k") {
		t.Errorf("error does not name the parameter: %v", err)
	}
}
