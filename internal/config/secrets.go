package config

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// Names of the secrets. In dev and prod each is the SSM parameter
// <SSM_PREFIX>/<name>; in local it is the environment variable in envNames.
const (
	SecretJWTKeys          = "jwt-keys"
	SecretAPIKey           = "api-key"
	SecretAnthropicAPIKey  = "anthropic-api-key"
	SecretClaudeOAuthToken = "claude-oauth-token"
	SecretAPNsKey          = "apns-key"
	SecretOriginSecret     = "origin-secret"
	// SecretOriginPrevious is accepted beside origin-secret while CloudFront
	// moves to a new one (README, "Rolling the origin secret").
	SecretOriginPrevious = "origin-secret-previous"
)

// secretNames orders the secrets for messages.
var secretNames = []string{
	SecretJWTKeys, SecretAPIKey, SecretAnthropicAPIKey,
	SecretClaudeOAuthToken, SecretAPNsKey, SecretOriginSecret, SecretOriginPrevious,
}

var envNames = map[string]string{
	SecretJWTKeys:          "JWT_SECRET",
	SecretAPIKey:           "API_KEY",
	SecretAnthropicAPIKey:  "ANTHROPIC_API_KEY",
	SecretClaudeOAuthToken: "CLAUDE_CODE_OAUTH_TOKEN",
	SecretAPNsKey:          "APNS_KEY",
	SecretOriginSecret:     "ORIGIN_SECRET",
	SecretOriginPrevious:   "ORIGIN_SECRET_PREVIOUS",
}

// SecretSource reads secrets by the names above. *paramstore.Store (under
// SSM_PREFIX) is the dev and prod source; EnvSecrets is the local one.
type SecretSource interface {
	// Fetch returns the value of each name it holds; the others are
	// invalid. An error means nothing was read, and its message must name
	// what could not be loaded.
	Fetch(ctx context.Context, names []string) (found map[string]string, invalid []string, err error)
}

// EnvSecrets reads secrets from environment variables (JWT_SECRET, API_KEY,
// ANTHROPIC_API_KEY, CLAUDE_CODE_OAUTH_TOKEN, APNS_KEY, ORIGIN_SECRET,
// ORIGIN_SECRET_PREVIOUS).
func EnvSecrets(getenv func(string) string) SecretSource { return envSource(getenv) }

type envSource func(string) string

func (getenv envSource) Fetch(_ context.Context, names []string) (map[string]string, []string, error) {
	found := map[string]string{}
	var invalid []string
	for _, n := range names {
		env, known := envNames[n]
		if !known || getenv(env) == "" {
			invalid = append(invalid, n)
			continue
		}
		found[n] = getenv(env)
	}
	return found, invalid, nil
}

// unavailable stands in when no source can be built, so the names that
// could not be loaded are still reported with every other problem.
type unavailable struct{ reason string }

func (u unavailable) Fetch(_ context.Context, names []string) (map[string]string, []string, error) {
	return nil, nil, fmt.Errorf("could not load %s: %s", strings.Join(names, ", "), u.reason)
}

type need struct {
	name     string
	required bool
}

// needs lists what c.Function uses. Local may go without an API key (an
// open API) and without a Claude credential (the offline demo); nowhere else.
func (c *Config) needs() []need {
	strict := c.Stage != Local
	n := []need{{SecretJWTKeys, true}, {SecretAPIKey, strict}}
	if !c.Function.streams() {
		return n
	}
	switch c.Claude.Provider {
	case Anthropic:
		n = append(n, need{SecretAnthropicAPIKey, strict})
	case OAuth:
		n = append(n, need{SecretClaudeOAuthToken, strict})
	}
	return append(n, need{SecretAPNsKey, false}, need{SecretOriginSecret, false}, need{SecretOriginPrevious, false})
}

func (c *Config) loadSecrets(ctx context.Context, r *reader, src SecretSource) {
	needs := c.needs()
	names := make([]string, len(needs))
	for i, n := range needs {
		names[i] = n.name
	}
	if src == nil {
		src = unavailable{"no secret source"}
	}
	found, _, err := src.Fetch(ctx, names)
	if err != nil {
		r.problemf("secrets: %w", err)
		return
	}

	for _, n := range needs {
		v := strings.TrimSpace(found[n.name])
		if v == "" {
			if n.required {
				r.problemf("secret %s: missing (%s)", n.name, c.where(n.name))
			}
			continue
		}
		if err := c.setSecret(n.name, v); err != nil {
			r.problemf("secret %s (%s): %v", n.name, c.where(n.name), err)
		}
	}
	if c.Function.streams() {
		c.checkAPNs(r, strings.TrimSpace(found[SecretAPNsKey]) != "")
		if strings.TrimSpace(found[SecretOriginSecret]) == "" && strings.TrimSpace(found[SecretOriginPrevious]) != "" {
			r.problemf("secret %s: set without %s (%s)", SecretOriginPrevious, SecretOriginSecret, c.where(SecretOriginSecret))
		}
	}
}

func (c *Config) setSecret(name, v string) error {
	switch name {
	case SecretJWTKeys:
		ring, err := ParseKeyRing(v)
		c.JWTKeys = ring
		return err
	case SecretAPIKey:
		c.APIKey = NewSecret(v)
	case SecretAnthropicAPIKey, SecretClaudeOAuthToken:
		c.Claude.Credential = NewSecret(v)
	case SecretAPNsKey:
		key, err := apnsKey(v)
		c.APNs.Key = key
		return err
	case SecretOriginSecret, SecretOriginPrevious:
		c.OriginSecrets = append(c.OriginSecrets, NewSecret(v))
	}
	return nil
}

// checkAPNs: push is all or nothing. Setting either id asks for push, so a
// missing piece is a problem rather than a silent loss of notifications.
func (c *Config) checkAPNs(r *reader, keyGiven bool) {
	a := c.APNs
	if a.KeyID == "" && a.TeamID == "" {
		return
	}
	if a.KeyID == "" {
		r.problemf("APNS_KEY_ID: required when APPLE_TEAM_ID is set")
	}
	if a.TeamID == "" {
		r.problemf("APPLE_TEAM_ID: required when APNS_KEY_ID is set")
	}
	if !keyGiven {
		r.problemf("secret %s: missing (%s), needed for push", SecretAPNsKey, c.where(SecretAPNsKey))
	}
}

// apnsKey checks the .p8 key now, so a truncated parameter fails init
// rather than the first push.
func apnsKey(v string) (Secret, error) {
	if !strings.Contains(v, "\n") {
		// A .env file often holds the PEM with its newlines escaped.
		v = strings.ReplaceAll(v, `\n`, "\n")
	}
	block, _ := pem.Decode([]byte(v))
	if block == nil {
		return Secret{}, errors.New("not PEM text (want the contents of the .p8 file)")
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return Secret{}, errors.New("not a PKCS #8 private key")
	}
	if _, ok := key.(*ecdsa.PrivateKey); !ok {
		return Secret{}, errors.New("not an EC private key")
	}
	return NewSecret(v), nil
}

// where says where an operator puts the secret.
func (c *Config) where(name string) string {
	if c.Stage == Local {
		return "set " + envNames[name]
	}
	prefix := c.SSMPrefix
	if prefix == "" {
		prefix = "$SSM_PREFIX"
	}
	return "SSM parameter " + prefix + "/" + name
}
