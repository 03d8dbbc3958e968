package push_test

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/push"
)

// approval is a request of the rig's user; see approval.
func (r *rig) approval(tool, input string) ovrlrd.Approval {
	a := approval(tool, input)
	a.UserID = r.user
	return a
}

// approval is a request for tool, with input as JSON, that expires in ten
// minutes.
func approval(tool, input string) ovrlrd.Approval {
	return ovrlrd.Approval{
		ID: uuid.NewString(), ConversationID: uuid.NewString(), TurnID: "t-" + uuid.NewString(),
		ToolName: tool, ToolInput: json.RawMessage(input),
		ExpiresAt: ovrlrd.Timestamp(time.Now().Add(10 * time.Minute).Truncate(time.Second)),
	}
}

// command is a Bash input running cmd.
func command(cmd string) string {
	b, _ := json.Marshal(map[string]string{"command": cmd, "description": "what it does"})
	return string(b)
}

// The whole payload: the summary, the category of the app's actions, the
// ids to answer with, and nothing else of the input (its description).
func TestApprovalPayload(t *testing.T) {
	a := ovrlrd.Approval{
		ID: "5b1e2c3d", ConversationID: "6f1c", UserID: "u1", TurnID: "t1", ToolName: "Bash",
		ToolInput: json.RawMessage(`{"command":"npm test","description":"Run the tests","timeout":60000}`),
		ExpiresAt: ovrlrd.Timestamp(time.Now().Add(time.Minute)),
	}
	want := `{"aps":{"alert":{"body":"Claude wants to run Bash: npm test","title":"Claude needs your approval"},` +
		`"category":"TOOL_APPROVAL","sound":"default","thread-id":"6f1c"},` +
		`"conversationId":"6f1c","requestId":"5b1e2c3d","type":"approval_needed"}`
	if got := string(push.ApprovalPayload(a)); got != want {
		t.Fatalf("payload\n got %s\nwant %s", got, want)
	}
}

