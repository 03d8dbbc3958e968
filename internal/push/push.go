// Package push tells a user's phones that an answer is ready or that a
// tool call waits for their approval, through APNs with token
// authentication (sideshow/apns2). A push never fails a turn:
// it is retried within its deadline when APNs surely does not have it, a
// dead device token is removed, and whatever still fails is logged.
package push

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/sideshow/apns2"
	"github.com/sideshow/apns2/token"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

// Devices are a user's registered phones.
type Devices interface {
	Devices(ctx context.Context, userID string) ([]ovrlrd.Device, error)
	DeleteDevice(ctx context.Context, userID, token string) error
}

// Config is APNs token authentication.
type Config struct {
	KeyPEM []byte // the .p8 key
	KeyID  string
	TeamID string
	Topic  string // the app's bundle id
	// Host replaces both of Apple's hosts (a loopback stand-in in tests).
	Host string
}

// Notifier sends pushes.
type Notifier struct {
	devices Devices
	topic   string
	clients map[ovrlrd.Environment]*apns2.Client
	log     *slog.Logger
}

// Timings; variables so tests can shorten them.
var (
	attempts    = 3
	backoff     = 250 * time.Millisecond
	sendTimeout = 5 * time.Second // one request; apns2's own default is a minute
)

// New returns a Notifier. The token is signed lazily and cached by apns2,
// whose Token is safe for concurrent use.
func New(devices Devices, cfg Config, log *slog.Logger) (*Notifier, error) {
	key, err := token.AuthKeyFromBytes(cfg.KeyPEM)
	if err != nil {
		return nil, fmt.Errorf("push: APNs key: %w", err)
	}
	tok := &token.Token{AuthKey: key, KeyID: cfg.KeyID, TeamID: cfg.TeamID}
	client := func(host string) *apns2.Client {
		c := apns2.NewTokenClient(tok)
		c.Host = cmp.Or(cfg.Host, host)
		c.HTTPClient.Timeout = sendTimeout
		return c
	}
	return &Notifier{
		devices: devices,
		topic:   cfg.Topic,
		clients: map[ovrlrd.Environment]*apns2.Client{
			ovrlrd.EnvSandbox:    client(apns2.HostDevelopment),
			ovrlrd.EnvProduction: client(apns2.HostProduction),
		},
		log: log,
	}, nil
}

// Message is what a push says.
type Message struct {
	ConversationID string
	Title          string
	Segments       []string
	// TurnID names the turn the push announces; every push of one turn
	// carries the same collapse id, so the phone shows a duplicate once.
	TurnID string
}

// Notify pushes m to every device of userID, in parallel, within ctx.
func (n *Notifier) Notify(ctx context.Context, userID string, m Message) {
	n.fanOut(ctx, userID, notice{payload: Payload(m), collapse: collapseID(m.TurnID)})
}

// notice is one push as every device of its user gets it.
type notice struct {
	payload  []byte
	collapse string
	// expires, when set, is when APNs stops trying to deliver it; unset,
	// APNs keeps it for an offline phone as long as its own policy allows.
	expires time.Time
}

// fanOut sends p to every device of userID, in parallel, within ctx.
func (n *Notifier) fanOut(ctx context.Context, userID string, p notice) {
	devs, err := n.devices.Devices(ctx, userID)
	if err != nil {
		n.log.ErrorContext(ctx, "push: list devices", "err", err)
		return
	}
	var wg sync.WaitGroup
	for _, d := range devs {
		wg.Go(func() { n.send(ctx, d, p) })
	}
	wg.Wait()
}

// collapseID is a hash of the id of what a push announces (a turn, an
// approval request) rather than the id itself: the turn id is the run
// lease's holder token, which has no business leaving the service, and no
// id is put in a header that does not need it. 32 hex characters stay well
// within APNs's 64-byte limit, whatever the id's length.
func collapseID(id string) string {
	if id == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:16])
}

