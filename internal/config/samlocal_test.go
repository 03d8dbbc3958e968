package config_test

import (
	"testing"

	"github.com/ovrlrd/cloud/internal/config"
)

// SAM CLI's containers look like Lambda (both variables set) and say they
// are SAM's: local runs there, and only there.
func TestLocalUnderSAMLocal(t *testing.T) {
	t.Parallel()
	lambda := []string{"AWS_LAMBDA_FUNCTION_NAME", "AuthFunction", "AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001"}
	c := mustLoad(t, config.Auth, localEnv(append(lambda, "AWS_SAM_LOCAL", "true")...), nil)
	if c.Stage != config.Local || !c.InLambda {
		t.Errorf("stage %q, in Lambda %v", c.Stage, c.InLambda)
	}
	for _, v := range []string{"false", "1", "yes"} {
		_, err := load(t, config.Auth, localEnv(append(lambda, "AWS_SAM_LOCAL", v)...), nil)
		wantAll(t, problems(t, err), "local is refused inside Lambda")
	}
	// It loosens nothing else: dev and prod still refuse secrets in the
	// environment.
	_, err := load(t, config.Auth, prodEnv(append(lambda, "AWS_SAM_LOCAL", "true", "JWT_SECRET", "k1:"+key1)...), prodParams())
	wantAll(t, problems(t, err), "JWT_SECRET: not read in prod")
}

// template.yaml declares the local stand-ins and secrets empty, so that
// sam local passes events/env.json's values: in dev and prod empty is
// unset, and a value is still refused.
func TestEmptyLocalOnlyVariablesAreUnset(t *testing.T) {
	t.Parallel()
	declared := []string{"DYNAMODB_ENDPOINT", "S3_ENDPOINT", "LOCAL_AWS_KEY", "JWT_SECRET", "API_KEY"}
	for _, stage := range []string{"dev", "prod"} {
		env := prodEnv("STAGE", stage)
		for _, name := range declared {
			env[name] = ""
		}
		for _, fn := range []config.Function{config.Auth, config.Chat, config.Stream} {
			c := mustLoad(t, fn, env, prodParams())
			if c.DynamoDBEndpoint != "" || c.S3Endpoint != "" || !c.LocalAWSKey.IsZero() ||
				c.APIKey.Reveal() != apiKey || c.JWTKeys.Signing().Secret.Reveal() != key2 {
				t.Errorf("%s %s: empty variables taken for values", stage, fn)
			}
		}
		_, err := load(t, config.Auth, with(env, "JWT_SECRET", "k1:"+key1), prodParams())
		wantAll(t, problems(t, err), "JWT_SECRET: not read in "+stage)
	}
}
