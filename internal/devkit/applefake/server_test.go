package applefake_test

import (
	"encoding/json"
	"net/http"
	"runtime"
	"slices"
	"testing"

	"github.com/ovrlrd/cloud/internal/devkit/applefake"
)

func kids(t *testing.T, s *applefake.Server) (int, []string) {
	t.Helper()
	resp, err := http.Get(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set struct {
		Keys []struct{ Kid, Kty, Alg, N, E string }
	}
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, k := range set.Keys {
		if k.Kty != "RSA" || k.Alg != "RS256" || k.N == "" || k.E != "AQAB" {
			t.Fatalf("key %+v is not an RS256 public key", k)
		}
		ids = append(ids, k.Kid)
	}
	return resp.StatusCode, ids
}

func TestServerPublishesRotatesAndFails(t *testing.T) {
	s := applefake.New()
	defer s.Close()
	first := s.Kid()
	if _, ids := kids(t, s); !slices.Equal(ids, []string{first}) {
		t.Fatalf("kids = %v, want [%s]", ids, first)
	}
	second := s.Rotate()
	if s.Kid() != second {
		t.Fatalf("current kid = %s, want the rotated %s", s.Kid(), second)
	}
	s.Retire(first)
	if _, ids := kids(t, s); !slices.Equal(ids, []string{second}) {
		t.Fatalf("kids = %v, want [%s]", ids, second)
	}
	s.SetMode(applefake.Unavailable)
	if code, _ := kids(t, s); code != http.StatusServiceUnavailable {
		t.Fatalf("status while down = %d", code)
	}
	if n := s.Requests(); n != 3 {
		t.Fatalf("Requests = %d, want 3", n)
	}
}

// A request left hanging does not keep Close waiting: it ends with the
// connection.
func TestCloseEndsAHangingRequest(t *testing.T) {
	s := applefake.New()
	s.SetMode(applefake.Hang)
	failed := make(chan error, 1)
	go func() {
		resp, err := http.Get(s.URL)
		if err == nil {
			resp.Body.Close()
		}
		failed <- err
	}()
	for s.Requests() == 0 {
		runtime.Gosched()
	}
	s.Close()
	if err := <-failed; err == nil {
		t.Fatal("the hanging request was answered")
	}
}
