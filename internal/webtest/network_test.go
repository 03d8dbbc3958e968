package webtest

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/ovrlrd/cloud/internal/devkit/devserver"
	"github.com/ovrlrd/cloud/internal/devkit/ssetest"
)

// networkDropStep cuts the page's network while a turn's answer streams,
// lets the turn end while the page is offline, then gives the network back:
// the page must take the turn up with Last-Event-ID and show each of its
// events once.
func networkDropStep(t *testing.T, b *browserRun, proxy *cutProxy, stack devserver.Info) bool {
	return t.Run("network drop", func(t *testing.T) {
		ctx := b.step(t)
		direct := "http://" + stack.Addr
		hold := newHold(t)
		streams := watchStreams(ctx)
		err := chromedp.Do(ctx,
			chromedp.Click(chromedp.ID("new-conversation")),
			chromedp.WaitNotPresent(chromedp.CSS("#transcript .message")),
			chromedp.SendKeys(chromedp.ID("message"), "RUN: curl -sS --noproxy '*' "+hold.url),
			chromedp.Click(chromedp.ID("send")),
		)
		if err != nil {
			t.Fatalf("%v; the page says: %s", err, b.says("#turn-status", "#transcript"))
		}
		// The CLI may run curl without asking: allow it if asked, until the
		// command runs, holding the turn until the test releases it.
		allowing, stopAllowing := context.WithCancel(ctx)
		allowed := make(chan error, 1)
		go func() {
			pending := chromedp.CSS(`#transcript section.approval[data-state="pending"] button.allow`)
			allowed <- chromedp.Do(allowing, chromedp.WaitVisible(pending), chromedp.Click(pending))
		}()
		select {
		case <-hold.arrived:
		case <-ctx.Done():
			t.Fatalf("the command never reached the test's server; the page says: %s", b.says("#turn-status", "#transcript"))
		}
		stopAllowing()
		t.Logf("the command asked for approval: %v", <-allowed == nil)
		id, token := openConversation(ctx, t), pageToken(ctx, t)

		// Offline, the browser sends nothing more; but Chromium's emulation
		// leaves a response already streaming alone (measured with Chromium
		// 156: the stream went on), so the proxy cuts what is open.
		setOffline(ctx, t, true)
		offline := true
		defer func() {
			if offline {
				setOffline(b.ctx, t, false)
			}
		}()
		if n := proxy.cut(); n == 0 {
			t.Fatal("the proxy had no connection of the browser's to cut")
		}
		// The stream in flight must break: the page says it reconnects.
		err = chromedp.Do(ctx, chromedp.WaitReady(chromedp.JSPath(`(() => {
			const s = document.getElementById("turn-status");
			return s.textContent.includes("Reconnecting") ? s : null;
		})()`)))
		if err != nil {
			t.Fatalf("the stream did not break offline (%v); the page says: %s", err, b.says("#turn-status"))
		}
		// The turn ends while the page is offline: a stream of the test's
		// own, from the turn's start, reads every event up to its end.
		type read struct {
			events []event
			err    error
		}
		reading := make(chan read, 1)
		began := make(chan struct{})
		go func() {
			events, err := turnEvents(ctx, direct, stack.APIKey, token, id, began)
			reading <- read{events, err}
		}()
		var r read
		select {
		case <-began:
			close(hold.release)
			r = <-reading
		case r = <-reading:
			if r.err == nil {
				r.err = fmt.Errorf("the turn's stream gave nothing")
			}
		}
		if r.err != nil {
			t.Fatal(r.err)
		}
		events := r.events
		setOffline(ctx, t, false)
		offline = false

		err = chromedp.Do(ctx, chromedp.WaitReady(chromedp.JSPath(turnEnded)))
		if err != nil {
			t.Fatalf("%v; the page says: %s", err, b.says("#turn-status", "#transcript"))
		}
		// The answer as the turn said it: each segment its chunks, or the
		// whole text its segment_end carries.
		want := map[string]int{}
		var text strings.Builder
		segment := ""
		for _, e := range events {
			want[e.Type]++
			switch e.Type {
			case "chunk":
				segment += e.Content
			case "segment_end":
				text.WriteString(cmp.Or(e.Content, segment))
				segment = ""
			}
		}
		text.WriteString(segment)
		if want["tool_start"] == 0 || want["complete"] != 1 {
			t.Fatalf("the turn's events %v: want a tool call and a complete", want)
		}
		got, err := chromedp.Run(ctx, chromedp.Evaluate[shown](`(() => {
			const t = document.getElementById("transcript");
			return {
				tools: t.querySelectorAll(".tool").length,
				toolsEnded: t.querySelectorAll('.tool[data-state="end"]').length,
				approvals: t.querySelectorAll("section.approval").length,
				answer: [...t.querySelectorAll(".message.assistant")].map(m => m.textContent.trim()).filter(Boolean),
				errors: [...t.querySelectorAll(".notice")].map(n => n.textContent),
			};
		})()`))
		if err != nil {
			t.Fatal(err)
		}
		if got.Tools != want["tool_start"] || got.ToolsEnded != got.Tools {
			t.Errorf("the page shows %d tool lines, %d ended; the turn started %d tools", got.Tools, got.ToolsEnded, want["tool_start"])
		}
		if got.Approvals != want["permission_request"] {
			t.Errorf("the page shows %d approval cards; the turn asked %d times", got.Approvals, want["permission_request"])
		}
		if answer := strings.Join(got.Answer, ""); answer != strings.TrimSpace(text.String()) {
			t.Errorf("the page shows the answer %q; the turn said %q", got.Answer, text.String())
		}
		if len(got.Errors) > 0 {
			t.Errorf("the page shows notices %q", got.Errors)
		}
		// The page took the turn up where it broke off, not from its start.
		resumed := streams.resumed(id)
		if len(resumed) == 0 {
			t.Errorf("the page never sent GET /chat/%s/stream with Last-Event-ID after the drop", id)
		}
		for _, last := range resumed {
			if !strings.Contains(last, ".") {
				t.Errorf("Last-Event-ID %q is not an event id <turn>.<n>", last)
			}
		}
		// What the cut and going offline made the browser log about the
		// turn's streams is the test's doing.
		b.console.forgive(ctx, t, func(p string) bool {
			return strings.Contains(p, "/stream") &&
				(strings.Contains(p, "net::ERR_INTERNET_DISCONNECTED") || strings.Contains(p, "net::ERR_INCOMPLETE_CHUNKED_ENCODING"))
		})
		b.console.seen(ctx, t)
	})
}

