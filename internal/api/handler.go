package api

import (
	"cmp"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

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

	Conversations Conversations
	Devices       Devices
	// Cleaners run after a conversation is deleted from the table.
	Cleaners []ConversationCleaner

	Turns     Turns   // the stream function's only
	Watches   Watches // the stream function's only
	TurnRules TurnRules
	Starter   TurnStarter // the chat function's only
	// Projects, nil without a KMS key (a local server may have none), is
	// the stream function's; ProjectLookup every function's.
	Projects      Projects
	ProjectLookup ProjectLookup
	Imports       Imports // the stream function's only
	// OriginSecrets, when any, are the values of which every request to the
	// stream function must carry one (CloudFront adds it): the current
	// secret and, while it rolls, the previous one.
	OriginSecrets []string
	// BufferedWait is how long a buffered turn is waited for before 202.
	BufferedWait time.Duration
}

// server is the state shared by the handlers of one function.
type server struct {
	Deps
	key APIKey
}

func newServer(d Deps) *server {
	d.BufferedWait = cmp.Or(d.BufferedWait, BufferedWait)
	return &server{Deps: d, key: NewAPIKey(d.APIKey)}
}

// NewAuth returns the AuthFunction's handler. It limits by address only
// where no user is known yet: sign-in. The others (and DELETE /auth/account,
// which the chat function serves) are limited by what the caller proves to
// hold, so nobody sharing an address can lock a user out of refreshing,
// signing out or deleting the account.
func NewAuth(d Deps) http.Handler {
	s, mux := newServer(d), http.NewServeMux()
	mux.HandleFunc("POST /auth", s.signIn)
	mux.HandleFunc("POST /auth/refresh", s.refresh)
	mux.HandleFunc("POST /auth/logout", s.authed(classLogout, s.Limits.Auth, s.noContent(s.Auth.Logout)))
	return s.guard(mux)
}

// NewChat returns the ChatFunction's handler. It also answers every path
// the HTTP API does not route elsewhere, so unknown paths get a JSON 404.
func NewChat(d Deps) http.Handler {
	s, mux := newServer(d), http.NewServeMux()
	mux.HandleFunc("GET /health", s.health)
	// Account deletion finishes with the user's S3 data, which this
	// function reaches and the auth function does not.
	mux.HandleFunc("DELETE /auth/account", s.authed(classAccount, s.Limits.Auth, s.noContent(s.Auth.DeleteAccount)))
	mux.HandleFunc("GET /chat", s.reading(classRead, s.Limits.Read, s.listConversations))
	mux.HandleFunc("GET /chat/{id}", s.reading(classRead, s.Limits.Read, s.getConversation))
	mux.HandleFunc("DELETE /chat/{id}", s.authed(classWrite, s.Limits.Write, s.deleteConversation))
	mux.HandleFunc("POST /chat/{id}/events", s.metered(classWrite, s.Limits.Write, s.postEvent))
	mux.HandleFunc("POST /chat", s.metered(classTurn, s.Limits.Turn, s.buffered))
	mux.HandleFunc("POST /chat/{id}", s.metered(classTurn, s.Limits.Turn, s.buffered))
	mux.HandleFunc("POST /chat/{id}/cancel", s.authed(classWrite, s.Limits.Write, s.cancel))
	// Answering a tool a turn waits on is limited as other writes are, in
	// a bucket of its own: a turn never stalls because its user's writes
	// are used up, nor do answers use them up.
	mux.HandleFunc("POST /chat/{id}/approvals/{requestId}", s.authed(classApproval, s.Limits.Write, s.answerApproval))
	mux.HandleFunc("POST /devices", s.authed(classWrite, s.Limits.Write, s.putDevice))
	mux.HandleFunc("DELETE /devices/{token}", s.authed(classWrite, s.Limits.Write, s.deleteDevice))
	return s.guard(mux)
}

