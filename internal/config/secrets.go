package config

import (
	"cmp"
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"strings"
)

// secretEnv names each secret's environment variable in local; in dev and
// prod a secret is the SSM parameter <SSM_PREFIX>/<name>. origin-secret-previous is
// accepted beside origin-secret while CloudFront moves to a new one (README,
// "Rolling the origin secret").
var secretEnv = map[string]string{
	"jwt-keys":               "JWT_SECRET",
	"api-key":                "API_KEY",
	"anthropic-api-key":      "ANTHROPIC_API_KEY",
	"claude-oauth-token":     "CLAUDE_CODE_OAUTH_TOKEN",
	"apns-key":               "APNS_KEY",
	"origin-secret":          "ORIGIN_SECRET",
	"origin-secret-previous": "ORIGIN_SECRET_PREVIOUS",
}

// SecretSource reads secrets by the names above: *paramstore.Store (under
// SSM_PREFIX) in dev and prod, EnvSecrets in local. It returns the value of
// each name it holds; an error means nothing was read, and its message must
// name what could not be loaded.
type SecretSource interface {
	Fetch(ctx context.Context, names []string) (map[string]string, error)
}

// EnvSecrets reads secrets from the environment variables above.
type EnvSecrets func(string) string

func (getenv EnvSecrets) Fetch(_ context.Context, names []string) (map[string]string, error) {
	found := map[string]string{}
	for _, n := range names {
		if v := getenv(secretEnv[n]); v != "" {
			found[n] = v
		}
	}
	return found, nil
}

// unavailable stands in when no source can be built, so the names that
// could not be loaded are still reported with every other problem.
type unavailable struct{ reason string }

func (u unavailable) Fetch(_ context.Context, names []string) (map[string]string, error) {
	return nil, fmt.Errorf("could not load %s: %s", strings.Join(names, ", "), u.reason)
}

// loadSecrets reads what c.Function uses. Local may go without an API key
// (an open API) and without a Claude credential (the offline demo); nowhere
// else.
func (c *Config) loadSecrets(ctx context.Context, r *reader, src SecretSource) {
	strict := c.Stage != Local
	names := []string{"jwt-keys", "api-key"}
	required := map[string]bool{"jwt-keys": true, "api-key": strict}
	if c.Function.RunsTurns() {
		cred := map[ovrlrd.Provider]string{ovrlrd.Anthropic: "anthropic-api-key", ovrlrd.OAuth: "claude-oauth-token"}[c.Claude.Provider]
		if cred != "" {
			names, required[cred] = append(names, cred), strict
		}
		names = append(names, "apns-key", "origin-secret", "origin-secret-previous")
	}
	found, err := src.Fetch(ctx, names)
	if err != nil {
		r.problemf("secrets: %w", err)
		return
	}

	set := map[string]bool{} // the source's own map is left as it is
	for _, n := range names {
		v := strings.TrimSpace(found[n])
		set[n] = v != ""
		var err error
		switch {
		case v == "":
			if required[n] {
				r.problemf("secret %s: missing (%s)", n, c.where(n))
			}
		case n == "jwt-keys":
			c.JWTKeys, err = ParseKeyRing(v)
		case n == "apns-key":
			c.APNs.Key, err = apnsKey(v)
		case n == "api-key":
			c.APIKey = NewSecret(v)
		case n == "origin-secret" || n == "origin-secret-previous":
			c.OriginSecrets = append(c.OriginSecrets, NewSecret(v))
		case n == "anthropic-api-key" || n == "claude-oauth-token":
			c.Claude.Credential = NewSecret(v)
		}
		if err != nil {
			r.problemf("secret %s (%s): %v", n, c.where(n), err)
		}
	}
	if !c.Function.RunsTurns() {
		return
	}
	// Push is all or nothing. Setting either id asks for push, so a missing
	// piece is a problem rather than a silent loss of notifications.
	if a := c.APNs; a.KeyID != "" || a.TeamID != "" {
		if a.KeyID == "" {
			r.problemf("APNS_KEY_ID: required when APPLE_TEAM_ID is set")
		}
		if a.TeamID == "" {
			r.problemf("APPLE_TEAM_ID: required when APNS_KEY_ID is set")
		}
		if !set["apns-key"] {
			r.problemf("secret apns-key: missing (%s), needed for push", c.where("apns-key"))
		}
	}
	if !set["origin-secret"] && set["origin-secret-previous"] {
		r.problemf("secret origin-secret-previous: set without origin-secret (%s)", c.where("origin-secret"))
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
		return "set " + secretEnv[name]
	}
	return "SSM parameter " + cmp.Or(c.SSMPrefix, "$SSM_PREFIX") + "/" + name
}
