package config_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/ovrlrd/cloud/internal/config"
	"github.com/ovrlrd/cloud/internal/devkit/ssmfake"
	"github.com/ovrlrd/cloud/internal/paramstore"
)

const (
	prefix = "/ovrlrd/prod"
	// Each secret is distinct and long enough to spot in any output.
	key1      = "k1-secret-0123456789abcdefghijklmnop"
	key2      = "k2-secret-0123456789abcdefghijklmnop"
	apiKey    = "api-key-value-qwertyuiop"
	claudeKey = "sk-ant-test-value-asdfghjkl"
	oauthTok  = "sk-ant-oat01-test-value-zxcvbnm"
	originSec = "origin-secret-value-poiuytrewq"
)

// apnsPEM is a freshly generated .p8-style key.
var apnsPEM = func() string {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		panic(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}()

func getenv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// with returns a copy of base with overrides applied; "" deletes a name.
func with(base map[string]string, kv ...string) map[string]string {
	m := make(map[string]string, len(base)+len(kv)/2)
	for k, v := range base {
		m[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			delete(m, kv[i])
		} else {
			m[kv[i]] = kv[i+1]
		}
	}
	return m
}

func localEnv(kv ...string) map[string]string {
	return with(map[string]string{"STAGE": "local", "JWT_SECRET": "k1:" + key1}, kv...)
}

func prodEnv(kv ...string) map[string]string {
	return with(map[string]string{
		"STAGE":                "prod",
		"AWS_REGION":           "eu-west-1",
		"SSM_PREFIX":           prefix,
		"TABLE_NAME":           "ovrlrd-prod",
		"SESSIONS_BUCKET":      "ovrlrd-prod-sessions",
		"STREAM_FUNCTION_NAME": "ovrlrd-prod-StreamFunction",
		"KMS_KEY_ID":           "alias/ovrlrd-prod-projects",
	}, kv...)
}

// prodParams are every secret a prod stream function can load.
func prodParams(kv ...string) map[string]string {
	return with(map[string]string{
		prefix + "/jwt-keys":          "k2:" + key2 + ",k1:" + key1,
		prefix + "/api-key":           apiKey,
		prefix + "/anthropic-api-key": claudeKey,
		prefix + "/apns-key":          apnsPEM,
		prefix + "/origin-secret":     originSec,
	}, kv...)
}

// ssmStore serves params on a loopback SSM and returns the real SDK client's
// Store under prefix. It touches no process environment, so tests using it
// can run in parallel.
func ssmStore(t *testing.T, params map[string]string) (*paramstore.Store, *ssmfake.Server) {
	t.Helper()
	srv := ssmfake.New(params)
	t.Cleanup(srv.Close)
	client := paramstore.NewClient(aws.Config{
		Region:       "eu-west-1",
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDTEST", "test-secret", ""),
		BaseEndpoint: aws.String(srv.URL),
	})
	return paramstore.New(client, prefix), srv
}

// load runs LoadWith with the source each stage uses: the environment in
// local, the loopback SSM holding params otherwise.
func load(t *testing.T, fn config.Function, env, params map[string]string) (config.Config, error) {
	t.Helper()
	var src config.SecretSource = config.EnvSecrets(getenv(env))
	if env["STAGE"] != "local" {
		src, _ = ssmStore(t, params)
	}
	return config.LoadWith(context.Background(), fn, getenv(env), src)
}

func mustLoad(t *testing.T, fn config.Function, env, params map[string]string) config.Config {
	t.Helper()
	c, err := load(t, fn, env, params)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return c
}

// problems asserts err is one *config.Error and returns its text.
func problems(t *testing.T, err error) string {
	t.Helper()
	var cerr *config.Error
	if !errors.As(err, &cerr) {
		t.Fatalf("err = %v, want *config.Error", err)
	}
	return err.Error()
}

func wantAll(t *testing.T, text string, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(text, s) {
			t.Errorf("error does not contain %q:\n%s", s, text)
		}
	}
}

func wantNone(t *testing.T, text string, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if strings.Contains(text, s) {
			t.Errorf("output contains %q:\n%s", s, text)
		}
	}
}
