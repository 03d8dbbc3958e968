package api

import (
	"cmp"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/ovrlrd/cloud/internal/audit"
	"github.com/ovrlrd/cloud/internal/auth"
	"github.com/ovrlrd/cloud/internal/config"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// Pinger reports whether the table can be reached.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Deps are what the handlers need. main owns their construction (through
// package app); the handlers only use them.
type Deps struct {
	Log     *slog.Logger
	APIKey  string // empty only in the local stage
	Store   Pinger
	Auth    *auth.Service
	Limiter Limiter
	Limits  config.Limits
	Audit   *audit.Recorder

	Conversations Conversations
	Devices       Devices
	DeviceEnv     ovrlrd.Environment // for a device registered without one
	// Cleaners run after a conversation is deleted from the table.
	Cleaners []ConversationCleaner

	Turns   Turns
	Starter TurnStarter
	Runs    Runs
	// OriginSecrets, when any, are the values of which every request to the
	// stream function must carry one (CloudFront adds it): the current
	// secret and, while it rolls, the previous one.
	OriginSecrets []string
	// BufferedWait is how long a buffered turn is waited for before 202.
	BufferedWait time.Duration
}

// server is the state shared by the handlers of one function.
type server struct {
	log     *slog.Logger
	key     apiKey
	db      Pinger
	auth    *auth.Service
	limiter Limiter
	limits  config.Limits
	audit   *audit.Recorder

	convs     Conversations
	devices   Devices
	deviceEnv ovrlrd.Environment
	cleaners  []ConversationCleaner

	turns         Turns
	starter       TurnStarter
	runs          Runs
	originSecrets []string
	bufferedWait  time.Duration
}

func newServer(d Deps) *server {
	return &server{
		log: d.Log, key: newAPIKey(d.APIKey), db: d.Store,
		auth: d.Auth, limiter: d.Limiter, limits: d.Limits, audit: d.Audit,
		convs: d.Conversations, devices: d.Devices, deviceEnv: d.DeviceEnv, cleaners: d.Cleaners,
		turns: d.Turns, starter: d.Starter, runs: d.Runs, originSecrets: d.OriginSecrets,
		bufferedWait: cmp.Or(d.BufferedWait, BufferedWait),
	}
}

// NewAuth returns the AuthFunction's handler.
func NewAuth(d Deps) http.Handler {
	s := newServer(d)
	mux := http.NewServeMux()
	s.authRoutes(mux)
	return s.guard(mux)
}

// NewChat returns the ChatFunction's handler. It also answers every path
// the HTTP API does not route elsewhere, so unknown paths get a JSON 404.
func NewChat(d Deps) http.Handler {
	s := newServer(d)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", s.health)
	s.chatRoutes(mux)
	s.bufferedRoutes(mux)
	s.deviceRoutes(mux)
	return s.guard(mux)
}

// NewStream returns the StreamFunction's handler. Its URL is public, so it
// refuses what did not come through CloudFront.
func NewStream(d Deps) http.Handler {
	s := newServer(d)
	mux := http.NewServeMux()
	s.streamRoutes(mux)
	guarded := s.guard(mux)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.fromOrigin(r) {
			writeJSON(w, http.StatusForbidden, errorBody{Error: "Forbidden"})
			return
		}
		guarded.ServeHTTP(w, r)
	})
}

// guard runs in front of every route: panics become a 500 JSON body, doubled
// slashes are collapsed (one of the app's URL builders can produce them), and
// the API key is checked everywhere but /health, which has its own rule.
func (s *server) guard(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w := &statusWriter{ResponseWriter: rw}
		start := time.Now()
		defer func() {
			// The route pattern, never the path: paths carry ids.
			s.log.InfoContext(r.Context(), "request", "method", r.Method, "route", r.Pattern,
				"status", w.status, "ms", time.Since(start).Milliseconds())
		}()
		defer func() {
			if v := recover(); v != nil {
				s.log.ErrorContext(r.Context(), "panic", "method", r.Method, "route", r.Pattern, "panic", v)
				writeJSON(w, http.StatusInternalServerError, errorBody{Error: "Internal server error"})
			}
		}()
		if strings.Contains(r.URL.Path, "//") {
			r.URL.Path = collapseSlashes(r.URL.Path)
			r.URL.RawPath = ""
		}
		if r.URL.Path != "/health" {
			if err := s.key.check(r); err != nil {
				writeError(w, r, s.log, err)
				return
			}
		}
		if _, pattern := mux.Handler(r); pattern == "" {
			// ServeMux's own 404, 405 and redirects are text/plain; the API
			// speaks JSON.
			writeError(w, r, s.log, ovrlrd.Errorf(ovrlrd.ENOTFOUND, "Not found"))
			return
		} else {
			r.Pattern = pattern
		}
		// ServeHTTP, not the handler Handler returned: only it sets the
		// path values ({id}) on the request.
		mux.ServeHTTP(w, r)
	})
}

// statusWriter remembers the status for the request log. Unwrap keeps
// http.ResponseController working through it.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func collapseSlashes(p string) string {
	var b strings.Builder
	b.Grow(len(p))
	for i := 0; i < len(p); i++ {
		if p[i] == '/' && i > 0 && p[i-1] == '/' {
			continue
		}
		b.WriteByte(p[i])
	}
	return b.String()
}

// health answers 200 when the table answers, 503 otherwise, with no detail.
func (s *server) health(w http.ResponseWriter, r *http.Request) {
	if s.key.presentAndWrong(r) {
		writeError(w, r, s.log, ovrlrd.Errorf(ovrlrd.EUNAUTHORIZED, "Invalid API key"))
		return
	}
	if err := s.db.Ping(r.Context()); err != nil {
		s.log.ErrorContext(r.Context(), "health check failed", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unhealthy"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}
