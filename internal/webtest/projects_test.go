package webtest

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/ovrlrd/cloud/internal/devkit/devserver"
)

// edited is the line the project conversation's turn appends to the demo
// repository's README: markup in it must show as text in the diff.
const edited = "Edited in the browser <b>not bold</b>"

// projectSteps are a conversation on make dev's demo project, as a person
// goes through it in the page: the project added in the Projects dialog (a
// wrong token first, refused with the server's message, then the API key,
// refused in the page and never sent), another added, renamed (the API key
// refused there too) and deleted; a new conversation on the project whose
// turn edits a file (the command approved from its card); its changes as a
// diff; and its branch pushed, which the git host must then hold. They
// return false when the steps after them cannot go on.
func projectSteps(t *testing.T, b *browserRun, root string, stack devserver.Info) bool {
	if stack.Git == nil {
		t.Error("make dev's stack has no git host (KMS_KEY_ID set?): no project to work on")
		return false
	}
	repoURL := stack.Git.URL("demo")
	var projectID, branch string

	if !t.Run("projects", func(t *testing.T) {
		ctx := b.step(t)
		sent := watchProjectRequests(ctx)
		err := chromedp.Do(ctx,
			chromedp.Click(chromedp.ID("manage-projects")),
			chromedp.WaitVisible(chromedp.CSS("#projects-dialog[open] #project-name")),
			chromedp.WaitReady(chromedp.CSS(`#projects-status[data-kind=""]`)),
			// A token the host refuses: the server's message, and no project.
			chromedp.SendKeys(chromedp.ID("project-name"), "demo"),
			chromedp.SendKeys(chromedp.ID("project-url"), repoURL),
			chromedp.SendKeys(chromedp.ID("project-token"), "not-the-token"),
			chromedp.Click(chromedp.ID("project-add")),
			chromedp.WaitReady(chromedp.CSS(`#projects-status[data-kind="error"]`)),
		)
		if err != nil {
			t.Fatalf("%v; the page says: %s", err, b.says("#projects-dialog"))
		}
		refused, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[document.getElementById("projects-status").textContent, String(document.querySelectorAll("#project-list li").length)]`))
		if err != nil {
			t.Fatal(err)
		}
		if refused[0] == "" || refused[1] != "0" {
			t.Errorf("a wrong token: status %q and %s projects listed, want the server's error and none", refused[0], refused[1])
		}
		t.Logf("a wrong token: %q", refused[0])
		b.console.failedOnPurpose(ctx, t, 400, "/projects")

		// The API key in the token field, as a password manager may offer
		// it: refused in the page, the field emptied; that nothing was sent
		// is checked on the requests at the end of the step.
		err = chromedp.Do(ctx,
			clearInput("project-token"),
			chromedp.SendKeys(chromedp.ID("project-token"), stack.APIKey),
			chromedp.Click(chromedp.ID("project-add")),
			chromedp.WaitReady(chromedp.JSPath(saysIn("projects-status", apiKeyRefused))),
		)
		if err != nil {
			t.Fatalf("the API key as a token: %v; the page says: %s", err, b.says("#projects-status"))
		}
		keyLeft(ctx, t, "project-token", 0)

		err = chromedp.Do(ctx,
			clearInput("project-token"),
			chromedp.SendKeys(chromedp.ID("project-token"), stack.GitToken),
			chromedp.Click(chromedp.ID("project-add")),
			chromedp.WaitReady(chromedp.JSPath(projectItem("demo"))),
		)
		if err != nil {
			t.Fatalf("%v; the page says: %s", err, b.says("#projects-dialog"))
		}
		projectID, err = chromedp.Run(ctx, chromedp.Evaluate[string](projectItem("demo")+`.dataset.id`))
		if err != nil || projectID == "" {
			t.Fatalf("the demo project's id: %q, %v", projectID, err)
		}

		// Another, renamed with a label, then deleted (confirm accepted).
		stop := acceptDialogs(ctx, t)
		defer stop()
		err = chromedp.Do(ctx,
			chromedp.SendKeys(chromedp.ID("project-name"), "demo-copy"),
			chromedp.SendKeys(chromedp.ID("project-url"), repoURL),
			chromedp.SendKeys(chromedp.ID("project-token"), stack.GitToken),
			chromedp.Click(chromedp.ID("project-add")),
			chromedp.WaitReady(chromedp.JSPath(projectItem("demo-copy"))),
			chromedp.Click(chromedp.JSPath(projectItem("demo-copy")+`.querySelector("button.edit")`)),
			chromedp.WaitVisible(chromedp.ID("project-edit-name")),
			// The API key as the new token: refused as in the add form.
			chromedp.SendKeys(chromedp.ID("project-edit-token"), stack.APIKey),
			chromedp.Click(chromedp.ID("project-save")),
			chromedp.WaitReady(chromedp.JSPath(saysIn("projects-status", apiKeyRefused))),
		)
		if err != nil {
			t.Fatalf("%v; the page says: %s", err, b.says("#projects-dialog"))
		}
		keyLeft(ctx, t, "project-edit-token", 2)
		err = chromedp.Do(ctx,
			chromedp.WaitVisible(chromedp.ID("project-edit-name")),
			clearInput("project-edit-name"),
			chromedp.SendKeys(chromedp.ID("project-edit-name"), "demo-renamed"),
			chromedp.SendKeys(chromedp.ID("project-edit-label"), "A copy"),
			chromedp.Click(chromedp.ID("project-save")),
			chromedp.WaitReady(chromedp.JSPath(`(() => {
				const li = `+projectItem("demo-renamed")+`;
				return li && li.querySelector(".project-label")?.textContent === "A copy" ? li : null;
			})()`)),
			chromedp.WaitNotPresent(chromedp.JSPath(projectItem("demo-copy"))),
			chromedp.Click(chromedp.JSPath(projectItem("demo-renamed")+`.querySelector("button.delete")`)),
			chromedp.WaitNotPresent(chromedp.JSPath(projectItem("demo-renamed"))),
			chromedp.WaitReady(chromedp.CSS(`#projects-status[data-kind="ok"]`)),
		)
		if err != nil {
			t.Fatalf("%v; the page says: %s", err, b.says("#projects-dialog"))
		}
		stop()
		noKeySent(t, sent, stack)

		screenshots(ctx, t, root, "web-projects", "#projects-dialog[open]")
		axeScreens(ctx, t, root, "the Projects dialog", "#projects-dialog[open]")

		// Escape closes it, and focus goes back to the button that opened it.
		err = chromedp.Do(ctx,
			chromedp.Focus(chromedp.ID("project-name")),
			chromedp.KeyEvent(kb.Escape),
			chromedp.WaitNotPresent(chromedp.CSS("#projects-dialog[open]")),
		)
		if err != nil {
			t.Fatal(err)
		}
		focused, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.activeElement?.id ?? ""`))
		if err != nil {
			t.Fatal(err)
		}
		if focused != "manage-projects" {
			t.Errorf("after Escape the focus is on %q, want #manage-projects", focused)
		}
		b.console.seen(ctx, t)
	}) {
		return false
	}

	if !t.Run("project conversation", func(t *testing.T) {
		ctx := b.step(t)
		option := fmt.Sprintf(`document.querySelector('#project-select option[value=%q]')`, projectID)
		err := chromedp.Do(ctx,
			chromedp.Click(chromedp.ID("new-conversation")),
			chromedp.WaitNotPresent(chromedp.CSS("#transcript .message")),
			chromedp.WaitVisible(chromedp.ID("project-select")),
			chromedp.WaitReady(chromedp.JSPath(option)),
			chromedp.SetValue(chromedp.ID("project-select"), projectID),
			chromedp.SendKeys(chromedp.ID("message"), "RUN: echo '"+edited+"' >> README.md"),
			chromedp.Click(chromedp.ID("send")),
			chromedp.WaitReady(chromedp.JSPath(`document.querySelector('#transcript section.approval[data-state="pending"] button.allow') || `+turnEnded)),
		)
		if err != nil {
			t.Fatalf("%v; the page says: %s", err, b.says("#turn-status", "#project-bar", "#transcript"))
		}
		allowIfAsked(ctx, t, b)
		// The conversation then shows its project and its own branch.
		err = chromedp.Do(ctx,
			chromedp.WaitReady(chromedp.JSPath(turnEnded)),
			chromedp.WaitVisible(chromedp.CSS("#project-info-text code")),
			chromedp.WaitReady(chromedp.JSPath(`(() => {
				const c = document.querySelector("#project-info-text code");
				return c && c.textContent.startsWith("ovrlrd/") ? c : null;
			})()`)),
		)
		if err != nil {
			t.Fatalf("%v; the page says: %s", err, b.says("#turn-status", "#project-bar", "#transcript"))
		}
		info, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[document.getElementById("project-info-text").textContent, document.querySelector("#project-info-text code").textContent]`))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(info[0], "demo") {
			t.Errorf("the project bar says %q, want the project's name", info[0])
		}
		branch = info[1]
		transcriptHas(ctx, t, "Done.")
		b.console.seen(ctx, t)
	}) {
		return false
	}

	if !t.Run("changes", func(t *testing.T) {
		ctx := b.step(t)
		err := chromedp.Do(ctx,
			chromedp.Click(chromedp.ID("show-changes")),
			chromedp.WaitVisible(chromedp.CSS("#changes-dialog[open] #changes-diff .line")),
		)
		if err != nil {
			t.Fatalf("%v; the page says: %s", err, b.says("#project-status", "#changes-dialog"))
		}
		type diffShown struct {
			Added  []string `json:"added"`
			Files  string   `json:"files"`
			Markup int      `json:"markup"`
		}
		got, err := chromedp.Run(ctx, chromedp.Evaluate[diffShown](`({
			added: [...document.querySelectorAll("#changes-diff .line.add")].map(l => l.textContent),
			files: document.getElementById("changes-files").textContent,
			markup: document.querySelectorAll("#changes-diff *:not(span.line)").length,
		})`))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(got.Files, "README.md") {
			t.Errorf("the changed files are %q, want README.md among them", got.Files)
		}
		want := "+" + edited + "\n"
		found := false
		for _, line := range got.Added {
			found = found || line == want
		}
		if !found {
			t.Errorf("the diff's added lines are %q, want %q among them", got.Added, want)
		}
		if got.Markup != 0 {
			t.Errorf("the diff holds %d elements besides its lines: markup from the repository became HTML", got.Markup)
		}
		screenshots(ctx, t, root, "web-changes", "#changes-dialog[open]")
		axeScreens(ctx, t, root, "the Changes dialog", "#changes-dialog[open]")
		err = chromedp.Do(ctx,
			chromedp.Click(chromedp.CSS("#changes-dialog button.close-dialog")),
			chromedp.WaitNotPresent(chromedp.CSS("#changes-dialog[open]")),
		)
		if err != nil {
			t.Fatal(err)
		}
		b.console.seen(ctx, t)
	}) {
		return false
	}

	return t.Run("push", func(t *testing.T) {
		ctx := b.step(t)
		err := chromedp.Do(ctx,
			chromedp.Click(chromedp.ID("push-branch")),
			chromedp.WaitReady(chromedp.CSS(`#project-status[data-kind="ok"], #project-status[data-kind="error"]`)),
		)
		if err != nil {
			t.Fatalf("%v; the page says: %s", err, b.says("#project-bar"))
		}
		said, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[document.getElementById("project-status").dataset.kind, document.getElementById("project-status").textContent]`))
		if err != nil {
			t.Fatal(err)
		}
		if said[0] != "ok" || !strings.Contains(said[1], "Pushed branch "+branch) {
			t.Errorf("after Push the page says %q (%s), want %q", said[1], said[0], "Pushed branch "+branch)
		}
		// What the host holds: the branch with the edit, main without it.
		readme, err := stack.Git.ReadFile("demo", branch, "README.md")
		if err != nil {
			t.Fatalf("the git host has no README.md on %s: %v", branch, err)
		}
		if !strings.Contains(readme, edited) {
			t.Errorf("README.md on the pushed %s is %q, want the edit", branch, readme)
		}
		if main, err := stack.Git.ReadFile("demo", "main", "README.md"); err != nil || strings.Contains(main, edited) {
			t.Errorf("README.md on main: %q, %v; want it unchanged", main, err)
		}
		b.console.seen(ctx, t)
	})
}

// apiKeyRefused is what the Projects dialog says of the API key typed as
// a repository's token.
const apiKeyRefused = "API key, not a token of the repository host"

// keyLeft checks that the token field id was emptied and the list of
// projects still lists as many as before.
func keyLeft(ctx context.Context, t *testing.T, id string, listed int) {
	t.Helper()
	left, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](fmt.Sprintf(`[document.getElementById(%q).value, String(document.querySelectorAll("#project-list li").length)]`, id)))
	if err != nil {
		t.Fatal(err)
	}
	if left[0] != "" {
		t.Errorf("#%s still holds %d characters after the API key was refused, want it empty", id, len(left[0]))
	}
	if left[1] != fmt.Sprint(listed) {
		t.Errorf("after the API key was refused in #%s, %s projects are listed, want %d", id, left[1], listed)
	}
}

// sentRequest is one of the page's requests: its method, path and body.
type sentRequest struct{ method, path, body string }

// watchProjectRequests passes on the page's requests to /projects and
// /projects/{id}, with their bodies, in the order the page sends them,
// until ctx ends.
func watchProjectRequests(ctx context.Context) <-chan sentRequest {
	out := make(chan sentRequest, 64)
	requests := chromedp.Events(ctx, network.RequestWillBeSent)
	go func() {
		defer close(out)
		for e, err := range requests {
			if err != nil {
				return
			}
			r := e.Request
			if r == nil {
				continue
			}
			u, err := url.Parse(r.URL)
			if err != nil || !(strings.HasSuffix(u.Path, "/projects") || strings.Contains(u.Path, "/projects/")) {
				continue
			}
			s := sentRequest{method: r.Method, path: u.Path}
			for _, p := range r.PostDataEntries {
				s.body += string(p.Bytes)
			}
			if r.HasPostData && s.body == "" {
				if got, err := chromedp.Call(ctx, network.GetRequestPostData, network.GetRequestPostDataParams{RequestID: e.RequestID}); err == nil {
					s.body = string(got.PostData)
				}
			}
			select {
			case out <- s:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// noKeySent reads the projects step's requests up to its DELETE, the last
// it sends: none may carry the API key. The git token in one of them shows
// the bodies were read.
func noKeySent(t *testing.T, sent <-chan sentRequest, stack devserver.Info) {
	t.Helper()
	tokenSeen, deleted := false, false
	for r := range sent {
		if strings.Contains(r.body, stack.APIKey) {
			t.Errorf("%s %s carried the API key in its body", r.method, r.path)
		}
		tokenSeen = tokenSeen || (r.method == http.MethodPost && strings.Contains(r.body, stack.GitToken))
		if r.method == http.MethodDelete {
			deleted = true
			break
		}
	}
	if !deleted {
		t.Fatal("the page's DELETE of the project was not seen among its requests")
	}
	if !tokenSeen {
		t.Error("no POST /projects body seen held the git token: the requests' bodies were not read")
	}
}

// projectItem finds the Projects dialog's entry of the project named name.
func projectItem(name string) string {
	return fmt.Sprintf(`([...document.querySelectorAll("#project-list li")].find(li => li.querySelector(".project-name")?.textContent === %q) ?? null)`, name)
}

// clearInput empties the input whose id is id.
func clearInput(id string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.getElementById(%q).value = ""; undefined`, id))
}

