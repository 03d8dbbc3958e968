package config

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"

	"github.com/ovrlrd/cloud/internal/paramstore"
)

// InitTimeout bounds Load: an unreachable SSM must fail init in seconds, well
// inside Lambda's 10 s INIT phase, not hang until the platform kills it.
const InitTimeout = 8 * time.Second

// Load reads the configuration of fn. getenv returns "" for unset names
// (os.Getenv in production). In dev and prod the secrets come from SSM
// Parameter Store in one GetParameters call; the AWS SDK takes its own
// settings (credentials, AWS_ENDPOINT_URL_SSM) from the process environment,
// and the region from getenv's AWS_REGION. In local they come from getenv.
func Load(ctx context.Context, fn Function, getenv func(string) string) (Config, error) {
	ctx, cancel := context.WithTimeout(ctx, InitTimeout)
	defer cancel()
	return LoadWith(ctx, fn, getenv, sourceFor(ctx, getenv))
}

func sourceFor(ctx context.Context, getenv func(string) string) SecretSource {
	stage, ok := parseStage(getenv("STAGE"))
	if !ok {
		return unavailable{"STAGE is not local, dev or prod"}
	}
	if stage == Local {
		return EnvSecrets(getenv)
	}
	prefix := strings.TrimSpace(getenv("SSM_PREFIX"))
	region := strings.TrimSpace(getenv("AWS_REGION"))
	if !ssmPrefixPattern.MatchString(prefix) || !regionPattern.MatchString(region) {
		return unavailable{"SSM needs a valid SSM_PREFIX and AWS_REGION"}
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(region))
	if err != nil {
		return unavailable{fmt.Sprintf("AWS SDK configuration: %v", err)}
	}
	return paramstore.New(paramstore.NewClient(cfg), prefix)
}

// LoadWith is Load with the secret source given (tests, and callers that build
// their own), and without Load's InitTimeout: ctx alone bounds it.
func LoadWith(ctx context.Context, fn Function, getenv func(string) string, secrets SecretSource) (Config, error) {
	r := &reader{getenv: getenv}
	c := Config{Function: fn}
	if !slices.Contains([]Function{Auth, Chat, Stream, All}, fn) {
		r.problemf("function %q: want auth, chat, stream or all", fn)
	}
	c.readStage(r)
	c.InLambda = r.get("AWS_LAMBDA_RUNTIME_API") != ""
	c.readSettings(r)
	c.loadSecrets(ctx, r, secrets)
	if len(r.problems) > 0 {
		return Config{}, &Error{Problems: r.problems}
	}
	return c, nil
}

func parseStage(v string) (Stage, bool) {
	s := Stage(strings.ToLower(strings.TrimSpace(v)))
	return s, s == Local || s == Dev || s == Prod
}

func (c *Config) readStage(r *reader) {
	stage, ok := parseStage(r.get("STAGE"))
	c.Stage = stage
	switch {
	case stage == "":
		r.problemf("STAGE: required (local, dev or prod)")
	case !ok:
		r.problemf("STAGE: unknown stage %q (want local, dev or prod)", stage)
	case stage == Local:
		// Local reads secrets from the environment and may run with an open
		// API: never in a deployed function, whatever its STAGE says. SAM
		// CLI's containers look like Lambda but say what they are; the
		// template never sets AWS_SAM_LOCAL, so no deployed function does.
		samLocal := r.get("AWS_SAM_LOCAL") == "true"
		for _, name := range []string{"AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_RUNTIME_API"} {
			if r.get(name) != "" && !samLocal {
				r.problemf("STAGE: local is refused inside Lambda (%s is set)", name)
				break
			}
		}
	default:
		// Secrets in a deployed function's environment are readable by
		// anyone who can read its configuration: they belong in SSM.
		for _, env := range secretEnv {
			if r.get(env) != "" {
				r.problemf("%s: not read in %s, where secrets come from SSM; remove it", env, stage)
			}
		}
	}
}

// Error lists every problem found by one load.
type Error struct {
	Problems []error
}

func (e *Error) Error() string {
	noun := "problems"
	if len(e.Problems) == 1 {
		noun = "problem"
	}
	// One line, for the init log.
	msgs := strings.ReplaceAll(errors.Join(e.Problems...).Error(), "\n", "; ")
	return fmt.Sprintf("config: %d %s: %s", len(e.Problems), noun, msgs)
}

func (e *Error) Unwrap() []error { return e.Problems }
