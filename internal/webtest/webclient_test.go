package webtest

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/ovrlrd/cloud/internal/devkit/devenv"
	"github.com/ovrlrd/cloud/internal/devkit/devserver"
	"github.com/ovrlrd/cloud/internal/devkit/sandboxtest"
	"github.com/ovrlrd/cloud/internal/web"
)

// stepTimeout bounds each step; the stack's start (a JVM among others)
// gets startTimeout.
const (
	stepTimeout  = 30 * time.Second
	startTimeout = 60 * time.Second
)

// The web client, end to end, as a person uses it: one stack (make dev's,
// in process) and one browser for the whole run, steps in order, each
// waiting on what the page shows, never on the clock.
func TestWebClient(t *testing.T) {
	browser := chromium(t)
	root, err := devenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	webDir := filepath.Join(root, "build", "web")
	if _, err := os.Stat(filepath.Join(webDir, "index.html")); err != nil {
		t.Fatalf("the web client is not built (%v): run `make web`", err)
	}
	began := time.Now()
	stack := startStack(t, root, webDir)
	t.Logf("stack serving after %v", time.Since(began).Round(time.Millisecond))
	b := startBrowser(t, browser)
	t.Logf("browser started after %v", time.Since(began).Round(time.Millisecond))
	// The browser reaches the stack through a proxy that the network drop
	// step cuts.
	proxy := newCutProxy(t, stack.Addr)
	base := "http://" + proxy.addr

	// Each step builds on the one before: the first that fails ends them.
	func() {
		if !t.Run("open", func(t *testing.T) {
			ctx := b.step(t)
			resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(base+"/web/"))
			if err != nil {
				t.Fatal(err)
			}
			if resp.Status != 200 {
				t.Fatalf("GET /web/ = %d", resp.Status)
			}
			// The CSP above all, which the rest of the run holds the page to.
			for name, want := range web.SecurityHeaders() {
				if got := header(resp.Headers, name); got != want {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
			if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.ID("api-key")), chromedp.WaitVisible(chromedp.ID("signin-local"))); err != nil {
				t.Fatalf("%v; the page says: %s", err, b.says("body"))
			}
			label, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("signin-local")))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(label, "Local sign-in") {
				t.Errorf("#signin-local says %q, want it to name the local sign-in", label)
			}
			b.console.seen(ctx, t)
		}) {
			return // the steps that follow build on this one
		}

		if !t.Run("sign in", func(t *testing.T) {
			ctx := b.step(t)
			err := chromedp.Do(ctx,
				chromedp.SendKeys(chromedp.ID("api-key"), stack.APIKey),
				chromedp.Click(chromedp.ID("signin-local")),
				chromedp.WaitVisible(chromedp.ID("conversations")),
				chromedp.WaitVisible(chromedp.ID("message")),
			)
			if err != nil {
				t.Fatalf("%v; the page says: %s", err, b.says("#signin-status"))
			}
			session, err := chromedp.Run(ctx, chromedp.Evaluate[string](`localStorage.getItem("ovrlrd.session") || ""`))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(session, "sessionToken") {
				t.Errorf(`localStorage "ovrlrd.session" holds no session: %.80q`, session)
			}
			b.console.seen(ctx, t)
		}) {
			return // the steps that follow build on this one
		}

		if !t.Run("send", func(t *testing.T) {
			ctx := b.step(t)
			err := chromedp.Do(ctx,
				chromedp.SendKeys(chromedp.ID("message"), "What is in this folder?"),
				chromedp.Click(chromedp.ID("send")),
				chromedp.WaitVisible(chromedp.CSS("#transcript .message.user")),
				// An answer that has ended: text in it, and no message of the
				// turn still streaming.
				chromedp.WaitReady(chromedp.JSPath(`(() => {
					const t = document.getElementById("transcript");
					if (!t || t.querySelector('.message.assistant[aria-busy="true"]')) return null;
					const done = [...t.querySelectorAll(".message.assistant")].filter(m => m.textContent.trim() !== "");
					return done.length ? done[done.length - 1] : null;
				})()`)),
				chromedp.WaitReady(chromedp.CSS("#conversations a[data-id]")),
			)
			if err != nil {
				t.Fatalf("%v; the page says: %s", err, b.says("#turn-status", "#transcript"))
			}
			transcriptHas(ctx, t, "offline demo model")
			tools, err := chromedp.Run(ctx, chromedp.AttributesAll(chromedp.CSSAll("#transcript .tool")))
			if err != nil {
				t.Fatal(err)
			}
			if len(tools) == 0 || tools[len(tools)-1]["data-state"] != "end" {
				t.Errorf("tool lines %v, want one that ended (data-state=end)", tools)
			}
			b.console.seen(ctx, t)
		}) {
			return // the steps that follow build on this one
		}

		if !t.Run("screenshots", func(t *testing.T) {
			ctx := b.step(t)
			dir := filepath.Join(root, "build", "screenshots")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for _, s := range []struct {
				name          string
				width, height int64
				opts          []chromedp.EmulateViewportOption
			}{
				{"web-phone.png", 390, 844, []chromedp.EmulateViewportOption{chromedp.EmulatePortrait, chromedp.EmulateMobile, chromedp.EmulateTouch}},
				{"web-desktop.png", 1280, 800, nil},
			} {
				err := chromedp.Do(ctx, chromedp.EmulateViewport(s.width, s.height, s.opts...), chromedp.WaitVisible(chromedp.ID("message")))
				if err != nil {
					t.Fatalf("%dx%d: %v", s.width, s.height, err)
				}
				wide, err := chromedp.Run(ctx, chromedp.Evaluate[int64](`document.documentElement.scrollWidth`))
				if err != nil {
					t.Fatal(err)
				}
				if wide > s.width {
					t.Errorf("%dx%d: the page is %d pixels wide: it scrolls sideways", s.width, s.height, wide)
				}
				png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, s.name), png, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			b.console.seen(ctx, t)
		}) {
			return // the steps that follow build on this one
		}

		if !t.Run("live approval", func(t *testing.T) {
			ctx := b.step(t)
			err := chromedp.Do(ctx,
				chromedp.Click(chromedp.ID("new-conversation")),
				chromedp.WaitNotPresent(chromedp.CSS("#transcript .message")),
				chromedp.SendKeys(chromedp.ID("message"), "RUN: echo approved-in-browser > out.txt; cat out.txt"),
				chromedp.Click(chromedp.ID("send")),
				chromedp.WaitVisible(chromedp.CSS(`#transcript section.approval[data-state="pending"] button.allow`)),
				chromedp.Click(chromedp.CSS(`#transcript section.approval[data-state="pending"] button.allow`)),
				chromedp.WaitReady(chromedp.JSPath(turnEnded)),
			)
			if err != nil {
				t.Fatalf("%v; the page says: %s", err, b.says("#turn-status", "#transcript"))
			}
			transcriptHas(ctx, t, "Done.")
			state, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("#transcript section.approval")?.dataset.state ?? "(none)"`))
			if err != nil {
				t.Fatal(err)
			}
			if state != "allow" {
				t.Errorf("the approval card's data-state = %q, want allow", state)
			}
			png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
			if err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(root, "build", "screenshots")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "web-approval.png"), png, 0o644); err != nil {
				t.Fatal(err)
			}
			b.console.seen(ctx, t)
		}) {
			return // the steps that follow build on this one
		}

		if !importStep(t, b) || !hostileStep(t, b) || !networkDropStep(t, b, proxy, stack) || !usageStep(t, b, stack) {
			return // the steps that follow build on these
		}

		if !t.Run("cancel", func(t *testing.T) {
			// The step's timeout, well under the command's 30 s, is the
			// check that the cancel ended the turn.
			ctx, cancel := context.WithTimeout(b.step(t), 20*time.Second)
			defer cancel()
			// The command may need approval (the CLI lets some run without):
			// allow it if asked. The newest turn's tool line is the one past
			// those of the turns before.
			before, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#transcript .tool").length`))
			if err != nil {
				t.Fatal(err)
			}
			running := fmt.Sprintf(`(() => {
				const tools = document.querySelectorAll("#transcript .tool");
				const tool = tools.length > %d ? tools[tools.length - 1] : null;
				return tool && tool.dataset.state === "start" && !document.querySelector('#transcript section.approval[data-state="pending"]') ? tool : null;
			})()`, before)
			err = chromedp.Do(ctx,
				chromedp.SendKeys(chromedp.ID("message"), "RUN: sleep 30 > /dev/null"),
				chromedp.Click(chromedp.ID("send")),
				chromedp.WaitReady(chromedp.JSPath(`document.querySelector('#transcript section.approval[data-state="pending"] button.allow') || `+running)),
			)
			if err != nil {
				t.Fatalf("%v; the page says: %s", err, b.says("#turn-status", "#transcript"))
			}
			allowIfAsked(ctx, t, b)
			err = chromedp.Do(ctx,
				chromedp.WaitReady(chromedp.JSPath(running)),
				chromedp.WaitVisible(chromedp.ID("cancel")),
				chromedp.Click(chromedp.ID("cancel")),
				chromedp.WaitReady(chromedp.JSPath(`(() => {
					const n = [...document.querySelectorAll("#transcript p.notice")].pop();
					return n && n.textContent.includes("Cancelled") && !document.querySelector('#transcript [aria-busy="true"]') ? n : null;
				})()`)),
			)
			if err != nil {
				t.Fatalf("%v; the page says: %s", err, b.says("#turn-status", "#transcript"))
			}
			b.console.seen(ctx, t)
		}) {
			return // the steps that follow build on this one
		}

		if !projectSteps(t, b, root, stack) {
			return // the steps that follow build on this one
		}

		if !t.Run("delete", func(t *testing.T) {
			ctx := b.step(t)
			id := openConversation(ctx, t)
			// window.confirm asks first: accept it.
			defer acceptDialogs(ctx, t)()
			link := fmt.Sprintf(`#conversations a[data-id=%q]`, id)
			err := chromedp.Do(ctx,
				chromedp.WaitReady(chromedp.CSS(link)),
				chromedp.Click(chromedp.ID("delete-conversation")),
				chromedp.WaitNotPresent(chromedp.CSS(link)),
			)
			if err != nil {
				t.Fatalf("%v; the page says: %s", err, b.says("#turn-status", "#conversations"))
			}
			b.console.seen(ctx, t)
		}) {
			return // the steps that follow build on this one
		}

		if !t.Run("axe", func(t *testing.T) {
			ctx := b.step(t)
			src, err := os.ReadFile(filepath.Join(root, "web", "node_modules", "axe-core", "axe.min.js"))
			if err != nil {
				t.Fatalf("axe-core (%v): run `make web`", err)
			}
			// A conversation with messages in it: the first step's.
			err = chromedp.Do(ctx,
				chromedp.Click(chromedp.CSS("#conversations a[data-id]")),
				chromedp.WaitVisible(chromedp.CSS("#transcript .message.assistant")),
			)
			if err != nil {
				t.Fatalf("%v; the page says: %s", err, b.says("#turn-status", "#transcript"))
			}
			// DevTools' evaluation is not held to the page's CSP.
			if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](string(src)+"\n;undefined")); err != nil {
				t.Fatalf("injecting axe-core: %v", err)
			}
			for _, s := range []struct {
				name          string
				width, height int64
				opts          []chromedp.EmulateViewportOption
			}{
				{"phone", 390, 844, []chromedp.EmulateViewportOption{chromedp.EmulatePortrait, chromedp.EmulateMobile, chromedp.EmulateTouch}},
				{"desktop", 1280, 800, nil},
			} {
				if err := chromedp.Do(ctx, chromedp.EmulateViewport(s.width, s.height, s.opts...), chromedp.WaitVisible(chromedp.ID("message"))); err != nil {
					t.Fatalf("%s: %v", s.name, err)
				}
				found, err := chromedp.Run(ctx, chromedp.Evaluate[axeResult](axeRun, chromedp.EvalAwaitPromise))
				if err != nil {
					t.Fatalf("%s: axe.run: %v", s.name, err)
				}
				if found.Passes == 0 {
					t.Errorf("%s: axe passed no rule: it checked nothing", s.name)
				}
				for _, v := range found.Serious {
					t.Errorf("%s: axe: %s", s.name, v)
				}
			}
			b.console.seen(ctx, t)
		}) {
			return // the steps that follow build on this one
		}

		if !t.Run("logout", func(t *testing.T) {
			ctx := b.step(t)
			token := pageToken(ctx, t)
			signOut(ctx, t, b, "signin-local")
			left, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Object.keys(localStorage).filter(k => k === "ovrlrd.session" || /token/i.test(k) || /sessionToken/.test(localStorage.getItem(k) || ""))`))
			if err != nil {
				t.Fatal(err)
			}
			if len(left) > 0 {
				t.Errorf("localStorage still holds %v after signing out", left)
			}
			if status := apiJSON(ctx, t, base, stack.APIKey, token, "/chat", nil); status != http.StatusUnauthorized {
				t.Errorf("GET /chat with the signed-out session = %d, want 401", status)
			}
			b.console.seen(ctx, t)
		}) {
			return // the steps that follow build on this one
		}

		if !appleSteps(t, b, base, stack) {
			return // the steps that follow build on this one
		}

		// The last: it deletes the account the steps before used.
		if signOutRaceStep(t, b, base, stack) && signInAgainRaceStep(t, b, base, stack) && otherUserStep(t, b, base, stack) {
			deleteAccountStep(t, b, base, stack)
		}
	}()

	// Whatever the page or the browser reported, over the whole run.
	t.Run("console", func(t *testing.T) {
		b.console.seen(b.step(t), t)
		for _, p := range b.console.all() {
			t.Errorf("console: %s", p)
		}
	})
}

// chromium finds the browser: OVRLRD_CHROMIUM, Debian's chromium, one on
// PATH, or Chrome where macOS installs it.
func chromium(t *testing.T) string {
	t.Helper()
	if os.Getenv("OVRLRD_WEB_TESTS") == "skip" {
		t.Skip("OVRLRD_WEB_TESTS=skip")
	}
	if p := os.Getenv("OVRLRD_CHROMIUM"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("OVRLRD_CHROMIUM names no browser: %v", err)
		}
		return p
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if runtime.GOOS == "darwin" {
		for _, p := range []string{
			"/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
			"/Applications/Chromium.app/Contents/MacOS/Chromium",
		} {
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	t.Fatal("no Chromium or Chrome found: run `make deps` (Debian/Ubuntu), install Chrome, or set OVRLRD_CHROMIUM; OVRLRD_WEB_TESTS=skip skips these tests")
	return ""
}

// startStack runs make dev's stack in process on free ports, over a data
// folder of its own, serving webDir. Only what is set here reaches it:
// with no Claude credential the real CLI answers through the offline demo
// model, whatever the developer's environment holds.
func startStack(t *testing.T, root, webDir string) devserver.Info {
	t.Helper()
	cli := filepath.Join(root, "node_modules", ".bin", "claude")
	if _, err := os.Stat(cli); err != nil {
		t.Fatalf("the Claude Code CLI (%v): run `make deps`", err)
	}
	env := map[string]string{
		"LISTEN_ADDR":       "127.0.0.1:0",
		"DEV_DATA_DIR":      sandboxtest.Dir(t),
		"DEV_DYNAMODB_PORT": "0",
		"DEV_S3_PORT":       "0",
		"DEV_GIT_PORT":      "0",
		"WEB_DIR":           webDir,
		"CLAUDE_PATH":       cli,
	}
	ctx, cancel := context.WithCancel(context.Background())
	out := &devenv.Buffer{}
	ready := make(chan devserver.Info, 1)
	done := make(chan error, 1)
	go func() {
		done <- devserver.Run(ctx, devserver.Options{
			Getenv: func(k string) string { return env[k] },
			Out:    out,
			Ready:  func(i devserver.Info) { ready <- i },
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("dev server: %v", err)
		}
		if t.Failed() {
			t.Logf("dev server's output:\n%s", out.String())
		}
	})
	select {
	case info := <-ready:
		return info
	case err := <-done:
		done <- err
		t.Fatalf("dev server stopped before serving: %v\n%s", err, out.String())
	case <-time.After(startTimeout):
		t.Fatalf("dev server not serving after %v:\n%s", startTimeout, out.String())
	}
	return devserver.Info{}
}

// browserRun is the one browser of the run: its first tab, and what its
// console said.
type browserRun struct {
	ctx     context.Context // the tab; no deadline: it ends with the browser
	console *console
}

// startBrowser starts a headless browser with a fresh profile, a script in
// every page that reports CSP violations to the console, and a reader of
// the console.
func startBrowser(t *testing.T, path string) *browserRun {
	t.Helper()
	output := &devenv.Buffer{}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox, // go test may run as root
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-proxy-server", true), // the page talks to loopback only
		chromedp.WindowSize(1280, 800),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.CombinedOutput(output),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	// Before the profile folder goes: the browser has stopped writing it.
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
		if t.Failed() {
			t.Logf("browser's output (its end):\n%s", tail(output.String(), 30))
		}
	})
	// The first Run starts the browser and ties it to ctx, which must not
	// have a deadline; the wait for it has one.
	started := make(chan error, 1)
	go func() {
		started <- chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tgt *chromedp.Target) error {
			_, err := cdp.Call(ctx, tgt, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: reportViolations})
			return err
		}))
	}()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("starting %s: %v\n%s", path, err, output.String())
		}
	case <-time.After(stepTimeout):
		t.Fatalf("%s did not start in %v:\n%s", path, stepTimeout, output.String())
	}
	return &browserRun{ctx: ctx, console: readConsole(ctx)}
}

// step is a context for one step's actions, in the browser's tab.
func (b *browserRun) step(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	t.Cleanup(cancel)
	return ctx
}

// says is the text of the elements the selectors find, for a failure's
// message: the step's own context may have ended.
func (b *browserRun) says(selectors ...string) string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	var parts []string
	for _, sel := range selectors {
		text, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf("document.querySelector(%q)?.innerText ?? %q", sel, "(none)")))
		if err != nil {
			text = err.Error()
		}
		parts = append(parts, fmt.Sprintf("%s %q", sel, strings.TrimSpace(text)))
	}
	return strings.Join(parts, ", ")
}

// reportViolations runs in every page before its own scripts (DevTools
// puts it there; the page's CSP does not apply to it): each CSP violation
// becomes a console error, besides what the browser itself logs.
const reportViolations = `document.addEventListener("securitypolicyviolation", e =>
	console.error("CSP violation: " + e.violatedDirective + " blocked " + (e.blockedURI || "inline") + " at " + e.sourceFile + ":" + e.lineNumber));`

// syncMark starts the console messages seen writes to know the reader
// has seen everything logged before them.
const syncMark = "webtest: sync "

// console collects what a tab's console says: console.error and
// console.assert calls, exceptions nothing caught, and the browser's own
// warnings and errors (failed loads, CSP violations).
type console struct {
	mu       sync.Mutex
	problems []string
	seenUpTo int // how many of them seen has logged
	synced   chan string
	n        int // sync marks written
}

func readConsole(ctx context.Context) *console {
	c := &console{synced: make(chan string, 1)}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleDebug && strings.HasPrefix(m.Text, syncMark) {
				select {
				case c.synced <- m.Text:
				case <-ctx.Done():
					return
				}
				continue
			}
			if !problem(m) {
				continue
			}
			text := m.String()
			if m.URL != "" {
				text += fmt.Sprintf(" (%s:%d)", m.URL, m.Line+1)
			}
			c.mu.Lock()
			c.problems = append(c.problems, text)
			c.mu.Unlock()
		}
	}()
	return c
}

func problem(m chromedp.ConsoleMessage) bool {
	switch {
	case m.IsException(), m.Type == chromedp.ConsoleError, m.Type == "assert":
		return true
	case m.Source != "": // the browser's log
		return m.Type == chromedp.ConsoleWarning
	}
	return false
}

// sync waits until the reader has read everything the page logged before
// now.
func (c *console) sync(ctx context.Context, t *testing.T) {
	t.Helper()
	c.n++
	mark := fmt.Sprintf("%s%d", syncMark, c.n)
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](fmt.Sprintf("console.debug(%q)", mark))); err != nil {
		t.Fatal(err)
	}
	for got := ""; got != mark; {
		select {
		case got = <-c.synced:
		case <-ctx.Done():
			t.Fatalf("the console reader did not see %q: %v", mark, ctx.Err())
		}
	}
}

// seen waits until the reader has read everything the page logged before
// now, and logs the problems among it, with the step that saw them.
func (c *console) seen(ctx context.Context, t *testing.T) {
	t.Helper()
	c.sync(ctx, t)
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.problems[c.seenUpTo:] {
		c.problems[c.seenUpTo+i] = t.Name() + ": " + c.problems[c.seenUpTo+i]
		t.Logf("console: %s", c.problems[c.seenUpTo+i])
	}
	c.seenUpTo = len(c.problems)
}

// all is every problem so far.
func (c *console) all() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.problems)
}

// header is a response header, whatever case the browser reports its name in.
func header(h map[string]any, name string) string {
	for k, v := range h {
		if strings.EqualFold(k, name) {
			s, _ := v.(string)
			return s
		}
	}
	return ""
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// turnEnded finds the newest assistant message once no message of the
// turn is still streaming.
const turnEnded = `(() => {
	const t = document.getElementById("transcript");
	if (!t || t.querySelector('[aria-busy="true"]')) return null;
	const done = [...t.querySelectorAll(".message.assistant")].filter(m => m.textContent.trim() !== "");
	return done.length ? done[done.length - 1] : null;
})()`

// axeRun runs axe-core on the page and keeps what axeResult holds.
const axeRun = `axe.run(document).then(r => ({
	passes: r.passes.length,
	serious: r.violations
		.filter(v => v.impact === "serious" || v.impact === "critical")
		.map(v => v.id + " (" + v.impact + "): " + v.nodes.map(n => n.target.join(" ")).slice(0, 5).join(", ")),
}))`

// axeResult is what the axe step keeps of axe.run's answer: how many rules
// passed, and the serious or critical violations.
type axeResult struct {
	Passes  int      `json:"passes"`
	Serious []string `json:"serious"`
}