// shown is what the page shows of a turn.
type shown struct {
	Tools      int      `json:"tools"`
	ToolsEnded int      `json:"toolsEnded"`
	Approvals  int      `json:"approvals"`
	Answer     []string `json:"answer"`
	Errors     []string `json:"errors"`
}

// hold is a loopback server whose one route answers only once released:
// a command that asks it holds the turn it runs in.
type hold struct {
	url     string
	arrived chan struct{} // closed when the command asked
	release chan struct{} // closed by the test
}

func newHold(t *testing.T) *hold {
	h := &hold{arrived: make(chan struct{}), release: make(chan struct{})}
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() { close(h.arrived) })
		select {
		case <-h.release:
			fmt.Fprintln(w, "released")
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() {
		// A step that failed before releasing the command.
		select {
		case <-h.release:
		default:
			close(h.release)
		}
		srv.Close()
	})
	h.url = srv.URL + "/hold"
	return h
}

// cutProxy passes the browser's TCP connections through to the stack,
// and cuts every one of them on demand.
type cutProxy struct {
	addr  string
	mu    sync.Mutex
	conns map[net.Conn]bool
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{addr: ln.Addr().String(), conns: map[net.Conn]bool{}}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { p.pass(c, target) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		p.cut()
		wg.Wait()
	})
	return p
}

// pass copies both ways between c and a connection to target until
// either side ends, then ends both.
func (p *cutProxy) pass(c net.Conn, target string) {
	defer c.Close()
	s, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	defer s.Close()
	p.mu.Lock()
	p.conns[c], p.conns[s] = true, true
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.conns, c)
		delete(p.conns, s)
		p.mu.Unlock()
	}()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(s, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, s); done <- struct{}{} }()
	<-done
}

// cut closes every connection open through the proxy, and says how many
// of the browser's there were.
func (p *cutProxy) cut() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
	n := len(p.conns) / 2
	p.conns = map[net.Conn]bool{}
	return n
}

// setOffline cuts the page's network, or gives it back: every request, and
// navigator.onLine.
func setOffline(ctx context.Context, t *testing.T, offline bool) {
	t.Helper()
	rules := []*network.Conditions{}
	if offline {
		rules = append(rules, &network.Conditions{Offline: true, DownloadThroughput: -1, UploadThroughput: -1})
	}
	_, err := chromedp.Call(ctx, network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{MatchedNetworkConditions: rules})
	if err == nil {
		_, err = chromedp.Call(ctx, network.OverrideNetworkState, network.OverrideNetworkStateParams{
			Offline: offline, DownloadThroughput: -1, UploadThroughput: -1,
		})
	}
	if err != nil {
		t.Fatalf("network offline=%v: %v", offline, err)
	}
}

// streamLog is what the page asked of GET /chat/{id}/stream.
type streamLog struct {
	mu   sync.Mutex
	last map[string][]string // conversation id → the Last-Event-ID of each request
}

