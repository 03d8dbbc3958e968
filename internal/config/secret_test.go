package config_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/ovrlrd/cloud/internal/config"
)

// secretValues are every secret in a fully loaded prod config, plus a line of
// the APNs key's body (the PEM armour alone would prove nothing).
func secretValues() []string {
	return []string{key1, key2, apiKey, claudeKey, originSec, strings.Split(apnsPEM, "\n")[1]}
}

func TestSecretRedacted(t *testing.T) {
	t.Parallel()
	s := config.NewSecret("hunter2-hunter2")
	outs := []string{
		s.String(), s.GoString(),
		fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s %q %x %X %10.3s %d", s, s, s, s, s, s, s, s, s),
		fmt.Sprintf("%v", &s), fmt.Sprintf("%v", []config.Secret{s}), fmt.Sprintf("%v", map[string]config.Secret{"k": s}),
		s.LogValue().String(),
	}
	j, _ := json.Marshal(map[string]any{"s": s, "p": &s})
	txt, _ := s.MarshalText()
	outs = append(outs, string(j), string(txt))
	for _, out := range outs {
		if strings.Contains(out, "hunter2") {
			t.Errorf("leaked: %s", out)
		}
		if !strings.Contains(out, "[redacted]") {
			t.Errorf("no [redacted] in %q", out)
		}
	}
	if s.Reveal() != "hunter2-hunter2" {
		t.Error("Reveal")
	}
}

func TestConfigPrintsNoSecret(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, config.Stream, prodEnv("APNS_KEY_ID", "ABCDE12345", "APPLE_TEAM_ID", "TEAM123456"), prodParams())
	if !c.PushEnabled() || len(c.OriginSecrets) == 0 || len(c.JWTKeys) != 2 {
		t.Fatal("fixture is not fully loaded")
	}

	outs := map[string]string{
		"%v":  fmt.Sprintf("%v", c),
		"%+v": fmt.Sprintf("%+v", c),
		"%#v": fmt.Sprintf("%#v", c),
		"&%v": fmt.Sprintf("%+v", &c),
	}
	j, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	outs["json"] = string(j)
	for name, h := range map[string]func(*bytes.Buffer) slog.Handler{
		"slog json": func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
		"slog text": func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
	} {
		var buf bytes.Buffer
		log := slog.New(h(&buf))
		log.Info("config", "config", c, "ptr", &c, "keys", c.JWTKeys, "claude", c.Claude)
		outs[name] = buf.String()
	}

	for name, out := range outs {
		for _, v := range secretValues() {
			if strings.Contains(out, v) {
				t.Errorf("%s leaks a secret: %s", name, out)
			}
		}
		if !strings.Contains(out, "[redacted]") {
			t.Errorf("%s shows no [redacted]: %s", name, out)
		}
	}
}
