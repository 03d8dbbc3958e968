package kmslocal

import (
	"context"
	"sync"
	"testing"
	"time"
)

// The test binary's one local-kms: started by the first test that needs it,
// so packages whose other tests never do pay nothing, and stopped by the
// package's TestMain through CloseShared.
var shared struct {
	once sync.Once
	srv  *Server
	err  error
}

// Shared returns the test binary's local-kms, starting it on first use; it
// fails t if it cannot.
func Shared(t testing.TB) *Server {
	t.Helper()
	shared.once.Do(func() {
		bin, err := Bin()
		if err != nil {
			shared.err = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		shared.srv, shared.err = Start(ctx, bin)
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.srv
}

// CloseShared stops the local-kms Shared started, if it did: TestMain calls
// it once the tests have run.
func CloseShared() {
	if shared.srv != nil {
		shared.srv.Close()
	}
}
