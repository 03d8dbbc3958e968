package runtimetest

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/ovrlrd/cloud/internal/devkit/applefake"
	"github.com/ovrlrd/cloud/internal/devkit/claudetest"
	"github.com/ovrlrd/cloud/internal/devkit/samtemplate"
	"github.com/ovrlrd/cloud/internal/devkit/sandboxtest"
	"github.com/ovrlrd/cloud/internal/devkit/ssetest"
	"github.com/ovrlrd/cloud/internal/devkit/ssmfake"
	"github.com/ovrlrd/cloud/internal/devkit/storetest"
)

func TestMain(m *testing.M) {
	code := storetest.Run(m)
	if tools.dir != "" {
		_ = os.RemoveAll(tools.dir)
	}
	os.Exit(code)
}

// What the sample events stand in for secrets (see events/); the SSM
// stand-in holds the same, so each event passes the guards and reaches its
// route.
const (
	sampleAPIKey       = "sample-api-key-not-a-secret"
	sampleOriginSecret = "sample-origin-secret-not-a-secret"
	sampleConversation = "6f1c2b7e-3d4a-4b5c-8d9e-0a1b2c3d4e5f"
)

// The status each sample event gets without a valid session token.
var sampleStatus = map[string]int{
	"auth-signin.json": 401, "auth-refresh.json": 401, "auth-logout.json": 401, "chat-account-delete.json": 401,
	"chat-health.json": 200, "chat-default.json": 404,
	"chat-list.json": 401, "chat-get.json": 401, "chat-delete.json": 401, "chat-event.json": 401,
	"chat-turn.json": 401, "chat-turn-conversation.json": 401, "chat-cancel.json": 401, "chat-approval-answer.json": 401,
	"chat-device-register.json": 401, "chat-device-remove.json": 401,
	"stream-new.json": 401, "stream-continue.json": 401, "stream-reattach.json": 401,
	// HTTP API routes the stream function serves.
	"stream-project-create.json": 401, "stream-project-list.json": 401, "stream-project-update.json": 401,
	"stream-project-delete.json": 401, "stream-changes.json": 401, "stream-push.json": 401,
	"stream-directory-list.json": 401, "stream-directory-label.json": 401, "stream-directory-delete.json": 401,
	"stream-import.json": 401, "stream-import-upload.json": 401,
}

// httpAPIEvent tells a sample HTTP API event from a Function URL event,
// both payload 2.0, as the stream function's handler does: only the HTTP
// API's names a route other than $default.
func httpAPIEvent(t *testing.T, name string) bool {
	t.Helper()
	var ev struct {
		RouteKey string `json:"routeKey"`
	}
	readEvent(t, name, &ev)
	return ev.RouteKey != "" && ev.RouteKey != "$default"
}

// deployed is one function as the stack deploys it, run by the emulator.
type deployed struct {
	logical, physical string
	bootstrap         string
	env               map[string]string
	emu               *emulator
	calls             *calls
	ssm               *ssmfake.Server
}

// stack runs the three built bootstraps under the Runtime Interface
// Emulator with the environment template.yaml gives each function (and the
// image gives the stream function), STAGE=dev, secrets from an SSM
// stand-in. Only endpoints differ from AWS: DynamoDB Local, an S3
// stand-in, a Lambda stand-in (the chat function's asynchronous invokes of
// the stream function and of itself) and Apple's keys.
// Every AWS call is recorded.
type stack struct {
	fns    map[string]*deployed
	apple  *applefake.Server
	lambda *lambdaFake
	tpl    samtemplate.Template
	env    samtemplate.Env
}

// deployMod changes how one function is deployed before it starts: its
// environment, or the program the emulator runs.
type deployMod func(t *testing.T, d *deployed)

