package webtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/google/uuid"

	"github.com/ovrlrd/cloud/internal/devkit/devenv"
	"github.com/ovrlrd/cloud/internal/devkit/devserver"
)

// usageStep: the open conversation, whose turn has just ended in a view
// the page made before the conversation existed, shows the cost and
// tokens GET /chat/{id} reads: the page read them again at the turn's end.
func usageStep(t *testing.T, b *browserRun, stack devserver.Info) bool {
	return t.Run("cost and tokens", func(t *testing.T) {
		ctx := b.step(t)
		base := "http://" + stack.Addr
		id, token := openConversation(ctx, t), pageToken(ctx, t)
		if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.ID("chat-usage"))); err != nil {
			t.Fatalf("%v; the page says: %s", err, b.says(".chat-head"))
		}
		var d struct {
			Conversation struct {
				CostUSD      float64 `json:"costUsd"`
				InputTokens  int64   `json:"inputTokens"`
				OutputTokens int64   `json:"outputTokens"`
			} `json:"conversation"`
		}
		if status := apiJSON(ctx, t, base, stack.APIKey, token, "/chat/"+id+"?limit=1", &d); status != http.StatusOK {
			t.Fatalf("GET /chat/%s = %d", id, status)
		}
		c := d.Conversation
		if c.CostUSD <= 0 || c.InputTokens <= 0 || c.OutputTokens <= 0 {
			t.Fatalf("the conversation's usage %+v: the turn cost nothing", c)
		}
		attrs, err := chromedp.Run(ctx, chromedp.Attributes(chromedp.ID("chat-usage")))
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{
			"data-cost-usd":      fmt.Sprint(c.CostUSD),
			"data-input-tokens":  fmt.Sprint(c.InputTokens),
			"data-output-tokens": fmt.Sprint(c.OutputTokens),
		}
		for k, v := range want {
			if attrs[k] != v {
				t.Errorf("#chat-usage %s = %q, want %q", k, attrs[k], v)
			}
		}
		text, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("chat-usage")))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(text, "$") || !strings.Contains(text, "tokens") {
			t.Errorf("#chat-usage says %q, want the cost and the tokens", text)
		}
		b.console.seen(ctx, t)
	})
}

// importStep imports a terminal session by choosing its file: the page
// opens the conversation it became, with its messages, and lists it. The
// same file again is refused, naming that conversation; one too large for
// a request is refused in the page, before anything is sent.
func importStep(t *testing.T, b *browserRun) bool {
	return t.Run("import", func(t *testing.T) {
		ctx := b.step(t)
		marker := rand.Text()[:10]
		file, session := deskSession(t, "Import check "+marker+": what is here?", "The desk's answer "+marker+".")
		imports := countRequests(ctx, http.MethodPost, "/chat/import")
		err := chromedp.Do(ctx,
			chromedp.SetUploadFiles(chromedp.ID("import-file"), []string{file}),
			chromedp.WaitReady(chromedp.JSPath(fmt.Sprintf(`(() => {
				const t = document.getElementById("transcript");
				const ms = t.querySelectorAll(".message");
				return ms.length === 2 && t.textContent.includes("The desk's answer %s.") ? t : null;
			})()`, marker))),
		)
		if err != nil {
			t.Fatalf("%v; the page says: %s", err, b.says("#import-status", "#transcript"))
		}
		id := openConversation(ctx, t)
		roles, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#transcript .message")].map(m => m.className)`))
		if err != nil {
			t.Fatal(err)
		}
		if len(roles) != 2 || !strings.Contains(roles[0], "user") || !strings.Contains(roles[1], "assistant") {
			t.Errorf("the imported messages are %q, want the user's then the assistant's", roles)
		}
		link := fmt.Sprintf(`#conversations a[data-id=%q][aria-current="page"]`, id)
		if err := chromedp.Do(ctx, chromedp.WaitReady(chromedp.CSS(link))); err != nil {
			t.Fatalf("the imported conversation is not listed as the open one: %v", err)
		}

		// The same session again: refused, with a link to what it became.
		err = chromedp.Do(ctx,
			chromedp.SetUploadFiles(chromedp.ID("import-file"), []string{file}),
			chromedp.WaitReady(chromedp.CSS(fmt.Sprintf(`#import-status[data-kind="error"] a[href="#/c/%s"]`, id))),
		)
		if err != nil {
			t.Fatalf("%v; the page says: %s", err, b.says("#import-status"))
		}
		// Too large: refused in the page. Plain letters, which JSON does
		// not escape: only the size refuses it.
		big := filepath.Join(t.TempDir(), session+".jsonl")
		if err := os.WriteFile(big, bytes.Repeat([]byte("a"), 5_000_001), 0o644); err != nil {
			t.Fatal(err)
		}
		err = chromedp.Do(ctx,
			chromedp.SetUploadFiles(chromedp.ID("import-file"), []string{big}),
			chromedp.WaitReady(chromedp.JSPath(`(() => {
				const s = document.getElementById("import-status");
				return s.dataset.kind === "error" && s.textContent.includes("too large") ? s : null;
			})()`)),
		)
		if err != nil {
			t.Fatalf("%v; the page says: %s", err, b.says("#import-status"))
		}
		if n := imports.count(); n != 2 {
			t.Errorf("the page sent POST /chat/import %d times, want 2 (the too large file never)", n)
		}
		// The browser logs the refused import, which the test asked for.
		b.console.forgive(ctx, t, func(p string) bool {
			return strings.Contains(p, "409 (Conflict)") && strings.Contains(p, "/chat/import")
		})
		b.console.seen(ctx, t)
	})
}

