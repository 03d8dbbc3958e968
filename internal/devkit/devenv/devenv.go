// Package devenv is what the dev tools and the tests ask of the machine
// they run on: the module's folder, and a loopback port to listen on.
package devenv

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
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

// FreePorts picks n distinct loopback TCP ports that nothing listens on
// now, for servers this process cannot hand a listener (a Java server, an
// emulator in another process). Each is held until all are picked: the
// kernel may hand a port it just gave out to the very next request. A port
// can still be taken by someone else before the server binds it, so
// whatever can listen on port 0 and report its address should do that
// instead.
func FreePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// Loopback is host:port on 127.0.0.1.
func Loopback(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

// Buffer is an output that tests read while something else still writes to
// it: a server's log, a child process's output.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *Buffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *Buffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