func watchStreams(ctx context.Context) *streamLog {
	l := &streamLog{last: map[string][]string{}}
	requests := chromedp.Events(ctx, network.RequestWillBeSent)
	go func() {
		for e, err := range requests {
			if err != nil {
				return
			}
			r := e.Request
			if r == nil || r.Method != http.MethodGet {
				continue
			}
			path, _, _ := strings.Cut(r.URL, "?")
			rest, ok := strings.CutSuffix(path, "/stream")
			if !ok || !strings.Contains(rest, "/chat/") {
				continue
			}
			id := rest[strings.LastIndex(rest, "/")+1:]
			last := ""
			for k, v := range r.Headers {
				if strings.EqualFold(k, "Last-Event-ID") {
					last, _ = v.(string)
				}
			}
			l.mu.Lock()
			l.last[id] = append(l.last[id], last)
			l.mu.Unlock()
		}
	}()
	return l
}

// resumed is the Last-Event-ID of each request for conversation id that
// carried one.
func (l *streamLog) resumed(id string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, last := range l.last[id] {
		if last != "" {
			out = append(out, last)
		}
	}
	return out
}

// event is one event of a turn's stream.
type event struct {
	Type    string `json:"type"`
	Content string `json:"content"`
}

// turnEvents reads conversation id's running turn from its start to its
// terminal event; began is closed once the first event is read.
func turnEvents(ctx context.Context, base, key, token, id string, began chan<- struct{}) ([]event, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/chat/"+id+"/stream", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("X-API-Key", key)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("GET /chat/%s/stream = %d %s", id, resp.StatusCode, body)
	}
	var out []event
	for r := ssetest.NewReader(resp.Body); ; {
		data, err := r.Next()
		if err != nil {
			return nil, fmt.Errorf("the stream ended before the turn did (%v): %v", err, out)
		}
		// Not ssetest.DecodeData: the stream also carries the web client's
		// permission_request, a type the app's decoder refuses.
		var e event
		if err := json.Unmarshal(data, &e); err != nil {
			return nil, fmt.Errorf("event %s: %w", data, err)
		}
		if len(out) == 0 {
			close(began)
		}
		out = append(out, e)
		switch e.Type {
		case "complete", "no_response", "permission_required", "error":
			return out, nil
		}
	}
}

// openConversation is the id of the conversation the page shows.
func openConversation(ctx context.Context, t *testing.T) string {
	t.Helper()
	id, err := chromedp.Run(ctx, chromedp.Evaluate[string](`decodeURIComponent((location.hash.match(/^#\/c\/(.+)$/) || [])[1] || "")`))
	if err != nil {
		t.Fatal(err)
	}
	if id == "" {
		t.Fatal("the page shows no conversation of its own (no #/c/<id>)")
	}
	return id
}

// transcriptHas checks that the transcript's text holds want.
func transcriptHas(ctx context.Context, t *testing.T, want string) {
	t.Helper()
	text, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS("#transcript")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text, want) {
		t.Errorf("the transcript holds no %q:\n%s", want, text)
	}
}

// allowIfAsked allows the turn's pending approval card if the page shows
// one: the CLI runs some commands without asking.
func allowIfAsked(ctx context.Context, t *testing.T, b *browserRun) {
	t.Helper()
	asked, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`!!document.querySelector('#transcript section.approval[data-state="pending"] button.allow')`))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the command asked for approval: %v", asked)
	if !asked {
		return
	}
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`#transcript section.approval[data-state="pending"] button.allow`)),
		chromedp.WaitReady(chromedp.JSPath(`[...document.querySelectorAll("#transcript section.approval")].filter(c => c.dataset.state === "allow").pop() ?? null`)),
	)
	if err != nil {
		t.Fatalf("%v; the page says: %s", err, b.says("#turn-status", "#transcript"))
	}
}

// pageToken is the session token the page keeps.
func pageToken(ctx context.Context, t *testing.T) string {
	t.Helper()
	token, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.parse(localStorage.getItem("ovrlrd.session") || "{}").sessionToken || ""`))
	if err != nil {
		t.Fatal(err)
	}
	if token == "" {
		t.Fatal("no session token in localStorage")
	}
	return token
}

// forgive drops the problems logged so far, not yet seen, that match:
// those the test itself caused. It returns how many it dropped.
func (c *console) forgive(ctx context.Context, t *testing.T, match func(string) bool) int {
	t.Helper()
	c.sync(ctx, t)
	c.mu.Lock()
	defer c.mu.Unlock()
	kept := c.problems[:c.seenUpTo]
	for _, p := range c.problems[c.seenUpTo:] {
		if !match(p) {
			kept = append(kept, p)
		}
	}
	dropped := len(c.problems) - len(kept)
	c.problems = kept
	return dropped
}
