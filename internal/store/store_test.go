package store_test

import (
	"context"
	"testing"

	"github.com/ovrlrd/cloud/internal/devkit/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

func TestPing(t *testing.T) {
	if err := storetest.New(t).Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
}