// hostile is Markdown and HTML a model or a transcript may hold, each
// piece of which would set window.pwned if it ran, or load something.
var hostile = strings.Join([]string{
	`<img src=x onerror="window.pwned='img'">`,
	`<script>window.pwned='script'</script>`,
	`<svg onload="window.pwned='svg'"><circle r="1"/></svg>`,
	`<iframe src="javascript:window.pwned='iframe'"></iframe>`,
	`<a href="javascript:window.pwned='a'">raw link</a>`,
	`<div style="background:url(https://example.com/x)" onclick="window.pwned='div'">styled</div>`,
	"[markdown link](javascript:window.pwned='md')",
	"[data link](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
	"![remote image](https://example.com/tracker.png)",
	"![local image](/web/nothing.png)",
	"![data image](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9ImFsZXJ0KDEpIi8+)",
	"<details open ontoggle=\"window.pwned='details'\"><summary>s</summary></details>",
	"```html\n<script>window.pwned='fence'</script>\n```",
}, "\n\n")

// hostileStep feeds hostile Markdown and HTML through the page's renderer,
// as an imported session's messages (the model's answer among them), and
// checks that nothing ran, nothing was loaded and no such element or
// attribute reached the page. The console check sees any CSP violation.
func hostileStep(t *testing.T, b *browserRun) bool {
	return t.Run("hostile markdown", func(t *testing.T) {
		ctx := b.step(t)
		file, _ := deskSession(t, "Hostile prompt\n\n"+hostile, "Hostile answer\n\n"+hostile)
		err := chromedp.Do(ctx,
			chromedp.SetUploadFiles(chromedp.ID("import-file"), []string{file}),
			chromedp.WaitReady(chromedp.JSPath(`(() => {
				const t = document.getElementById("transcript");
				return t.textContent.includes("Hostile answer") && t.querySelectorAll(".message").length === 2 ? t : null;
			})()`)),
		)
		if err != nil {
			t.Fatalf("%v; the page says: %s", err, b.says("#import-status", "#transcript"))
		}
		// Whatever would run on a click.
		if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`for (const el of document.querySelectorAll("#transcript *")) el.dispatchEvent(new Event("toggle")); undefined`)); err != nil {
			t.Fatal(err)
		}
		found, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`(() => {
			const out = [];
			if (window.pwned !== undefined) out.push("window.pwned = " + window.pwned);
			for (const el of document.querySelectorAll("#transcript *")) {
				if (/^(script|img|svg|iframe|object|embed|style|form|input|details|math|base|link|meta)$/i.test(el.localName)) out.push("<" + el.localName + ">");
				for (const a of el.attributes) {
					if (/^on/i.test(a.name) || a.name === "style" || a.name === "srcdoc") out.push(el.localName + " " + a.name);
					if (/^(href|src|action|xlink:href|formaction)$/i.test(a.name) && !/^(https?:|#)/i.test(a.value)) out.push(el.localName + " " + a.name + "=" + a.value);
				}
			}
			return out;
		})()`))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range found {
			t.Errorf("the page holds %s", f)
		}
		// The remote image is a link to it, its local sibling text.
		links, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#transcript .message.assistant a.image-link")].map(a => a.href + " " + a.textContent)`))
		if err != nil {
			t.Fatal(err)
		}
		if len(links) != 1 || links[0] != "https://example.com/tracker.png remote image" {
			t.Errorf("the assistant's image links are %q, want the remote image's alone", links)
		}
		// The raw HTML shows as the text it is.
		text, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS("#transcript .message.assistant")))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(text, `<script>window.pwned='script'</script>`) {
			t.Errorf("the answer does not show its raw HTML as text:\n%s", text)
		}
		b.console.seen(ctx, t)

		// Gone again: the steps that follow expect only benign conversations.
		defer acceptDialogs(ctx, t)()
		id := openConversation(ctx, t)
		err = chromedp.Do(ctx,
			chromedp.Click(chromedp.ID("delete-conversation")),
			chromedp.WaitNotPresent(chromedp.CSS(fmt.Sprintf(`#conversations a[data-id=%q]`, id))),
			chromedp.WaitNotPresent(chromedp.CSS("#transcript .message")),
		)
		if err != nil {
			t.Fatalf("%v; the page says: %s", err, b.says("#turn-status", "#conversations"))
		}
	})
}

