package imports_test

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/ovrlrd/cloud/internal/devkit/anthropicfake"
	"github.com/ovrlrd/cloud/internal/devkit/claudetest"
	"github.com/ovrlrd/cloud/internal/devkit/storetest"
	"github.com/ovrlrd/cloud/internal/imports"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/workspace"
)

func TestMain(m *testing.M) { os.Exit(storetest.Run(m)) }

// An import whose folders cannot be saved, after its messages were
// written, leaves nothing: no conversation listed, no message, and the
// session may be imported again.
func TestAnImportThatFailsHalfWayLeavesNothing(t *testing.T) {
	ctx := context.Background()
	model := anthropicfake.New(anthropicfake.Commands())
	t.Cleanup(model.Close)
	id, data := claudetest.DeskSession(t, model.URL, "hello from the desk")

	// The bucket refuses every write once armed, as an S3 outage would.
	var down atomic.Bool
	s3 := gofakes3.New(s3mem.New()).Server()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() && r.Method == http.MethodPut {
			http.Error(w, "<Error><Code>ServiceUnavailable</Code></Error>", http.StatusServiceUnavailable)
			return
		}
		s3.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	files := workspace.New(storetest.AWSConfig(), workspace.Options{Bucket: "sessions", Endpoint: srv.URL, MaxBytes: 50 << 20}, slog.Default())
	if err := files.EnsureBucket(ctx); err != nil {
		t.Fatal(err)
	}
	down.Store(true)
	st := storetest.New(t)
	u, err := st.CreateUser(ctx, "", "001234."+rand.Text())
	if err != nil {
		t.Fatal(err)
	}
	svc := imports.New(imports.Options{Store: st, Files: files, WorkRoot: t.TempDir(), Log: slog.Default()})

	_, err = svc.Import(ctx, ovrlrd.ImportRequest{UserID: u.ID, SessionID: id, Transcript: data})
	if !ovrlrd.IsCode(err, ovrlrd.EUNAVAILABLE) {
		t.Fatalf("import with the bucket down: %v", err)
	}
	if list, _, err := st.ListConversations(ctx, u.ID, ovrlrd.Page{Limit: 10}); err != nil || len(list) != 0 {
		t.Fatalf("listed: %+v, %v", list, err)
	}
	var keys []struct {
		PK string `dynamo:"PK"`
	}
	if err := storetest.DB().Table(storetest.TableName()).Scan().Filter("begins_with('PK', ?) AND 'userId' = ?", "CONV#", u.ID).All(ctx, &keys); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 0 {
		t.Fatalf("%d messages of the failed import left", len(keys))
	}

	// Once the bucket is back, the same session imports.
	down.Store(false)
	got, err := svc.Import(ctx, ovrlrd.ImportRequest{UserID: u.ID, SessionID: id, Transcript: data})
	if err != nil || got.MessageCount == 0 {
		t.Fatalf("import again: %+v, %v", got, err)
	}
	// The session is claimed now: a second import is refused before its
	// transcript is even read.
	_, err = svc.Import(ctx, ovrlrd.ImportRequest{UserID: u.ID, SessionID: id, Transcript: []byte("not read")})
	if !ovrlrd.IsCode(err, ovrlrd.ECONFLICT) || !strings.Contains(ovrlrd.ErrorMessage(err), got.ConversationID) {
		t.Fatalf("a second import: %v", err)
	}
	// A malformed transcript is refused before anything is written, naming
	// its line.
	_, err = svc.Import(ctx, ovrlrd.ImportRequest{UserID: u.ID, SessionID: uuid.NewString(), Transcript: []byte(strings.Replace(string(data), "{", "[", 1))})
	if !ovrlrd.IsCode(err, ovrlrd.EINVALID) || !strings.Contains(ovrlrd.ErrorMessage(err), "Line 1") {
		t.Fatalf("a malformed transcript: %v", err)
	}
}
