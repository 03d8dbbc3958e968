package app_test

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/ovrlrd/cloud/internal/claude"
	"github.com/ovrlrd/cloud/internal/devkit/apnsfake"
	"github.com/ovrlrd/cloud/internal/devkit/kmslocal"
	"github.com/ovrlrd/cloud/internal/devkit/storetest"
)

// Every string the tests send or receive in a JSON body (identity tokens,
// session tokens, e-mail addresses, Apple ids, message text) and every bearer
// token is remembered; after all tests of the package ran, none of them may
// appear in anything the service logged.
var (
	sensitiveMu sync.Mutex
	sensitive   = map[string]bool{apiKey: true}
)

func remember(vals ...string) {
	sensitiveMu.Lock()
	defer sensitiveMu.Unlock()
	for _, v := range vals {
		if len(v) >= 6 {
			sensitive[v] = true
		}
	}
}

// rememberJSON remembers the string values of a request body (identity
// tokens, message text, device tokens), except the few enum fields, and the
// session tokens of a response. A JWT's payload and signature are remembered
// on their own too (its header alone is not secret).
func rememberJSON(body string, request bool) {
	var m map[string]any
	if json.Unmarshal([]byte(body), &m) != nil {
		return
	}
	var walk func(key string, v any)
	walk = func(key string, v any) {
		switch x := v.(type) {
		case string:
			if (request && key != "role" && key != "environment") || key == "sessionToken" {
				remember(x)
				if parts := strings.Split(x, "."); len(parts) == 3 {
					remember(parts[1], parts[2])
				}
			}
		case map[string]any:
			for k, e := range x {
				walk(k, e)
			}
		case []any:
			for _, e := range x {
				walk(key, e)
			}
		}
	}
	walk("", m)
}

func TestMain(m *testing.M) {
	if err := claude.BecomeSubreaper(); err != nil {
		panic(err)
	}
	// The APNs stand-in's CA, trusted as the platform trusts roots.
	ca, err := apnsfake.CAFile()
	if err != nil {
		panic(err)
	}
	os.Setenv("SSL_CERT_FILE", ca)
	code := storetest.Run(m)
	kmslocal.CloseShared()
	if code == 0 {
		code = scanLogs()
	}
	os.Exit(code)
}

func scanLogs() int {
	out := allLogs.String()
	// The whole suite must log enough for the scan to mean something; a
	// run of a few tests (-run) may not.
	whole := flag.Lookup("test.run").Value.String() == ""
	if whole && (strings.Count(out, "\n") < 10 || !strings.Contains(out, `"msg":"request"`)) {
		fmt.Fprintln(os.Stderr, "leak scan: the tests logged almost nothing; the scan would prove nothing")
		return 1
	}
	sensitiveMu.Lock()
	defer sensitiveMu.Unlock()
	leaks := 0
	for v := range sensitive {
		if strings.Contains(out, v) {
			fmt.Fprintf(os.Stderr, "leak scan: a value sent to or issued by the API appears in the logs (%d chars, starts %q)\n", len(v), v[:4])
			leaks++
		}
	}
	fmt.Fprintf(os.Stderr, "leak scan: %d log lines checked against %d sensitive values, %d leaks\n",
		strings.Count(out, "\n"), len(sensitive), leaks)
	if leaks > 0 {
		return 1
	}
	return 0
}