func (n *Notifier) send(ctx context.Context, d ovrlrd.Device, p notice) {
	// An unknown environment is taken for production.
	client := cmp.Or(n.clients[d.Environment], n.clients[ovrlrd.EnvProduction])
	note := &apns2.Notification{
		DeviceToken: d.Token,
		Topic:       n.topic,
		PushType:    apns2.PushTypeAlert,
		Priority:    apns2.PriorityHigh,
		Payload:     p.payload,
		CollapseID:  p.collapse,
		Expiration:  p.expires,
	}
	var last error
retries:
	for i := 0; i < attempts; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				break retries
			case <-time.After(backoff << (i - 1)):
			}
		}
		resp, sent, err := sendOnce(ctx, client, note)
		switch {
		case err != nil && sent:
			// APNs may have accepted it and only the answer was lost (a
			// timeout, a reset): sending again could show it twice.
			n.log.ErrorContext(ctx, "push: not retried, APNs may have it", "err", err)
			return
		case err != nil:
			last = err
		case resp.Sent():
			return
		case resp.StatusCode == http.StatusGone || resp.Reason == apns2.ReasonBadDeviceToken ||
			resp.Reason == apns2.ReasonUnregistered || resp.Reason == apns2.ReasonDeviceTokenNotForTopic:
			// The phone is gone or the token was never valid: stop pushing to it.
			if err := n.devices.DeleteDevice(context.WithoutCancel(ctx), d.UserID, d.Token); err != nil && !ovrlrd.IsCode(err, ovrlrd.ENOTFOUND) {
				n.log.ErrorContext(ctx, "push: remove dead device", "err", err)
			}
			n.log.InfoContext(ctx, "push: device removed", "status", resp.StatusCode, "reason", resp.Reason)
			return
		case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
			last = fmt.Errorf("APNs answered %d %s", resp.StatusCode, resp.Reason)
		default:
			n.log.ErrorContext(ctx, "push: refused", "status", resp.StatusCode, "reason", resp.Reason)
			return
		}
	}
	n.log.ErrorContext(ctx, "push: gave up", "attempts", attempts, "err", last)
}

// sendOnce sends one request and says whether any of it left for APNs. The
// trace marks the moment the HTTP/2 stream's headers are handed to the
// connection (apns2 passes ctx on to the request): before it, a failure is
// a dial, a TLS handshake or a connection that was never usable, so APNs
// cannot have the notification. From then on APNs may have all of it even
// if a later write fails, so WroteHeaders rather than WroteRequest is the
// line, and WroteRequest counts too in case a transport skips the first.
func sendOnce(ctx context.Context, client *apns2.Client, note *apns2.Notification) (*apns2.Response, bool, error) {
	var sent atomic.Bool
	trace := &httptrace.ClientTrace{
		WroteHeaders: func() { sent.Store(true) },
		WroteRequest: func(httptrace.WroteRequestInfo) { sent.Store(true) },
	}
	resp, err := client.PushWithContext(httptrace.WithClientTrace(ctx, trace), note)
	return resp, sent.Load(), err
}

// Payload is the notification the app expects (contract §5): a fixed
// title, a preview of the answer, and the conversation to open.
func Payload(m Message) []byte {
	body := cmp.Or(preview(m.Segments), m.Title, "Your response is ready")
	b, _ := json.Marshal(map[string]any{ // maps of strings always encode
		"aps": map[string]any{
			"alert":     map[string]string{"title": "New response from Claude", "body": body},
			"sound":     "default",
			"thread-id": m.ConversationID,
		},
		"conversationId": m.ConversationID,
		"type":           "message_ready",
	})
	return b
}

// preview is the answer's text, cut to 150 characters.
func preview(segments []string) string {
	return clip(strings.TrimSpace(ovrlrd.JoinSegments(segments)), 150)
}

// clip cuts s to at most n characters, on a character boundary, the last
// of them "…" when anything was cut.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return ovrlrd.ClipRunes(s, n-1) + "…"
}
