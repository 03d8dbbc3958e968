package devserver

import (
	"cmp"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"

	"github.com/ovrlrd/cloud/internal/devkit/gitserver"
	"github.com/ovrlrd/cloud/internal/devkit/kmslocal"
	"github.com/ovrlrd/cloud/internal/envelope"
)

// devGitPort is where make dev's git host listens unless DEV_GIT_PORT says
// otherwise: a fixed port, so projects kept across restarts keep their
// URLs.
const devGitPort = "8002"

// projects is make dev's side of projects: a git host on loopback serving
// the repositories in the data folder (a demo one made on the first run),
// and the KMS key that seals their tokens, kept in secrets.env.
type projects struct {
	git     *gitserver.Server
	key     envelope.KMS
	secrets string // the secrets file
	token   string // the one the git host takes
}

// demoProjects starts them, unless KMS_KEY_ID names a KMS of the
// developer's own, and returns the settings that point the service at
// them.
func demoProjects(getenv func(string) string, dataDir string) (*projects, map[string]string, error) {
	if getenv("KMS_KEY_ID") != "" {
		return &projects{}, nil, nil
	}
	secret, err := base64.StdEncoding.DecodeString(getenv("LOCAL_KMS_KEY"))
	if err != nil {
		return nil, nil, fmt.Errorf("LOCAL_KMS_KEY: %w", err)
	}
	key, err := kmslocal.NewKey("local", secret)
	if err != nil {
		return nil, nil, err
	}
	repos := filepath.Join(dataDir, "git")
	if err := os.MkdirAll(repos, 0o700); err != nil {
		return nil, nil, err
	}
	token := getenv("DEV_GIT_TOKEN")
	addr := net.JoinHostPort("127.0.0.1", cmp.Or(getenv("DEV_GIT_PORT"), devGitPort))
	git, err := gitserver.Listen(repos, "demo", token, addr)
	if err != nil {
		return nil, nil, fmt.Errorf("git host: %w (DEV_GIT_PORT sets another port; 0 picks a free one)", err)
	}
	if _, err := os.Stat(filepath.Join(repos, "demo.git")); errors.Is(err, fs.ErrNotExist) {
		err = git.NewRepo("demo", map[string]string{
			"README.md":   "# Demo\n\nHello from the demo project.\n",
			"src/main.go": "package main\n\nfunc main() { println(\"hello\") }\n",
		}, "main")
		if err != nil {
			git.Close()
			return nil, nil, err
		}
	}
	env := map[string]string{"KMS_KEY_ID": "local", "SSL_CERT_FILE": git.CertFile()}
	return &projects{git: git, key: key, secrets: filepath.Join(dataDir, "secrets.env"), token: token}, env, nil
}

func (p *projects) close() {
	if p.git != nil {
		p.git.Close()
	}
}

// banner shows how to add the demo project; the token stays in the
// secrets file.
func (p *projects) banner(out io.Writer, addr string) {
	if p.git == nil {
		return
	}
	fmt.Fprintf(out, "Projects: a local git host serves %s; its token is DEV_GIT_TOKEN in the secrets file:\n", p.git.URL("demo"))
	fmt.Fprintf(out, "  export GIT_TOKEN=$(sed -n 's/^DEV_GIT_TOKEN=//p' %s)\n", p.secrets)
	fmt.Fprintf(out, "  curl -X POST http://%s/projects -H \"X-API-Key: $KEY\" -H \"Authorization: Bearer $TOKEN\" \\\n", addr)
	fmt.Fprintf(out, "       -H 'Content-Type: application/json' -d '{\"name\":\"demo\",\"repoUrl\":\"%s\",\"token\":\"'$GIT_TOKEN'\",\"default\":true}'\n\n", p.git.URL("demo"))
}