func TestApprovalSummary(t *testing.T) {
	long := func(c string, n int) string { return strings.Repeat(c, n) }
	tests := []struct{ tool, input, want string }{
		// A command by its program and a word that looks like a
		// subcommand; anything else it says is " …".
		{"Bash", command("npm test"), "Claude wants to run Bash: npm test"},
		{"Bash", command("npm run-script build"), "Claude wants to run Bash: npm run-script …"},
		{"Bash", command("git push origin main"), "Claude wants to run Bash: git push …"},
		{"Bash", command("make"), "Claude wants to run Bash: make"},
		{"Bash", command("g++ -o a a.cc"), "Claude wants to run Bash: g++ …"},
		{"Bash", command("echo live-approved > out.txt; cat out.txt"), "Claude wants to run Bash: echo …"},
		// Only a program that takes a subcommand shows one: of any other
		// a plain word may be a password.
		{"Bash", command("echo letmein | sudo -S apt-get install x"), "Claude wants to run Bash: echo …"},
		{"Bash", command("sudo reboot"), "Claude wants to run Bash: sudo …"},
		{"Bash", command("echo 'a' > out.txt"), "Claude wants to run Bash: echo …"},
		// A path by its base name; an assignment first is no program.
		{"Bash", command("/usr/bin/env FOO=1 make"), "Claude wants to run Bash: env …"},
		{"Bash", command("./node_modules/.bin/jest --watch"), "Claude wants to run Bash: jest …"},
		{"Bash", command("FOO=bar npm test"), "Claude wants to use Bash"},
		{"Bash", command("$(cat cmd) test"), "Claude wants to use Bash"},
		{"Bash", command("naïve test"), "Claude wants to use Bash"},
		// A program name of 24 characters is shown, of 25 not; a
		// subcommand of 16 characters is, of 17 not, nor one with a
		// digit, a capital, or a leading hyphen.
		{"Bash", command(long("p", 24) + " x"), "Claude wants to run Bash: " + long("p", 24) + " …"},
		{"Bash", command(long("p", 25) + " x"), "Claude wants to use Bash"},
		{"Bash", command("npm " + long("s", 16)), "Claude wants to run Bash: npm " + long("s", 16)},
		{"Bash", command("npm " + long("s", 17)), "Claude wants to run Bash: npm …"},
		{"Bash", command("npm test2"), "Claude wants to run Bash: npm …"},
		{"Bash", command("npm Test"), "Claude wants to run Bash: npm …"},
		{"Bash", command("npm tEst"), "Claude wants to run Bash: npm …"},
		{"Bash", command("npm -test"), "Claude wants to run Bash: npm …"},
		// A command that goes on says so.
		{"Bash", command("git status\nrm -rf node_modules"), "Claude wants to run Bash: git status …"},
		{"Bash", command("make\r\nmake install"), "Claude wants to run Bash: make …"},
		{"Bash", command("\n\n  npm   test  \n"), "Claude wants to run Bash: npm test"},
		// Tabs and other spaces part words; a word with an escape or a
		// bidirectional override is not shown.
		{"Bash", command("npm\ttest\u00a0--ci"), "Claude wants to run Bash: npm test …"},
		{"Bash", command("npm\ttest\x1b[0m"), "Claude wants to run Bash: npm …"},
		{"Bash", command("npm te\u202est"), "Claude wants to run Bash: npm …"},
		{"Bash", command("n\u200bpm test"), "Claude wants to use Bash"},
		{"Bash", command("AWS_KEY=abc/def/ghi aws s3 ls"), "Claude wants to use Bash"},
		{"Bash", `{"description":"no command"}`, "Claude wants to use Bash"},
		{"Bash", command("   "), "Claude wants to use Bash"},
		{"Bash", `{"command":42}`, "Claude wants to use Bash"},
		{"Bash", `not json`, "Claude wants to use Bash"},
		// Files by their base name only, when it is a plain one of at
		// most sixty characters.
		{"Edit", `{"file_path":"/home/alice/acme-merger/src/main.go","old_string":"a","new_string":"b"}`, "Claude wants to use Edit: main.go"},
		{"Write", `{"file_path":"/srv/app/.env","content":"KEY=1"}`, "Claude wants to use Write: .env"},
		{"Read", `{"file_path":"docs/README.md"}`, "Claude wants to use Read: README.md"},
		{"Read", `{"file_path":"/tmp/Meeting notes_v2-final.txt"}`, "Claude wants to use Read: Meeting notes_v2-final.txt"},
		{"NotebookEdit", `{"notebook_path":"/data/q3/report.ipynb","new_source":"x"}`, "Claude wants to use NotebookEdit: report.ipynb"},
		{"Read", `{"file_path":"/a/` + long("f", 60) + `"}`, "Claude wants to use Read: " + long("f", 60)},
		{"Read", `{"file_path":"/a/` + long("f", 61) + `"}`, "Claude wants to use Read"},
		{"Write", `{"file_path":"/tmp/token=hunter2"}`, "Claude wants to use Write"},
		{"Read", `{"file_path":"/tmp/résumé.pdf"}`, "Claude wants to use Read"},
		{"Read", `{"file_path":"/"}`, "Claude wants to use Read"},
		// A URL by its host only, when it is a plain host name.
		{"WebFetch", `{"url":"https://bob:pw@docs.example.com:8443/private/path?q=x#y","prompt":"summarise"}`, "Claude wants to use WebFetch: docs.example.com"},
		{"WebFetch", `{"url":"http://[::1]:8080/"}`, "Claude wants to use WebFetch"},
		{"WebFetch", `{"url":"https://bücher.example/"}`, "Claude wants to use WebFetch"},
		{"WebFetch", `{"url":"https://a_b.example/"}`, "Claude wants to use WebFetch"},
		{"WebFetch", `{"url":"not a url"}`, "Claude wants to use WebFetch"},
		{"Grep", `{"pattern":"TODO","path":"/src"}`, "Claude wants to use Grep"},
		// The tool name: at most forty characters, one line.
		{"mcp__" + long("x", 50), `{}`, "Claude wants to use mcp__" + long("x", 34) + "…"},
		{"Bad\nTool\x00", `{}`, "Claude wants to use Bad Tool"},
		{"", `{}`, "Claude wants to use a tool"},
	}
	for _, tc := range tests {
		if got := push.Summary(approval(tc.tool, tc.input)); got != tc.want {
			t.Errorf("Summary(%q, %q)\n got %q\nwant %q", tc.tool, tc.input, got, tc.want)
		}
	}
	// Short, plain passwords where a program takes them, which no pattern
	// would know for secrets: no part of them, nor of the user names, is
	// anywhere in the payload.
	for _, tc := range []struct{ cmd, want string }{
		{"curl -u admin:hunter2 https://x.example", "curl …"},
		{"mysql -uroot -phunter2 db", "mysql …"},
		{"docker login -u bob -p hunter2 ghcr.io", "docker login …"},
		{"sshpass -p hunter2 ssh host", "sshpass …"},
		{"htpasswd -b file bob hunter2", "htpasswd …"},
	} {
		a := approval("Bash", command(tc.cmd))
		if got, want := push.Summary(a), "Claude wants to run Bash: "+tc.want; got != want {
			t.Errorf("Summary(%q)\n got %q\nwant %q", tc.cmd, got, want)
		}
		p := string(push.ApprovalPayload(a))
		for _, secret := range []string{"hunter2", "admin", "root", "bob"} {
			if l := leak(p, secret, 3); l != "" {
				t.Errorf("payload of %q has %q: %s", tc.cmd, l, p)
			}
		}
	}
}

