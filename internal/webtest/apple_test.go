package webtest

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/ovrlrd/cloud/internal/devkit/devserver"
)

// appleSteps sign in through the Sign in with Apple button, the way a
// deployed page signs in with Apple, against make dev's stand-in: the page
// leaves for the stand-in's authorization endpoint and comes back to /web/
// with the identity token in the URL's fragment. Before that, a sign-in
// that never came back, dropped by the next load, and two answers the page
// must refuse: one it never asked for, and one whose state was changed on
// the way back. Signed in, a stray answer leaves the app as it is, and the
// sign-out takes a project token typed but not sent. They run signed out,
// after the logout step, and end signed out: the steps after them use the
// local sign-in's account.
func appleSteps(t *testing.T, b *browserRun, base string, stack devserver.Info) bool {
	if !t.Run("apple: a sign-in that did not come back", func(t *testing.T) {
		ctx := b.step(t)
		// A sign-in left for Apple and never came back (Back, a reload):
		// the next load, with no answer in its URL, drops what it kept.
		err := chromedp.Do(ctx,
			chromedp.WaitVisible(chromedp.ID("signin-apple")),
			chromedp.Evaluate[chromedp.Void](`sessionStorage.setItem("ovrlrd.appleSignIn", JSON.stringify({state: "s", nonce: "n", key: "k"})); window.webtestOld = true; undefined`),
			chromedp.Navigate(base+"/web/"),
			chromedp.WaitVisible(chromedp.ID("signin-apple")),
		)
		if err != nil {
			t.Fatalf("%v; the page says: %s", err, b.says("#signin-status"))
		}
		if old, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.webtestOld === true`)); err != nil || old {
			t.Fatalf("the page was not loaded again (%v)", err)
		}
		noAnswerLeft(ctx, t)
		b.console.seen(ctx, t)
	}) {
		return false
	}

	if !t.Run("apple: an answer nobody asked for", func(t *testing.T) {
		ctx := b.step(t)
		err := chromedp.Do(ctx,
			chromedp.WaitVisible(chromedp.ID("signin-apple")),
			chromedp.Navigate(base+"/web/#code=c1&id_token=forged.identity.token&state=wrong"),
			chromedp.WaitReady(chromedp.JSPath(saysIn("signin-status", "No Sign in with Apple was started"))),
		)
		if err != nil {
			t.Fatalf("%v; the page says: %s", err, b.says("#signin-status"))
		}
		label, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("signin-apple")))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(label, "stand-in") || !strings.Contains(label, "not Apple") {
			t.Errorf("#signin-apple says %q, want it to say it is make dev's stand-in, not Apple", label)
		}
		noAnswerLeft(ctx, t)
		b.console.seen(ctx, t)
	}) {
		return false
	}

	if !t.Run("apple: a changed state", func(t *testing.T) {
		ctx := b.step(t)
		// The page's request to the stand-in is held and sent by the test,
		// and the stand-in's redirect back handed to the page with its
		// state changed, as by someone who hands the page an answer of
		// their own. (Chromium follows a redirect's own Location whatever
		// a response-stage interception answers.)
		paused := chromedp.Events(ctx, fetch.RequestPaused)
		_, err := chromedp.Call(ctx, fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{
			{URLPattern: "*" + "/auth/authorize?*", RequestStage: fetch.RequestStageRequest},
		}})
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			if _, err := chromedp.Call(b.ctx, fetch.Disable, cdp.Empty{}); err != nil {
				t.Errorf("Fetch.disable: %v", err)
			}
		}()
		err = chromedp.Do(ctx,
			clearKey,
			chromedp.SendKeys(chromedp.ID("api-key"), stack.APIKey),
			chromedp.Click(chromedp.ID("signin-apple")),
		)
		if err != nil {
			t.Fatal(err)
		}
		tampered := false
		for ev, err := range paused {
			if err != nil {
				t.Fatalf("waiting for the stand-in's answer: %v", err)
			}
			resp, err := noRedirects.Get(ev.Request.URL)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			location, ok := changeState(resp.Header.Get("Location"))
			if resp.StatusCode != http.StatusFound || !ok {
				t.Fatalf("the stand-in answered %d %q, want a redirect with a state", resp.StatusCode, resp.Header.Get("Location"))
			}
			if _, err := chromedp.Call(ctx, fetch.FulfillRequest, fetch.FulfillRequestParams{
				RequestID: ev.RequestID, ResponseCode: http.StatusFound,
				ResponseHeaders: []*fetch.HeaderEntry{{Name: "Location", Value: location}, {Name: "Cache-Control", Value: "no-store"}},
			}); err != nil {
				t.Fatal(err)
			}
			tampered = true
			break
		}
		if !tampered {
			t.Fatal("no answer from the stand-in")
		}
		// Whichever comes: the refusal, or (the defect) the app.
		err = chromedp.Do(ctx, chromedp.WaitReady(chromedp.JSPath(`(() => {
			const s = document.getElementById("signin-status");
			if (s && s.dataset.kind === "error" && s.textContent.includes("state")) return s;
			return document.getElementById("signin").hidden ? document.body : null;
		})()`)))
		if err != nil {
			t.Fatalf("%v; the page says: %s", err, b.says("#signin-status"))
		}
		said := b.says("#signin-status")
		if !strings.Contains(said, "state differs") {
			t.Fatalf("the answer with a changed state was not refused; the page says: %s", said)
		}
		noAnswerLeft(ctx, t)
		b.console.seen(ctx, t)
	}) {
		return false
	}

	return t.Run("apple: sign in", func(t *testing.T) {
		ctx := b.step(t)
		err := chromedp.Do(ctx,
			clearKey,
			chromedp.SendKeys(chromedp.ID("api-key"), stack.APIKey),
			chromedp.Click(chromedp.ID("signin-apple")),
			chromedp.WaitVisible(chromedp.ID("conversations")),
			chromedp.WaitVisible(chromedp.ID("message")),
		)
		if err != nil {
			t.Fatalf("%v; the page says: %s", err, b.says("#signin-status"))
		}
		stored, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]string](`({
			session: localStorage.getItem("ovrlrd.session") || "",
			key: localStorage.getItem("ovrlrd.apiKey") || "",
		})`))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(stored["session"], "sessionToken") {
			t.Errorf(`localStorage "ovrlrd.session" holds no session: %.80q`, stored["session"])
		}
		if stored["key"] != stack.APIKey {
			t.Error(`localStorage "ovrlrd.apiKey" does not hold the key typed`)
		}
		noAnswerLeft(ctx, t)

		// A stray answer while signed in (a link to /web/#state=…), into
		// the open page and into one that loads: refused, in the app.
		for _, load := range []bool{false, true} {
			if load {
				if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
					t.Fatal(err)
				}
			}
			err = chromedp.Do(ctx,
				chromedp.Navigate(base+"/web/#state=stray&id_token=stray.identity.token"),
				chromedp.WaitReady(chromedp.JSPath(`(() => {
					const s = document.getElementById("turn-status");
					return s && s.dataset.kind === "error" && s.textContent.includes("No Sign in with Apple was started") ? s : null;
				})()`)),
			)
			if err != nil {
				t.Fatalf("a stray answer (page loaded: %v): %v; the page says: %s", load, err, b.says("#turn-status", "#signin-status"))
			}
			shown, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]bool](`({
				signin: !document.getElementById("signin").hidden,
				chat: !document.getElementById("chat").hidden,
				session: (localStorage.getItem("ovrlrd.session") || "").includes("sessionToken"),
			})`))
			if err != nil {
				t.Fatal(err)
			}
			if shown["signin"] || !shown["chat"] {
				t.Errorf("after a stray answer (page loaded: %v) the sign-in shows: %v, the app: %v; want the app", load, shown["signin"], shown["chat"])
			}
			if !shown["session"] {
				t.Errorf("after a stray answer (page loaded: %v) localStorage holds no session", load)
			}
			noAnswerLeft(ctx, t)
		}

		// A token typed for a project but not sent goes with the session.
		err = chromedp.Do(ctx,
			chromedp.WaitVisible(chromedp.ID("message")),
			chromedp.Click(chromedp.ID("manage-projects")),
			chromedp.WaitVisible(chromedp.CSS("#projects-dialog[open] #project-token")),
			chromedp.SendKeys(chromedp.ID("project-token"), "typed-not-sent"),
			chromedp.KeyEvent(kb.Escape),
			chromedp.WaitNotPresent(chromedp.CSS("#projects-dialog[open]")),
		)
		if err != nil {
			t.Fatalf("%v; the page says: %s", err, b.says("#projects-status"))
		}
		typed, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("project-token").value`))
		if err != nil || typed != "typed-not-sent" {
			t.Fatalf("#project-token holds %q (%v) before signing out, want the token typed", typed, err)
		}
		signOut(ctx, t, b, "signin-apple")
		if left, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("project-token").value`)); err != nil || left != "" {
			t.Errorf("#project-token holds %q (%v) after signing out, want it empty", left, err)
		}
		b.console.seen(ctx, t)
	})
}

// clearKey empties the API key's field, which a step before may have
// filled.
var clearKey = chromedp.Evaluate[chromedp.Void](`document.getElementById("api-key").value = ""; undefined`)

// saysIn finds the status element id once it reports an error saying
// text.
func saysIn(id, text string) string {
	return `(() => {
		const s = document.getElementById(` + jsString(id) + `);
		return s && s.dataset.kind === "error" && s.textContent.includes(` + jsString(text) + `) ? s : null;
	})()`
}

func jsString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// noAnswerLeft checks that nothing of Apple's answer stays in the URL, and
// nothing of the sign-in in sessionStorage.
func noAnswerLeft(ctx context.Context, t *testing.T) {
	t.Helper()
	left, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]string](`({
		href: location.href,
		pending: sessionStorage.getItem("ovrlrd.appleSignIn") || "",
	})`))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"id_token", "code=", "state="} {
		if strings.Contains(left["href"], s) {
			t.Errorf("the URL still holds %q: %s", s, left["href"])
		}
	}
	if left["pending"] != "" {
		t.Errorf(`sessionStorage still holds the sign-in: %.40q`, left["pending"])
	}
}

// noRedirects shows the stand-in's redirect rather than following it.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// changeState returns location with its fragment's state changed, and
// whether it had one to change.
func changeState(location string) (string, bool) {
	page, fragment, _ := strings.Cut(location, "#")
	f, err := url.ParseQuery(fragment)
	if err != nil || f.Get("state") == "" {
		return "", false
	}
	f.Set("state", "someone-elses-"+f.Get("state"))
	return page + "#" + f.Encode(), true
}
