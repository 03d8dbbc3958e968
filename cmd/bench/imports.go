package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

const mImport = "import of a 5 000-message session"

// importRuns is how many sessions the import phase imports.
const importRuns = 3

// imports times POST /chat/import of sessions of as many messages as an
// import may hold by default, each sent inline: the parse, the messages'
// batches, the transcript's save and the transaction that shows it. The
// HTTP API waits 30 s for the function's answer.
func (b *bench) imports(ctx context.Context) error {
	n, runs := 5000, importRuns
	if b.o.quick {
		n, runs = 500, 1
	}
	var lat samples
	size := 0
	for range runs {
		id := uuid.NewString()
		data := syntheticSession(id, n)
		size = len(data)
		body, err := json.Marshal(map[string]string{"sessionId": id, "transcript": data})
		if err != nil {
			return err
		}
		start := time.Now()
		status, answer, err := b.s.Call(ctx, "POST", "/chat/import", string(body), b.token)
		if err != nil {
			return err
		}
		if status != 200 {
			return fmt.Errorf("import: %d %s", status, answer)
		}
		lat.add(time.Since(start))
	}
	// Every import must end within the wait, not half of them.
	b.atMost(mImport, lat.at(1), 29*time.Second, " at most (the HTTP API's wait)",
		fmt.Sprintf("%s p50, %s at most, of %d (%d messages, %.1f MB inline)", fmtMS(lat.at(0.5)), fmtMS(lat.at(1)), runs, n, float64(size)/1e6))
	return nil
}

// syntheticSession is a transcript of session id as the CLI writes one: n
// messages, user and assistant in turn, each the child of the one before,
// of a few hundred characters each.
func syntheticSession(id string, n int) string {
	var sb strings.Builder
	t0 := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	text := strings.Repeat("Some words of an ordinary session. ", 8)
	parent := any(nil)
	for i := range n {
		role := string(ovrlrd.RoleUser)
		var content any = text
		if i%2 == 1 {
			role = string(ovrlrd.RoleAssistant)
			content = []map[string]string{{"type": "text", "text": text}}
		}
		uid := uuid.NewString()
		line, _ := json.Marshal(map[string]any{
			"parentUuid":  parent,
			"isSidechain": false,
			"type":        role,
			"uuid":        uid,
			"timestamp":   t0.Add(time.Duration(i) * time.Second).Format("2006-01-02T15:04:05.000Z"),
			"cwd":         "/srv/project",
			"sessionId":   id,
			"version":     "2.1.197",
			"message":     map[string]any{"role": role, "content": content},
		})
		sb.Write(line)
		sb.WriteByte('\n')
		parent = uid
	}
	return sb.String()
}
