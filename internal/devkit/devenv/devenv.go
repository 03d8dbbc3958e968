// Package devenv is what the dev tools and the tests ask of the machine
// they run on: the module's folder, and a loopback port to listen on.
package devenv

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
)

// ModuleRoot finds the folder holding go.mod, from the working directory
// up: go test runs in the package's folder, make in the module's.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// FreePort is a loopback TCP port that nothing listened on just now; the
// kernel hands the same port out again only after cycling through the
// others, so a server started next can take it.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// FreeAddr is 127.0.0.1 and a FreePort, as host:port.
func FreeAddr() (string, error) {
	port, err := FreePort()
	return "127.0.0.1:" + strconv.Itoa(port), err
}