// signOutRaceStep signs out while a refresh of the session is under way,
// its answer held back by the test until the page shows the sign-in: the
// answer, a valid session the server just made, must not be stored, and
// the server must refuse it, since the logout ended the whole session.
func signOutRaceStep(t *testing.T, b *browserRun, base string, stack devserver.Info) bool {
	return t.Run("sign out during a refresh", func(t *testing.T) {
		ctx := b.step(t)
		ensureSignedIn(ctx, t, b, stack.APIKey)
		held := holdRefresh(ctx, t, b)
		if held.ResponseStatusCode != http.StatusOK {
			t.Fatalf("POST /auth/refresh = %d", held.ResponseStatusCode)
		}
		body, err := chromedp.Call(ctx, fetch.GetResponseBody, fetch.GetResponseBodyParams{RequestID: held.RequestID})
		if err != nil {
			t.Fatal(err)
		}
		var grant struct {
			SessionToken string `json:"sessionToken"`
		}
		if err := json.Unmarshal(body.Body, &grant); err != nil || grant.SessionToken == "" {
			t.Fatalf("the refresh's answer %q (%v)", body.Body, err)
		}
		signOut(ctx, t, b, "signin-local")
		if _, err := chromedp.Call(ctx, fetch.ContinueResponse, fetch.ContinueResponseParams{RequestID: held.RequestID}); err != nil {
			t.Fatal(err)
		}
		// The refresh holds the session's lock to its end: once the test
		// gets the lock, the refresh has stored what it was going to.
		kept, err := chromedp.Run(ctx, chromedp.Evaluate[string](`navigator.locks.request("ovrlrd.session", () => localStorage.getItem("ovrlrd.session") || "")`, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatal(err)
		}
		if kept != "" {
			t.Errorf("after signing out, the refresh under way stored a session: %.60q", kept)
		}
		if status := apiJSON(ctx, t, base, stack.APIKey, grant.SessionToken, "/chat", nil); status != http.StatusUnauthorized {
			t.Errorf("GET /chat with the session the refresh made = %d, want 401", status)
		}
		b.console.seen(ctx, t)
	})
}

// deleteAccountStep signs in if the page shows the sign-in, deletes the
// account through its dialog, and checks that the page forgot the
// session, the server refuses it, and the same person signing in again,
// in another tab the first one follows, is a new user with nothing.
func deleteAccountStep(t *testing.T, b *browserRun, base string, stack devserver.Info) bool {
	return t.Run("delete account", func(t *testing.T) {
		ctx := b.step(t)
		ensureSignedIn(ctx, t, b, stack.APIKey)
		token := pageToken(ctx, t)
		user := pageUser(ctx, t)
		err := chromedp.Do(ctx,
			chromedp.WaitReady(chromedp.CSS("#conversations a[data-id]")),
			chromedp.Click(chromedp.ID("delete-account")),
			chromedp.WaitVisible(chromedp.ID("delete-account-word")),
		)
		if err != nil {
			t.Fatalf("%v; the page says: %s", err, b.says("body"))
		}
		axeDialog(ctx, t, "#delete-account-dialog")
		// Nothing but the word itself arms the button: not a stray Enter,
		// nor the word half typed.
		err = chromedp.Do(ctx,
			chromedp.SendKeys(chromedp.ID("delete-account-word"), "DELET\r"),
			chromedp.WaitReady(chromedp.CSS("#delete-account-confirm:disabled")),
		)
		if err != nil {
			t.Fatal(err)
		}
		// A submit would have said so at once, in the key's own event.
		if state, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("delete-account-dialog").open + " " + document.getElementById("delete-account-status").textContent`)); err != nil {
			t.Fatal(err)
		} else if state != "true " {
			t.Fatalf("after DELET and Enter the dialog (open, status) is %q: it went ahead", state)
		}
		if status := apiJSON(ctx, t, base, stack.APIKey, token, "/chat", nil); status != http.StatusOK {
			t.Fatalf("GET /chat before the word is typed = %d: the account went", status)
		}
		err = chromedp.Do(ctx,
			chromedp.SendKeys(chromedp.ID("delete-account-word"), "E"),
			chromedp.WaitReady(chromedp.CSS("#delete-account-confirm:enabled")),
			chromedp.Click(chromedp.ID("delete-account-confirm")),
			chromedp.WaitVisible(chromedp.ID("signin-local")),
			chromedp.WaitNotVisible(chromedp.ID("delete-account-dialog")),
		)
		if err != nil {
			t.Fatalf("%v; the page says: %s", err, b.says("#delete-account-status", "#signin-status"))
		}
		said, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("signin-status")))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(said, "deleted") {
			t.Errorf("the sign-in says %q, want that the account was deleted", said)
		}
		left, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Object.keys(localStorage).filter(k => k.startsWith("ovrlrd."))`))
		if err != nil {
			t.Fatal(err)
		}
		if len(left) > 0 {
			t.Errorf("localStorage still holds %v after the account was deleted", left)
		}
		if status := apiJSON(ctx, t, base, stack.APIKey, token, "/chat", nil); status != http.StatusUnauthorized {
			t.Errorf("GET /chat with the deleted account's session = %d, want 401", status)
		}

		// The same person signs in again, in a second tab: the first
		// follows, and shows a new account with no conversation.
		tab, closeTab := chromedp.NewContext(b.ctx)
		defer closeTab()
		tctx, cancel := context.WithTimeout(tab, stepTimeout)
		defer cancel()
		if err := chromedp.Do(tctx, chromedp.Navigate(base+"/web/")); err != nil {
			t.Fatal(err)
		}
		signInLocal(tctx, t, b, stack.APIKey)
		err = chromedp.Do(ctx,
			chromedp.WaitVisible(chromedp.ID("conversations")),
			chromedp.WaitReady(chromedp.JSPath(`(() => {
				const s = document.getElementById("conversations-status");
				return s.textContent.includes("No conversations") ? s : null;
			})()`)),
		)
		if err != nil {
			t.Fatalf("the first tab did not follow the sign-in of the second: %v; it says: %s", err, b.says("#signin-status", "#conversations-status"))
		}
		if again := pageUser(ctx, t); again == user {
			t.Errorf("signing in again after the deletion is user %s again, want a new user", user)
		}
		if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#conversations a[data-id]").length`)); err != nil || n != 0 {
			t.Errorf("the new account lists %d conversations (%v), want none", n, err)
		}
		b.console.seen(ctx, t)
	})
}