// failedOnPurpose takes off the console the browser's report of a request
// the step made fail (status, on path): the console step would count it as
// the page's error. It fails the step if there is no such report.
func (c *console) failedOnPurpose(ctx context.Context, t *testing.T, status int, path string) {
	t.Helper()
	failed := fmt.Sprintf("status of %d ", status)
	if c.forgive(ctx, t, func(p string) bool { return strings.Contains(p, failed) && strings.Contains(p, path+":") }) == 0 {
		t.Errorf("the console reported no failed load of %s with status %d", path, status)
	}
}

// acceptDialogs accepts every window.confirm until stop is called.
func acceptDialogs(ctx context.Context, t *testing.T) (stop func()) {
	dctx, cancel := context.WithCancel(ctx)
	dialogs := chromedp.Events(dctx, page.JavascriptDialogOpening)
	go func() {
		for _, err := range dialogs {
			if err != nil {
				return
			}
			if _, err := chromedp.Call(dctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true}); err != nil && dctx.Err() == nil {
				t.Errorf("accepting the dialog: %v", err)
			}
		}
	}()
	return cancel
}

// screens are the sizes and colour schemes the dialogs are checked in.
var screens = []struct {
	name          string
	width, height int64
	opts          []chromedp.EmulateViewportOption
	dark          bool
}{
	{"phone", 390, 844, []chromedp.EmulateViewportOption{chromedp.EmulatePortrait, chromedp.EmulateMobile, chromedp.EmulateTouch}, false},
	{"desktop", 1280, 800, nil, false},
	{"dark", 1280, 800, nil, true},
}

