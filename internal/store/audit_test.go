package store_test

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/ovrlrd/cloud/internal/devkit/storetest"
	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

func TestPutAudit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)
	uid := rand.Text()
	at := time.Now().Truncate(time.Millisecond).UTC()
	const retention = 90 * 24 * time.Hour
	ev := ovrlrd.AuditEvent{
		Action: "session.reuse", UserID: uid, IPHash: "9f86d081884c7d65", UserAgent: "Ovrlrd/1.0 iOS",
		Reason: "refresh token reused", Time: at,
	}
	if err := s.PutAudit(ctx, ev, retention); err != nil {
		t.Fatal(err)
	}

	got, err := storetest.AuditEvents(ctx, uid, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != ev {
		t.Fatalf("events %+v, want [%+v]", got, ev)
	}

	var raw struct {
		TTL    int64  `dynamo:"ttl"`
		IPHash string `dynamo:"ipHash"`
	}
	err = storetest.DB().Table(storetest.TableName()).Get("PK", "AUDIT#"+uid).Limit(1).Consistent(true).One(ctx, &raw)
	if err != nil {
		t.Fatal(err)
	}
	if raw.TTL != at.Add(retention).Unix() || raw.IPHash != ev.IPHash {
		t.Fatalf("stored ttl=%d ipHash=%q, want ttl=%d", raw.TTL, raw.IPHash, at.Add(retention).Unix())
	}
}

func TestAuditEventsByAddressNewestFirst(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)
	ipHash := rand.Text()
	// On a whole second, so RFC3339Nano would write "06Z" and "06.5Z" and
	// a string sort would put them in the wrong order.
	base := time.Now().Truncate(time.Second).UTC()
	for _, at := range []time.Time{base.Add(time.Second), base, base.Add(1500 * time.Millisecond)} {
		ev := ovrlrd.AuditEvent{Action: "signin.failed", IPHash: ipHash, Time: at}
		if err := s.PutAudit(ctx, ev, time.Hour); err != nil {
			t.Fatal(err)
		}
	}

	got, err := storetest.AuditEvents(ctx, "ip:"+ipHash, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !got[0].Time.Equal(base.Add(1500*time.Millisecond)) || !got[1].Time.Equal(base.Add(time.Second)) {
		t.Fatalf("events %+v, want the two newest, newest first", got)
	}
	if got[0].UserID != "" || got[0].IPHash != ipHash {
		t.Fatalf("event %+v", got[0])
	}
	expectCode(t, s.PutAudit(ctx, ovrlrd.AuditEvent{Action: "x"}, time.Hour), ovrlrd.EINVALID)
}