// leak is a piece of secret, n characters long (or all of a shorter
// secret), found in payload, or "".
func leak(payload, secret string, n int) string {
	n = min(n, len(secret))
	for i := 0; i+n <= len(secret); i++ {
		if strings.Contains(payload, secret[i:i+n]) {
			return secret[i : i+n]
		}
	}
	return ""
}

// Secrets in a command are never shown, wherever they stand and whatever
// they look like: no piece of one, six characters long, is anywhere in
// the payload.
func TestApprovalSecretsAreMasked(t *testing.T) {
	tests := []struct{ cmd, want, secret string }{
		// An assignment first: no program, no detail.
		{"AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY aws s3 ls", "", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"},
		{"DB_PASS=hunter2 psql -h db", "", "hunter2"},
		{`curl -d '{"password": "s3cr3tvalue"}' x.io`, "curl …", "s3cr3tvalue"},
		{`curl -H "Authorization: Bearer abc123def456ghi789" https://api.example.com`, "curl …", "abc123def456ghi789"},
		{`curl -H 'Authorization: Token tkn9f8e7d6c' x.io`, "curl …", "tkn9f8e7d6c"},
		{"curl --oauth2-bearer zq81Xk20Lm77 x.io", "curl …", "zq81Xk20Lm77"},
		{"git clone https://alice:hunter2pass@10.0.0.5/repo.git", "git clone …", "alice:hunter2pass"},
		{"mysql -u root --password hunter2 app", "mysql …", "hunter2"},
		{"export GH=ghp_R2d2C3poBb8Yoda4Luke5Leia6Han7Solo8 && gh pr list", "export …", "ghp_R2d2C3poBb8Yoda4Luke5Leia6Han7Solo8"},
		{"git show 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b", "git show …", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b"},
		{"echo and some words before it: R2d2C3poBb8Yoda4Luke5Leia6Han7Solo8Chewie9", "echo …", "R2d2C3poBb8Yoda4Luke5Leia6Han7Solo8Chewie9"},
		// A control character dropped does not join a secret into a word
		// that is shown.
		{"echo Zq8mW3nR5tY7uI9oP1aS\x7f3dF5gH7jK9lZ2xC4vB6n", "echo …", "Zq8mW3nR5tY7uI9oP1aS3dF5gH7jK9lZ2xC4vB6n"},
		{"hunter\x7f2 test", "", "hunter2"},
	}
	for _, tc := range tests {
		a := approval("Bash", command(tc.cmd))
		want := "Claude wants to use Bash"
		if tc.want != "" {
			want = "Claude wants to run Bash: " + tc.want
		}
		if got := push.Summary(a); got != want {
			t.Errorf("Summary(%q)\n got %q\nwant %q", tc.cmd, got, want)
		}
		if p := string(push.ApprovalPayload(a)); leak(p, tc.secret, 6) != "" {
			t.Errorf("payload of %q has %q: %s", tc.cmd, leak(p, tc.secret, 6), p)
		}
	}
	// A URL's credentials, where only its host is shown.
	a := approval("WebFetch", `{"url":"https://admin:Sup3rS3cret@intranet.example.com/"}`)
	if p := string(push.ApprovalPayload(a)); leak(p, "admin:Sup3rS3cret", 6) != "" || !strings.Contains(p, "WebFetch: intranet.example.com") {
		t.Errorf("payload %s", p)
	}
}

// Whatever the tool name and input, the payload stays far below APNs's
// 4 KB: characters JSON escapes, or that take four bytes, and an input
// much larger than that.
func TestApprovalPayloadStaysSmall(t *testing.T) {
	content := strings.Repeat("x", 100_000)
	for _, a := range []ovrlrd.Approval{
		approval(strings.Repeat("<", 100), command(strings.Repeat("<", 10_000))),
		approval(strings.Repeat("𝕏", 100), command(strings.Repeat("𝕏", 10_000))),
		approval("Write", `{"file_path":"/a/`+strings.Repeat("&", 5000)+`","content":"`+content+`"}`),
	} {
		if p := push.ApprovalPayload(a); len(p) > 1024 || strings.Contains(string(p), content[:100]) {
			t.Errorf("payload of %d bytes: %.300s", len(p), p)
		}
	}
}

// Every device of the owner gets the request, with the alert headers;
// another user's device gets nothing.
func TestApprovalNeededPushesEveryDeviceOfTheOwner(t *testing.T) {
	r := newRig(t)
	a, b := r.device(t, ovrlrd.EnvSandbox), r.device(t, ovrlrd.EnvProduction)
	other := r.deviceOf(t, uuid.NewString(), ovrlrd.EnvSandbox)
	req := r.approval("Bash", command("npm test"))
	r.n.ApprovalNeeded(context.Background(), req)
	got := map[string]bool{}
	for _, q := range r.apns.Requests() {
		got[q.Token] = true
		if string(q.Raw) != string(push.ApprovalPayload(req)) {
			t.Errorf("payload %s", q.Raw)
		}
		if h := q.Header; h.Get("apns-push-type") != "alert" || h.Get("apns-priority") != "10" || h.Get("apns-topic") != "com.ovrlrd.app" {
			t.Errorf("headers %v", h)
		}
	}
	if len(got) != 2 || !got[a] || !got[b] || got[other] {
		t.Fatalf("pushed to %v; the owner's are %s and %s", got, a, b)
	}
}

// A repeated push of one request collapses into one on the phone, by a
// hash that does not carry the request id; another request of the same
// turn does not replace it, nor does the turn's answer. Each request's
// push expires with it; the answer's does not.
func TestApprovalCollapseIDAndExpiration(t *testing.T) {
	r := newRig(t)
	r.device(t, ovrlrd.EnvSandbox)
	first := r.approval("Bash", command("npm test"))
	second := r.approval("Bash", command("npm test"))
	second.TurnID = first.TurnID
	second.ExpiresAt = ovrlrd.Timestamp(first.ExpiresAt.Time().Add(time.Minute))
	r.n.ApprovalNeeded(context.Background(), first)
	r.n.ApprovalNeeded(context.Background(), first)
	r.n.ApprovalNeeded(context.Background(), second)
	r.n.Notify(context.Background(), r.user, push.Message{ConversationID: "c", Segments: []string{"hi"}, TurnID: first.TurnID})
	reqs := r.apns.Requests()
	ids := collapseIDs(reqs)
	if len(ids) != 4 || ids[0] == "" || len(ids[0]) > 64 || ids[1] != ids[0] || ids[2] == "" || ids[2] == ids[0] || ids[3] == ids[0] || ids[3] == ids[2] {
		t.Fatalf("collapse ids %q", ids)
	}
	if strings.Contains(ids[0], first.ID) || strings.Contains(ids[0], strings.ReplaceAll(first.ID, "-", "")) {
		t.Fatalf("collapse id %q carries the request id %s", ids[0], first.ID)
	}
	exp := make([]string, len(reqs))
	for i, q := range reqs {
		exp[i] = q.Header.Get("apns-expiration")
	}
	want := []string{strconv.FormatInt(first.ExpiresAt.Time().Unix(), 10), "", strconv.FormatInt(second.ExpiresAt.Time().Unix(), 10), ""}
	want[1] = want[0]
	if strings.Join(exp, ",") != strings.Join(want, ",") {
		t.Fatalf("apns-expiration %q, want %q", exp, want)
	}
}

// A request past its time, or without one, is not pushed: no turn waits
// for its answer, and without an expiration APNs would keep it.
func TestExpiredApprovalIsNotPushed(t *testing.T) {
	r := newRig(t)
	r.device(t, ovrlrd.EnvSandbox)
	past, never := r.approval("Bash", command("npm test")), r.approval("Bash", command("npm test"))
	past.ExpiresAt = ovrlrd.Timestamp(time.Now().Add(-time.Second))
	never.ExpiresAt = ovrlrd.Timestamp{}
	r.n.ApprovalNeeded(context.Background(), past)
	r.n.ApprovalNeeded(context.Background(), never)
	if n := len(r.apns.Requests()); n != 0 {
		t.Fatalf("%d pushes of expired requests", n)
	}
}