func newStack(t *testing.T, mods ...deployMod) *stack {
	t.Helper()
	_, bootstraps := built(t)
	tpl, err := samtemplate.Load(filepath.Join(repoRoot(), "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	a := arns{region: samtemplate.SampleRegion, account: samtemplate.SampleAccount}
	const prefix = "/ovrlrd/dev"
	bucket := "ovrlrd-dev-sessions-" + strconv.FormatInt(int64(os.Getpid()), 10)
	names := map[string]string{
		"Table": storetest.TableName(), "SessionsBucket": bucket,
		"AuthFunction": "ovrlrd-dev-auth", "ChatFunction": "ovrlrd-dev-chat", "StreamFunction": "ovrlrd-dev-stream",
	}
	params := map[string]string{"Stage": "dev", "SsmPrefix": prefix, "AllowOpenSignup": "true", "ClaudeProvider": "anthropic"}
	s := &stack{fns: map[string]*deployed{}, apple: applefake.New(), tpl: tpl, env: tpl.SampleEnv(params, names)}
	t.Cleanup(s.apple.Close)

	secrets := map[string]string{
		prefix + "/jwt-keys":          "k1:" + rand.Text() + rand.Text(),
		prefix + "/api-key":           sampleAPIKey,
		prefix + "/anthropic-api-key": "sk-ant-not-a-real-key",
		prefix + "/origin-secret":     sampleOriginSecret,
	}
	awsFiles := t.TempDir()
	s3 := s3Backend(t, bucket)
	for _, logical := range []string{"AuthFunction", "ChatFunction", "StreamFunction"} {
		d := &deployed{logical: logical, physical: names[logical], calls: &calls{}, ssm: ssmfake.New(secrets)}
		t.Cleanup(d.ssm.Close)
		s.fns[logical] = d
		env, err := lambdaEnv(tpl, s.env, logical, awsFiles)
		if err != nil {
			t.Fatal(err)
		}
		maps.Copy(env, map[string]string{
			"DYNAMODB_ENDPOINT":    dynamoProxy(t, storetest.Endpoint(), a, d.calls),
			"S3_ENDPOINT":          s3Proxy(t, s3, d.calls),
			"AWS_ENDPOINT_URL_SSM": d.ssm.URL,
			"APPLE_JWKS_URL":       s.apple.URL,
		})
		bootstrap := bootstraps["auth"]
		switch logical {
		case "ChatFunction":
			bootstrap = bootstraps["chat"]
			// Buffered turns go to the stream function; account deletions
			// finish in an asynchronous invoke of the chat function itself.
			s.lambda = newLambdaFake(t, a, d.calls, func(function string) (*emulator, string) {
				if function == names["ChatFunction"] {
					return s.fns["ChatFunction"].emu, `{"finished":"account deletion"}`
				}
				return s.fns["StreamFunction"].emu, `null` // nobody reads an asynchronous answer
			})
			env["AWS_ENDPOINT_URL_LAMBDA"] = s.lambda.URL
		case "StreamFunction":
			bootstrap = bootstraps["stream"]
			// What the image sets, with this machine's folders and the fake
			// CLI in place of the real one.
			maps.Copy(env, imageEnv(t))
			env["CLAUDE_PATH"] = claudetest.FakeCLI(t)
			freshTmp(t, env)
		}
		d.bootstrap, d.env = bootstrap, env
		for _, m := range mods {
			m(t, d)
		}
		d.emu = startEmulator(t, logical, d.bootstrap, d.env)
	}
	return s
}

// freshTmp gives the stream function an empty /tmp of its own: the CLI's
// home, its sessions and the workspaces.
func freshTmp(t *testing.T, env map[string]string) {
	root := sandboxtest.Dir(t)
	env["CLAUDE_WORK_ROOT"] = filepath.Join(root, "work")
	env["CLAUDE_CONFIG_ROOT"] = filepath.Join(root, "claude")
	env["HOME"] = root
}

// coldStart replaces a function's execution environment with a new one, as
// Lambda does after idling or to scale out: a new process and an empty
// /tmp, at the same paths (the image's).
func (s *stack) coldStart(t *testing.T, logical string) {
	t.Helper()
	d := s.fns[logical]
	d.emu.stop()
	if logical == "StreamFunction" {
		for _, k := range []string{"CLAUDE_WORK_ROOT", "CLAUDE_CONFIG_ROOT"} {
			if err := os.RemoveAll(d.env[k]); err != nil {
				t.Fatal(err)
			}
		}
	}
	d.emu = startEmulator(t, logical, d.bootstrap, d.env)
}

// imageEnv reads the ENV instructions of the Dockerfile's final stage.
func imageEnv(t *testing.T) map[string]string {
	t.Helper()
	env, err := samtemplate.DockerfileEnv(filepath.Join(repoRoot(), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// readEvent loads a sample event.
func readEvent(t *testing.T, name string, v any) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(), "events", name))
	if err != nil {
		t.Fatal(err)
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	return b
}

// httpCall invokes an HTTP API function with a sample event, adjusted: a
// bearer token, a body, the sample conversation id replaced. The file's
// prefix names the function (auth-, chat-, stream-).
func (s *stack) httpCall(t *testing.T, name, token, body, id string) events.APIGatewayV2HTTPResponse {
	t.Helper()
	var ev events.APIGatewayV2HTTPRequest
	readEvent(t, name, &ev)
	if token != "" {
		ev.Headers["authorization"] = "Bearer " + token
	}
	if body != "" {
		ev.Body = base64.StdEncoding.EncodeToString([]byte(body))
		ev.IsBase64Encoded = true
	}
	if id != "" {
		ev.RawPath = strings.ReplaceAll(ev.RawPath, sampleConversation, id)
		ev.RequestContext.HTTP.Path = ev.RawPath
		for k, v := range ev.PathParameters {
			ev.PathParameters[k] = strings.ReplaceAll(v, sampleConversation, id)
		}
	}
	fn := s.fns["ChatFunction"]
	switch {
	case strings.HasPrefix(name, "auth-"):
		fn = s.fns["AuthFunction"]
	case strings.HasPrefix(name, "stream-"):
		fn = s.fns["StreamFunction"]
	}
	raw, _ := json.Marshal(ev)
	out := fn.emu.invoke(t, raw)
	var resp events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(out, &resp); err != nil || resp.StatusCode == 0 {
		t.Fatalf("%s: not an HTTP API response: %v\n%s", name, err, out)
	}
	if resp.IsBase64Encoded {
		b, _ := base64.StdEncoding.DecodeString(resp.Body)
		resp.Body = string(b)
	}
	return resp
}

// prelude is the head of a streamed Function URL response.
type prelude struct {
	StatusCode int               `json:"statusCode"`
	Headers    map[string]string `json:"headers"`
	Cookies    []string          `json:"cookies"`
}

// streamCall invokes the stream function with a sample Function URL event
// and splits the streamed wire format: a JSON prelude, eight NUL bytes, the
// body.
func (s *stack) streamCall(t *testing.T, name, token, body, id string) (prelude, []byte) {
	t.Helper()
	var ev events.LambdaFunctionURLRequest
	readEvent(t, name, &ev)
	if token != "" {
		ev.Headers["authorization"] = "Bearer " + token
	}
	if body != "" {
		ev.Body = base64.StdEncoding.EncodeToString([]byte(body))
	}
	if id != "" {
		ev.RawPath = strings.ReplaceAll(ev.RawPath, sampleConversation, id)
		ev.RequestContext.HTTP.Path = ev.RawPath
	}
	raw, _ := json.Marshal(ev)
	out := s.fns["StreamFunction"].emu.invoke(t, raw)
	i := bytes.Index(out, make([]byte, 8))
	if i < 0 {
		t.Fatalf("%s: no prelude separator in the streamed response:\n%q", name, out)
	}
	var p prelude
	dec := json.NewDecoder(bytes.NewReader(out[:i]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil || p.StatusCode == 0 {
		t.Fatalf("%s: prelude %q: %v", name, out[:i], err)
	}
	return p, out[i+8:]
}

// Every sample event, through the real runtime: the built bootstraps under
// the emulator answer each with the status the in-process test expects.
func TestSampleEventsUnderTheEmulator(t *testing.T) {
	s := newStack(t)
	s.sampleEventsAnswer(t)
	s.checkIAM(t)
	for _, d := range s.fns {
		t.Logf("%s: INIT %v", d.logical, d.emu.initDurations())
	}
}

// sampleEventsAnswer sends every sample event to its function and checks
// the status the in-process test expects (a streamed answer's body must be
// JSON too).
func (s *stack) sampleEventsAnswer(t *testing.T) {
	t.Helper()
	files := sampleEventFiles()
	if len(files) != len(sampleStatus) {
		t.Errorf("%d sample events, %d expected statuses", len(files), len(sampleStatus))
	}
	for _, f := range files {
		name := filepath.Base(f)
		want, ok := sampleStatus[name]
		if !ok {
			t.Errorf("%s: no expected status", name)
			continue
		}
		if strings.HasPrefix(name, "stream-") && !httpAPIEvent(t, name) {
			p, body := s.streamCall(t, name, "", "", "")
			if p.StatusCode != want || !json.Valid(body) {
				t.Errorf("%s: %d %s, want %d", name, p.StatusCode, body, want)
			}
			continue
		}
		if resp := s.httpCall(t, name, "", "", ""); resp.StatusCode != want {
			t.Errorf("%s: %d %s, want %d", name, resp.StatusCode, resp.Body, want)
		}
	}
}

// A user's whole life through the real runtime: sign in, stream a turn
// (the wire format checked event by event), read it back, continue it,
// run a buffered turn (the chat function starts it in the stream function
// with an asynchronous invoke), devices, cancel, delete, refresh, logout,
// delete the account. Then every AWS call each function made must be one
// its role in template.yaml allows.
func TestLifecycleUnderTheEmulator(t *testing.T) {
	s := newStack(t)
	sub := "001122.rie." + strconv.FormatInt(int64(os.Getpid()), 10)
	device := strings.Repeat("ab", 32)
	signIn := func() string {
		t.Helper()
		idt := s.apple.Mint(applefake.Claims{Subject: sub, Email: "rie@example.com", EmailVerified: "true"})
		resp := s.httpCall(t, "auth-signin.json", "", fmt.Sprintf(`{"identityToken":%q,"deviceToken":%q}`, idt, device), "")
		if resp.StatusCode != 200 {
			t.Fatalf("sign in: %d %s", resp.StatusCode, resp.Body)
		}
		var g struct{ SessionToken string }
		_ = json.Unmarshal([]byte(resp.Body), &g)
		return g.SessionToken
	}
	expect := func(what string, resp events.APIGatewayV2HTTPResponse, status int) map[string]any {
		t.Helper()
		if resp.StatusCode != status {
			t.Fatalf("%s: %d %s, want %d", what, resp.StatusCode, resp.Body, status)
		}
		var m map[string]any
		if resp.Body != "" {
			if err := json.Unmarshal([]byte(resp.Body), &m); err != nil {
				t.Fatalf("%s: body %q", what, resp.Body)
			}
		}
		return m
	}
	tok := signIn()
	expect("list", s.httpCall(t, "chat-list.json", tok, "", ""), 200)

	// A streamed turn: 200, the SSE headers, the events in order.
	msg := claudetest.Script("normal", "text", "Hello from the emulator ✓")
	p, body := s.streamCall(t, "stream-new.json", tok, `{"message":`+strconv.Quote(msg)+`}`, "")
	if p.StatusCode != 200 || p.Headers["Content-Type"] != "text/event-stream" || p.Headers["Cache-Control"] != "no-cache" {
		t.Fatalf("stream prelude %+v\n%s", p, body)
	}
	evs, err := ssetest.Decode(body)
	if err != nil {
		t.Fatalf("the app could not decode the stream: %v\n%s", err, body)
	}
	var types []string
	var text string
	for _, e := range evs {
		types = append(types, e.Type)
		if e.Type == "chunk" {
			text += e.Content
		}
	}
	last := evs[len(evs)-1]
	if types[0] != "ping" || last.Type != "complete" || last.ConversationID == "" || text != "Hello from the emulator ✓" {
		t.Fatalf("events %v, text %q", types, text)
	}
	t.Logf("streamed %d bytes, events %v", len(body), types)
	conv := last.ConversationID

	detail := expect("get", s.httpCall(t, "chat-get.json", tok, "", conv), 200)
	if msgs, _ := detail["messages"].([]any); len(msgs) != 2 {
		t.Fatalf("conversation %v", detail)
	}
	// The next turn runs in a new execution environment: it resumes the
	// session it restores from S3.
	s.coldStart(t, "StreamFunction")
	p, body = s.streamCall(t, "stream-continue.json", tok, `{"message":"again","allowedTools":["Read"]}`, conv)
	if evs, err = ssetest.Decode(body); err != nil || p.StatusCode != 200 || evs[len(evs)-1].Type != "complete" {
		t.Fatalf("second turn: %d %v %s", p.StatusCode, err, body)
	}
	expect("event", s.httpCall(t, "chat-event.json", tok, "", conv), 200)

	// A buffered turn: the chat function starts it in the stream function.
	buffered := expect("buffered", s.httpCall(t, "chat-turn-conversation.json", tok,
		`{"message":`+strconv.Quote(claudetest.Script("normal", "text", "Buffered answer"))+`}`, conv), 200)
	if buffered["message"] != "Buffered answer" || buffered["conversationId"] != conv {
		t.Fatalf("buffered turn %v", buffered)
	}
	if n, errs := s.lambda.done(); n != 1 || len(errs) > 0 {
		t.Fatalf("asynchronous invokes: %d, errors %v", n, errs)
	}
	// Nothing runs any more: the route is reached and says so.
	expect("cancel", s.httpCall(t, "chat-cancel.json", tok, "", conv), 404)
	expect("register device", s.httpCall(t, "chat-device-register.json", tok, "", ""), 204)
	expect("remove device", s.httpCall(t, "chat-device-remove.json", tok, "", ""), 204)
	expect("delete", s.httpCall(t, "chat-delete.json", tok, "", conv), 200)
	expect("deleted", s.httpCall(t, "chat-get.json", tok, "", conv), 404)

	refreshed := expect("refresh", s.httpCall(t, "auth-refresh.json", tok, "", ""), 200)
	tok, _ = refreshed["sessionToken"].(string)
	expect("logout", s.httpCall(t, "auth-logout.json", tok, "", ""), 204)
	expect("after logout", s.httpCall(t, "chat-list.json", tok, "", ""), 401)

	tok = signIn()
	p, body = s.streamCall(t, "stream-new.json", tok, `{"message":"one more"}`, "")
	if p.StatusCode != 200 {
		t.Fatalf("turn before deletion: %d %s", p.StatusCode, body)
	}
	expect("delete account", s.httpCall(t, "chat-account-delete.json", tok, "", ""), 204)
	if n, errs := s.lambda.done(); n != 2 || len(errs) > 0 {
		t.Fatalf("the buffered turn and the deletion's finish: %d invokes, errors %v", n, errs)
	}
	expect("after deletion", s.httpCall(t, "chat-list.json", tok, "", ""), 401)

	s.checkIAM(t)
	for _, d := range s.fns {
		t.Logf("%s: INIT %v", d.logical, d.emu.initDurations())
	}
}

// checkIAM checks every AWS call each function made against the role
// template.yaml gives it, evaluated with the same names.
func (s *stack) checkIAM(t *testing.T) {
	t.Helper()
	for _, d := range s.fns {
		role, err := s.tpl.RoleOf(d.logical)
		if err != nil {
			t.Fatal(err)
		}
		stmts, err := s.tpl.RoleStatements(role, s.env)
		if err != nil {
			t.Fatal(err)
		}
		reqs := d.calls.all()
		for _, r := range d.ssm.Requests() {
			for _, n := range r.Names {
				reqs = append(reqs, samtemplate.Request{Action: "ssm:GetParameters",
					Resource: "arn:aws:ssm:" + samtemplate.SampleRegion + ":" + samtemplate.SampleAccount + ":parameter" + n})
			}
		}
		seen := map[string]bool{}
		for _, r := range reqs {
			key := r.String()
			if seen[key] {
				continue
			}
			seen[key] = true
			// AWS never authorizes a call by a name IAM does not know, so
			// a policy granting that name proves nothing about the call.
			if !samtemplate.ActionExists(r.Action) {
				t.Errorf("%s made a call that is not an IAM action: %s", d.logical, key)
			}
			if !samtemplate.Allows(stmts, r) {
				t.Errorf("%s made a call its role does not allow: %s", d.logical, key)
			}
		}
		actions := map[string]bool{}
		for _, r := range reqs {
			actions[r.Action] = true
		}
		list := make([]string, 0, len(actions))
		for a := range actions {
			list = append(list, a)
		}
		sort.Strings(list)
		t.Logf("%s called %v", d.logical, list)
	}
}