// NewStreamHTTP returns the handler of the HTTP API routes the stream
// function serves: projects (it holds go-git, KMS and the memory and disk a
// clone needs, so the chat function links none of it) and imports (it
// knows where the CLI looks for a transcript). Like the chat function's, it
// answers every other path with a JSON 404.
func NewStreamHTTP(d Deps) http.Handler {
	s, mux := newServer(d), http.NewServeMux()
	mux.HandleFunc("GET /projects", s.reading(classRead, s.Limits.Read, s.projects(s.listProjects)))
	mux.HandleFunc("POST /projects", s.authed(classWrite, s.Limits.Write, s.projects(s.createProject)))
	mux.HandleFunc("PATCH /projects/{id}", s.authed(classWrite, s.Limits.Write, s.projects(s.updateProject)))
	mux.HandleFunc("DELETE /projects/{id}", s.authed(classWrite, s.Limits.Write, s.projects(s.deleteProject)))
	// A diff and a push restore the conversation's files: written, not
	// read, limits.
	mux.HandleFunc("GET /chat/{id}/changes", s.authed(classWrite, s.Limits.Write, s.projects(s.changes)))
	mux.HandleFunc("POST /chat/{id}/push", s.authed(classWrite, s.Limits.Write, s.projects(s.push)))
	mux.HandleFunc("GET /chat/directories", s.reading(classRead, s.Limits.Read, s.projects(s.directories)))
	mux.HandleFunc("POST /chat/directories/{path}/label", s.authed(classWrite, s.Limits.Write, s.projects(s.labelDirectory)))
	mux.HandleFunc("DELETE /chat/directories/{path}", s.authed(classWrite, s.Limits.Write, s.projects(s.deleteDirectory)))
	// Sessions from the terminal: parsed, written and kept in S3 here, where
	// the CLI's folders are known.
	// An import writes up to thousands of messages and an upload up to
	// 100 MB: each counts as a turn does, not as a small write.
	mux.HandleFunc("POST /chat/import", s.authed(classTurn, s.Limits.Turn, s.importSession))
	mux.HandleFunc("POST /chat/import/uploads", s.authed(classTurn, s.Limits.Turn, s.importUpload))
	return s.guard(mux)
}

// NewStream returns the StreamFunction's handler. Its URL is public, so it
// refuses what did not come through CloudFront.
func NewStream(d Deps) http.Handler {
	s, mux := newServer(d), http.NewServeMux()
	mux.HandleFunc("POST /chat/stream", s.metered(classTurn, s.Limits.Turn, s.stream))
	mux.HandleFunc("POST /chat/{id}/stream", s.metered(classTurn, s.Limits.Turn, s.stream))
	// Reattaching is limited as starting a turn is, in a bucket of its
	// own: a client that reconnects never uses up its user's turns.
	mux.HandleFunc("GET /chat/{id}/stream", s.authed(classWatch, s.Limits.Turn, s.reattach))
	guarded := s.guard(mux)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.fromOrigin(r) {
			WriteJSON(w, http.StatusForbidden, errorBody{Error: "Forbidden"})
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
			if v := recover(); v != nil {
				s.Log.ErrorContext(r.Context(), "panic", "method", r.Method, "route", r.Pattern, "panic", v)
				WriteJSON(w, http.StatusInternalServerError, errorBody{Error: "Internal server error"})
			}
			// The route pattern, never the path: paths carry ids.
			s.Log.InfoContext(r.Context(), "request", "method", r.Method, "route", r.Pattern,
				"status", cmp.Or(w.status, http.StatusOK), "ms", time.Since(start).Milliseconds())
		}()
		for strings.Contains(r.URL.Path, "//") {
			r.URL.Path, r.URL.RawPath = strings.ReplaceAll(r.URL.Path, "//", "/"), ""
		}
		if r.URL.Path != "/health" && s.failed(w, r, s.key.Check(r)) {
			return
		}
		if _, r.Pattern = mux.Handler(r); r.Pattern == "" {
			// ServeMux's own 404, 405 and redirects are text/plain; the API
			// speaks JSON.
			writeError(w, r, s.Log, ovrlrd.Errorf(ovrlrd.ENOTFOUND, "Not found"))
			return
		}
		// ServeHTTP, not the handler Handler returned: only it sets the
		// path values ({id}) on the request.
		mux.ServeHTTP(w, r)
	})
}

// statusWriter remembers the status for the request log; a response
// written without WriteHeader is a 200, as net/http sends it. Unwrap keeps
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

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// health answers 200 when the table answers, 503 otherwise, with no detail.
func (s *server) health(w http.ResponseWriter, r *http.Request) {
	// Monitoring without a key gets through; the app learns that a key it
	// typed is wrong.
	if _, present := r.Header["X-Api-Key"]; present && s.key.Check(r) != nil {
		writeError(w, r, s.Log, ovrlrd.Errorf(ovrlrd.EUNAUTHORIZED, "Invalid API key"))
		return
	}
	if err := s.Store.Ping(r.Context()); err != nil {
		s.Log.ErrorContext(r.Context(), "health check failed", "err", err)
		WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unhealthy"})
		return
	}
	WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}
