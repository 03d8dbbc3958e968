// Package paramstore reads secrets from SSM Parameter Store. Functions read
// them once, at init, in a single GetParameters call: the AWS Parameters and
// Secrets extension cannot be called during INIT, and one call keeps cold
// starts short and the request count (and its throttling) low.
package paramstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// Bounds on one Fetch made by a client from NewClient. An unreachable SSM
// must fail init within seconds rather than burn the 10 s INIT phase, and
// Lambda would then retry INIT with a fresh environment anyway.
const (
	MaxAttempts    = 3
	AttemptTimeout = 2 * time.Second
	// The SDK backs off from throttling for up to 1 s·2^i; capping it keeps
	// three attempts well inside an 8 s init budget.
	maxBackoff = time.Second
)

// NewClient returns an SSM client with bounded attempts and per-attempt
// timeouts. The standard retryer retries throttling and transient errors.
// cfg's endpoint resolution applies, so AWS_ENDPOINT_URL_SSM (or
// cfg.BaseEndpoint) can point it at a loopback stand-in.
func NewClient(cfg aws.Config) *ssm.Client {
	return ssm.NewFromConfig(cfg, func(o *ssm.Options) {
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = MaxAttempts
			so.MaxBackoff = maxBackoff
		})
		// A non-zero value would re-wrap the retryer with AWS_MAX_ATTEMPTS.
		o.RetryMaxAttempts = 0
		o.HTTPClient = awshttp.NewBuildableClient().WithTimeout(AttemptTimeout)
	})
}

// Store fetches parameters under a path prefix.
type Store struct {
	client *ssm.Client
	prefix string
}

// New returns a Store whose names are relative to prefix: under
// "/ovrlrd/prod", the name "api-key" is the parameter "/ovrlrd/prod/api-key".
func New(client *ssm.Client, prefix string) *Store {
	return &Store{client: client, prefix: strings.TrimSuffix(prefix, "/")}
}

// Fetch reads names, decrypted, in one GetParameters call, and maps each
// name that exists, as given, to its value. A failed call (after the
// client's retries) is an EUNAVAILABLE error that names every parameter it
// could not load.
func (s *Store) Fetch(ctx context.Context, names []string) (map[string]string, error) {
	full := make([]string, len(names))
	byFull := make(map[string]string, len(names))
	for i, n := range names {
		full[i] = s.prefix + "/" + n
		byFull[full[i]] = n
	}
	out, err := s.client.GetParameters(ctx, &ssm.GetParametersInput{
		Names:          full,
		WithDecryption: aws.Bool(true),
	})
	if err != nil {
		return nil, ovrlrd.Wrap(ovrlrd.EUNAVAILABLE, "could not load parameters",
			fmt.Errorf("%s: %w", strings.Join(full, ", "), err))
	}
	found := map[string]string{}
	for _, p := range out.Parameters {
		if n, ok := byFull[aws.ToString(p.Name)]; ok {
			found[n] = aws.ToString(p.Value)
		}
	}
	return found, nil
}
