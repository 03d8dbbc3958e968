package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
)

const (
	mImport       = "import of a 5 000-message session"
	mImportUpload = "import of a 90 MB session through an upload"
)

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
		data := syntheticSession(id, n, 280)
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
	return b.importUpload(ctx, n)
}

// importUpload times the largest import: n messages of 90 MB in all, put
// to S3 through a presigned upload, then imported from there. Only the
// last request has to end within the HTTP API's wait.
func (b *bench) importUpload(ctx context.Context, n int) error {
	id := uuid.NewString()
	data := syntheticSession(id, n, 90_000_000/n)
	start := time.Now()
	status, answer, err := b.s.Call(ctx, "POST", "/chat/import/uploads", fmt.Sprintf(`{"size":%d}`, len(data)), b.token)
	if err != nil || status != 200 {
		return fmt.Errorf("upload: %d %s %v", status, answer, err)
	}
	var u struct{ UploadID, URL, Method string }
	if err := json.Unmarshal(answer, &u); err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, u.Method, u.URL, strings.NewReader(data))
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("PUT: %d", resp.StatusCode)
	}
	put := time.Since(start)
	start = time.Now()
	body, _ := json.Marshal(map[string]string{"sessionId": id, "uploadId": u.UploadID})
	if status, answer, err = b.s.Call(ctx, "POST", "/chat/import", string(body), b.token); err != nil || status != 200 {
		return fmt.Errorf("import: %d %s %v", status, answer, err)
	}
	imported := time.Since(start)
	b.atMost(mImportUpload, imported, 29*time.Second, " (the HTTP API's wait)",
		fmt.Sprintf("%s for POST /chat/import, after %s to upload (%d messages, %.1f MB)", fmtMS(imported), fmtMS(put), n, float64(len(data))/1e6))
	return nil
}

// syntheticSession is a transcript of session id as the CLI writes one: n
// messages, user and assistant in turn, each the child of the one before,
// of about size characters each.
func syntheticSession(id string, n, size int) string {
	var sb strings.Builder
	t0 := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	text := strings.Repeat("Some words of an ordinary session. ", max(size/35, 1))
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
