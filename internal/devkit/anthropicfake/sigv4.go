package anthropicfake

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// BedrockRegion is the only region the Bedrock mode accepts in a signature.
const BedrockRegion = "us-east-1"

// BedrockCredentials are the only AWS credentials the Bedrock mode accepts:
// test values, shaped like a Lambda role's temporary credentials.
func BedrockCredentials() aws.Credentials {
	return aws.Credentials{
		AccessKeyID:     "ASIAOVRLRDFAKE000001",
		SecretAccessKey: "anthropicfake/bedrock/test-secret-0000000000",
		SessionToken:    "anthropicfake-bedrock-session-token",
		Source:          "anthropicfake",
	}
}

// sigV4Skew is how far X-Amz-Date may be from now, as AWS allows.
const sigV4Skew = 15 * time.Minute

// verifySigV4 checks r's Authorization header the way AWS does: the scope
// must name BedrockCredentials' key, BedrockRegion and service "bedrock",
// the date must be recent, and the signature must be the one the SDK's
// signer computes over the same method, path, query, signed headers and
// body with the known secret.
func verifySigV4(r *http.Request, body []byte) error {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return errors.New("missing authentication token")
	}
	const algo = "AWS4-HMAC-SHA256 "
	if !strings.HasPrefix(auth, algo) {
		return errors.New("unsupported authorization algorithm")
	}
	fields := map[string]string{}
	for _, part := range strings.Split(auth[len(algo):], ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		fields[k] = v
	}
	creds := BedrockCredentials()
	scope := strings.Split(fields["Credential"], "/")
	if len(scope) != 5 || scope[4] != "aws4_request" {
		return errors.New("malformed credential scope")
	}
	if scope[0] != creds.AccessKeyID {
		return errors.New("the security token included in the request is invalid")
	}
	if scope[2] != BedrockRegion || scope[3] != "bedrock" {
		return fmt.Errorf("credential should be scoped to region %s and service bedrock", BedrockRegion)
	}
	when, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil || scope[1] != when.Format("20060102") {
		return errors.New("missing or malformed X-Amz-Date")
	}
	if d := time.Since(when); d > sigV4Skew || d < -sigV4Skew {
		return errors.New("signature expired")
	}
	if r.Header.Get("X-Amz-Security-Token") != creds.SessionToken {
		return errors.New("the security token included in the request is invalid")
	}
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	if h := r.Header.Get("X-Amz-Content-Sha256"); h != "" && h != hash {
		return errors.New("payload hash mismatch")
	}

	// Sign a copy holding only what the client said it signed.
	u := *r.URL
	u.Scheme, u.Host = "http", r.Host
	again := &http.Request{Method: r.Method, URL: &u, Host: r.Host, Header: http.Header{}}
	for _, name := range strings.Split(fields["SignedHeaders"], ";") {
		switch name {
		case "host":
		case "content-length":
			again.ContentLength = int64(len(body))
		default:
			again.Header[http.CanonicalHeaderKey(name)] = r.Header.Values(name)
		}
	}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, again, hash, "bedrock", BedrockRegion, when); err != nil {
		return err
	}
	if !hmac.Equal([]byte(again.Header.Get("Authorization")), []byte(auth)) {
		return errors.New("the request signature we calculated does not match the signature you provided")
	}
	return nil
}

// SignBedrock signs r (whose body is body) for the Bedrock mode, now: what
// a correct client does. Tests use it to reach the stand-in directly.
func SignBedrock(r *http.Request, body []byte) error {
	sum := sha256.Sum256(body)
	r.ContentLength = int64(len(body))
	return v4.NewSigner().SignHTTP(r.Context(), BedrockCredentials(), r, hex.EncodeToString(sum[:]), "bedrock", BedrockRegion, time.Now().UTC())
}