// axeDialog runs axe-core on the open dialog sel: no serious violation.
func axeDialog(ctx context.Context, t *testing.T, sel string) {
	t.Helper()
	root, err := devenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(filepath.Join(root, "web", "node_modules", "axe-core", "axe.min.js"))
	if err != nil {
		t.Fatalf("axe-core (%v): run `make web`", err)
	}
	// DevTools' evaluation is not held to the page's CSP.
	found, err := chromedp.Run(ctx, chromedp.Evaluate[axeResult](string(src)+fmt.Sprintf(`
		;axe.run(document.querySelector(%q)).then(r => ({
			passes: r.passes.length,
			serious: r.violations
				.filter(v => v.impact === "serious" || v.impact === "critical")
				.map(v => v.id + " (" + v.impact + "): " + v.nodes.map(n => n.target.join(" ")).slice(0, 5).join(", ")),
		}))`, sel), chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("axe.run: %v", err)
	}
	if found.Passes == 0 {
		t.Errorf("%s: axe passed no rule: it checked nothing", sel)
	}
	for _, v := range found.Serious {
		t.Errorf("%s: axe: %s", sel, v)
	}
}

// signInLocal signs in through the page's local sign-in, in the tab of ctx.
func signInLocal(ctx context.Context, t *testing.T, b *browserRun, key string) {
	t.Helper()
	err := chromedp.Do(ctx,
		chromedp.WaitVisible(chromedp.ID("signin-local")),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("api-key").value = ""`),
		chromedp.SendKeys(chromedp.ID("api-key"), key),
		chromedp.Click(chromedp.ID("signin-local")),
		chromedp.WaitVisible(chromedp.ID("conversations")),
	)
	if err != nil {
		t.Fatalf("signing in: %v; the page says: %s", err, b.says("#signin-status"))
	}
}

// pageUser is the user id of the session the page keeps.
func pageUser(ctx context.Context, t *testing.T) string {
	t.Helper()
	user, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.parse(localStorage.getItem("ovrlrd.session") || "{}").userId || ""`))
	if err != nil {
		t.Fatal(err)
	}
	if user == "" {
		t.Fatal("no user id in the session the page keeps")
	}
	return user
}