// emulate sizes the page as s, in s's colour scheme, and waits until
// visible is.
func emulate(ctx context.Context, s int, visible string) error {
	scheme := "light"
	if screens[s].dark {
		scheme = "dark"
	}
	media := emulation.SetEmulatedMediaParams{Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}}
	if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, media); err != nil {
		return err
	}
	return chromedp.Do(ctx, chromedp.EmulateViewport(screens[s].width, screens[s].height, screens[s].opts...), chromedp.WaitVisible(chromedp.CSS(visible)))
}

// screenshots saves build/screenshots/<prefix>-<screen>.png of each
// screen with the element visible, checking the page does not scroll
// sideways; the light desktop stays.
func screenshots(ctx context.Context, t *testing.T, root, prefix, visible string) {
	t.Helper()
	dir := filepath.Join(root, "build", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	defer restore(ctx, t)
	for i, s := range screens {
		if err := emulate(ctx, i, visible); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		wide, err := chromedp.Run(ctx, chromedp.Evaluate[int64](`document.documentElement.scrollWidth`))
		if err != nil {
			t.Fatal(err)
		}
		if wide > s.width {
			t.Errorf("%s: the page is %d pixels wide: it scrolls sideways", s.name, wide)
		}
		png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, prefix+"-"+s.name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// axeScreens runs axe-core on the page on each screen: no serious or
// critical violation; the light desktop stays.
func axeScreens(ctx context.Context, t *testing.T, root, what, visible string) {
	t.Helper()
	loaded, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`typeof axe === "object"`))
	if err != nil {
		t.Fatal(err)
	}
	if !loaded {
		src, err := os.ReadFile(filepath.Join(root, "web", "node_modules", "axe-core", "axe.min.js"))
		if err != nil {
			t.Fatalf("axe-core (%v): run `make web`", err)
		}
		// DevTools' evaluation is not held to the page's CSP.
		if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](string(src)+"\n;undefined")); err != nil {
			t.Fatalf("injecting axe-core: %v", err)
		}
	}
	defer restore(ctx, t)
	for i, s := range screens {
		if err := emulate(ctx, i, visible); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		found, err := chromedp.Run(ctx, chromedp.Evaluate[axeResult](axeRun, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("%s, %s: axe.run: %v", what, s.name, err)
		}
		if found.Passes == 0 {
			t.Errorf("%s, %s: axe passed no rule: it checked nothing", what, s.name)
		}
		for _, v := range found.Serious {
			t.Errorf("%s, %s: axe: %s", what, s.name, v)
		}
	}
}

// restore puts the page back as the other steps expect it: the desktop
// size, the system's colour scheme.
func restore(ctx context.Context, t *testing.T) {
	t.Helper()
	if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{}); err != nil {
		t.Error(err)
	}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Error(err)
	}
}