// apiJSON GETs path as the page's session, decoding a 2xx answer into
// out (if not nil); it returns the status.
func apiJSON(ctx context.Context, t *testing.T, base, key, token, path string, out any) int {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-API-Key", key)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode/100 == 2 {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
	}
	return resp.StatusCode
}

// deskSession writes a session as Claude Code keeps it at the desk, a
// prompt and its answer, to <session id>.jsonl, and returns the file and
// the session id.
func deskSession(t *testing.T, prompt, answer string) (file, session string) {
	t.Helper()
	session = uuid.NewString()
	user, reply := uuid.NewString(), uuid.NewString()
	at := time.Now().UTC().Add(-time.Hour)
	entry := func(id, parent, typ string, content any, at time.Time) string {
		e := map[string]any{
			"parentUuid": nil, "isSidechain": false, "type": typ, "uuid": id,
			"timestamp": at.Format("2006-01-02T15:04:05.000Z"), "cwd": "/srv/desk", "sessionId": session,
			"version": "2.1.197", "message": map[string]any{"role": typ, "content": content},
		}
		if parent != "" {
			e["parentUuid"] = parent
		}
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	lines := []string{
		entry(user, "", "user", prompt, at),
		entry(reply, user, "assistant", []any{map[string]any{"type": "text", "text": answer}}, at.Add(time.Second)),
	}
	file = filepath.Join(t.TempDir(), session+".jsonl")
	if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return file, session
}

// requestCount counts the page's requests of one method and path.
type requestCount struct {
	mu sync.Mutex
	n  int
}

func countRequests(ctx context.Context, method, path string) *requestCount {
	c := &requestCount{}
	requests := chromedp.Events(ctx, network.RequestWillBeSent)
	go func() {
		for e, err := range requests {
			if err != nil {
				return
			}
			if r := e.Request; r != nil && r.Method == method && strings.HasSuffix(strings.SplitN(r.URL, "?", 2)[0], path) {
				c.mu.Lock()
				c.n++
				c.mu.Unlock()
			}
		}
	}()
	return c
}

func (c *requestCount) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// signInAgainRaceStep holds a refresh of the first tab's session while a
// second tab signs out and in again: the refresh's answer, when it comes,
// must not replace the second tab's session, the one both tabs now keep.
func signInAgainRaceStep(t *testing.T, b *browserRun, base string, stack devserver.Info) bool {
	return t.Run("sign in again in another tab during a refresh", func(t *testing.T) {
		ctx := b.step(t)
		ensureSignedIn(ctx, t, b, stack.APIKey)
		tctx, closeTab := secondTab(ctx, t, b, base)
		defer closeTab()
		held := holdRefresh(ctx, t, b)
		signOut(tctx, t, b, "signin-local")
		signInLocal(tctx, t, b, stack.APIKey)
		token := pageToken(tctx, t)
		if _, err := chromedp.Call(ctx, fetch.ContinueResponse, fetch.ContinueResponseParams{RequestID: held.RequestID}); err != nil {
			t.Fatal(err)
		}
		// The refresh holds the session's lock to its end.
		kept, err := chromedp.Run(ctx, chromedp.Evaluate[string](`navigator.locks.request("ovrlrd.session", () => JSON.parse(localStorage.getItem("ovrlrd.session") || "{}").sessionToken || "")`, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatal(err)
		}
		if kept != token {
			t.Error("the refresh's answer replaced the session the second tab signed in with")
		}
		if status := apiJSON(ctx, t, base, stack.APIKey, kept, "/chat", nil); status != http.StatusOK {
			t.Errorf("GET /chat with the session kept = %d, want 200", status)
		}
		b.console.seen(ctx, t)
	})
}

// otherUserStep signs in as someone else in a second tab, while the first
// shows a conversation of the user signed in before: the first tab must
// show the new account, with nothing of the first user's left on it.
// Both tabs then sign in as the first user again, for the steps after.
func otherUserStep(t *testing.T, b *browserRun, base string, stack devserver.Info) bool {
	return t.Run("another user signs in in another tab", func(t *testing.T) {
		ctx := b.step(t)
		ensureSignedIn(ctx, t, b, stack.APIKey)
		first := pageUser(ctx, t)
		err := chromedp.Do(ctx,
			chromedp.WaitReady(chromedp.CSS("#conversations a[data-id]")),
			chromedp.Click(chromedp.CSS("#conversations a[data-id]")),
			chromedp.WaitReady(chromedp.CSS("#transcript > *")),
		)
		if err != nil {
			t.Fatalf("%v; the page says: %s", err, b.says("#conversations-status", "#transcript"))
		}
		ids, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#conversations a[data-id]")].map(a => a.dataset.id)`))
		if err != nil {
			t.Fatal(err)
		}
		tctx, closeTab := secondTab(ctx, t, b, base)
		defer closeTab()
		// Another name is another user; the session is stored as the
		// page's own sign-in stores it.
		other, err := chromedp.Run(tctx, chromedp.Evaluate[string](fmt.Sprintf(`(async () => {
			const key = localStorage.getItem("ovrlrd.apiKey");
			const nonce = crypto.randomUUID();
			const post = async (path, body) => {
				const res = await fetch(path, {method: "POST", headers: {"Content-Type": "application/json", "X-API-Key": key}, body: JSON.stringify(body)});
				if (!res.ok) throw new Error(path + ": " + res.status);
				return res.json();
			};
			const {identityToken} = await post("/web/dev/identity-token", {name: %q, nonce});
			const grant = await post("/auth", {identityToken, nonce});
			localStorage.setItem("ovrlrd.session", JSON.stringify({...grant, expiresAt: Date.now() + grant.expiresIn * 1000}));
			return grant.userId;
		})()`, "Another web user"), chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatal(err)
		}
		if other == "" || other == first {
			t.Fatalf("the second sign-in is user %q, want another than %q", other, first)
		}
		err = chromedp.Do(ctx, chromedp.WaitReady(chromedp.JSPath(`(() => {
			const s = document.getElementById("conversations-status");
			return s.textContent.includes("No conversations") ? s : null;
		})()`)))
		if err != nil {
			t.Fatalf("the first tab did not show the other account: %v; it says: %s", err, b.says("#conversations-status"))
		}
		type screen struct {
			Listed     []string `json:"listed"`
			Transcript int      `json:"transcript"`
			Hash       string   `json:"hash"`
		}
		left, err := chromedp.Run(ctx, chromedp.Evaluate[screen](`({
			listed: [...document.querySelectorAll("#conversations a[data-id]")].map(a => a.dataset.id),
			transcript: document.getElementById("transcript").childElementCount,
			hash: location.hash,
		})`))
		if err != nil {
			t.Fatal(err)
		}
		if len(left.Listed) > 0 {
			t.Errorf("the other account's page lists %v (the first user's: %v)", left.Listed, ids)
		}
		if left.Transcript != 0 {
			t.Errorf("the other account's page shows %d messages of the first user's", left.Transcript)
		}
		for _, id := range ids {
			if strings.Contains(left.Hash, id) {
				t.Errorf("the other account's page is at %q, a conversation of the first user's", left.Hash)
			}
		}
		// The first user again, in both tabs.
		signOut(tctx, t, b, "signin-local")
		signInLocal(tctx, t, b, stack.APIKey)
		if err := chromedp.Do(ctx, chromedp.WaitReady(chromedp.CSS("#conversations a[data-id]"))); err != nil {
			t.Fatalf("the first tab did not follow the first user back: %v; it says: %s", err, b.says("#signin-status", "#conversations-status"))
		}
		if again := pageUser(ctx, t); again != first {
			t.Fatalf("signed in again as user %s, want %s", again, first)
		}
		b.console.seen(ctx, t)
	})
}

// secondTab opens the page in a new tab of the browser, signed in as the
// first is: the tab's context ends with ctx or the returned func.
func secondTab(ctx context.Context, t *testing.T, b *browserRun, base string) (context.Context, func()) {
	t.Helper()
	tab, closeTab := chromedp.NewContext(b.ctx)
	deadline, _ := ctx.Deadline()
	tctx, cancel := context.WithDeadline(tab, deadline)
	done := func() { cancel(); closeTab() }
	err := chromedp.Do(tctx,
		chromedp.Navigate(base+"/web/"),
		chromedp.WaitReady(chromedp.CSS("#conversations a[data-id]")),
	)
	if err != nil {
		done()
		t.Fatalf("the second tab: %v", err)
	}
	return tctx, done
}

// ensureSignedIn signs the page in locally if it shows the sign-in.
func ensureSignedIn(ctx context.Context, t *testing.T, b *browserRun, apiKey string) {
	t.Helper()
	if signedOut, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`!document.getElementById("signin").hidden`)); err != nil {
		t.Fatal(err)
	} else if signedOut {
		signInLocal(ctx, t, b, apiKey)
	}
}

// signOut signs the page out and waits for the sign-in button waitFor (an
// element id).
func signOut(ctx context.Context, t *testing.T, b *browserRun, waitFor string) {
	t.Helper()
	err := chromedp.Do(ctx,
		chromedp.Click(chromedp.ID("signout")),
		chromedp.WaitVisible(chromedp.ID(waitFor)),
	)
	if err != nil {
		t.Fatalf("signing out: %v; the page says: %s", err, b.says("body"))
	}
}

// holdRefresh makes the page's next request find its session about to
// expire, and holds the answer of the refresh that follows, which the
// caller continues (fetch.ContinueResponse). Interception ends with the
// step.
func holdRefresh(ctx context.Context, t *testing.T, b *browserRun) *fetch.EventRequestPaused {
	t.Helper()
	pctx, stop := context.WithCancel(ctx)
	t.Cleanup(stop)
	paused := chromedp.Events(pctx, fetch.RequestPaused)
	if _, err := chromedp.Call(ctx, fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{{URLPattern: "*/auth/refresh", RequestStage: fetch.RequestStageResponse}}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = chromedp.Call(b.ctx, fetch.Disable, cdp.Empty{}) })
	err := chromedp.Do(ctx,
		chromedp.Evaluate[chromedp.Void](`(() => {
			const s = JSON.parse(localStorage.getItem("ovrlrd.session"));
			s.expiresAt = Date.now();
			localStorage.setItem("ovrlrd.session", JSON.stringify(s));
		})()`),
		chromedp.WaitReady(chromedp.CSS("#conversations a[data-id]")),
		chromedp.Click(chromedp.CSS("#conversations a[data-id]")),
	)
	if err != nil {
		t.Fatal(err)
	}
	for e, err := range paused {
		if err != nil {
			t.Fatalf("no refresh came: %v", err)
		}
		return &e
	}
	t.Fatal("no refresh came")
	return nil
}
