package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/ovrlrd/cloud/internal/ovrlrd"
	"github.com/ovrlrd/cloud/internal/transcript"
)

// What may go inline. The API runs on AWS Lambda, whose invocation payload
// is at most 6 MiB, and the HTTP API puts the request's body into the
// Lambda event as a JSON string: escaped a second time, so each quote or
// backslash of a transcript, already escaped once in the body, grows
// again. The server takes at most ovrlrd.MaxInlineTranscript inline; the
// event's other fields (headers, request context) get 64 KiB.
const (
	lambdaPayload = 6 << 20
	eventOverhead = 64 << 10
)

// sendInline reports whether the import request body, carrying a
// transcript of at most ovrlrd.MaxInlineTranscript bytes, fits in one
// Lambda invocation; otherwise the transcript goes through a presigned
// upload.
func sendInline(body []byte) bool {
	event, err := json.Marshal(string(body))
	return err == nil && len(event)+eventOverhead <= lambdaPayload
}

// importRequest is POST /chat/import's body: the transcript inline, or the
// upload holding it.
type importRequest struct {
	SessionID  string `json:"sessionId"`
	Transcript string `json:"transcript,omitempty"`
	UploadID   string `json:"uploadId,omitempty"`
	ProjectID  string `json:"projectId,omitempty"`
	Title      string `json:"title,omitempty"`
}

// encode is r as JSON, with <, > and & as they are: transcripts hold many
// (the CLI's tags), and escaping each as \u003c would only make the body
// larger.
func (r importRequest) encode() ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// upload is POST /chat/import/uploads' answer: where to put the transcript
// (what is used of it: ovrlrd.Upload's time does not decode).
type upload struct {
	UploadID string            `json:"uploadId"`
	URL      string            `json:"url"`
	Method   string            `json:"method"`
	Headers  map[string]string `json:"headers"`
}

// importSession imports the transcript data of session req.SessionID: in
// the request itself when it fits, else uploaded first. One larger than
// the server takes inline is never encoded inline at all; one refused
// inline as too large (API Gateway's own limit) is uploaded instead.
func importSession(ctx context.Context, c *client, req importRequest, data []byte, alwaysUpload bool) (ovrlrd.Imported, error) {
	var out ovrlrd.Imported
	if !alwaysUpload && len(data) <= ovrlrd.MaxInlineTranscript {
		req.Transcript = string(data)
		body, err := req.encode()
		if err != nil {
			return out, err
		}
		req.Transcript = ""
		if sendInline(body) {
			err = c.call(ctx, http.MethodPost, "/chat/import", importTimeout, body, &out)
			if e, ok := errors.AsType[*apiError](err); !ok || e.Status != http.StatusRequestEntityTooLarge {
				return out, err
			}
		}
	}
	var err error
	if req.UploadID, err = uploadTranscript(ctx, c, data); err != nil {
		return out, err
	}
	body, err := req.encode()
	if err != nil {
		return out, err
	}
	err = c.call(ctx, http.MethodPost, "/chat/import", importTimeout, body, &out)
	return out, err
}

// uploadTranscript puts data where POST /chat/import/uploads says, and
// returns the upload's id.
func uploadTranscript(ctx context.Context, c *client, data []byte) (string, error) {
	size, _ := json.Marshal(map[string]int{"size": len(data)})
	var u upload
	if err := c.call(ctx, http.MethodPost, "/chat/import/uploads", callTimeout, size, &u); err != nil {
		return "", err
	}
	if err := put(ctx, c.http, u, data); err != nil {
		return "", fmt.Errorf("uploading the transcript: %w", err)
	}
	return u.UploadID, nil
}

// put sends data as the presigned request u says, with exactly its
// headers: no API key or token, since the URL carries its own signature
// and its host is not the API's.
func put(ctx context.Context, hc *http.Client, u upload, data []byte) error {
	if u.Method != "" && u.Method != http.MethodPut {
		return fmt.Errorf("the server asks for a %s upload; ovrlrd only PUTs", u.Method)
	}
	// The transcript crosses the network in clear over anything but
	// https; plain http is for this machine's stand-in (make dev).
	if target, err := url.Parse(u.URL); err != nil || target.Host == "" ||
		(target.Scheme != "https" && (target.Scheme != "http" || !isLoopback(target.Hostname()))) {
		return errors.New("the server's upload address is not an https URL")
	}
	ctx, cancel := context.WithTimeout(ctx, uploadTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u.URL, bytes.NewReader(data))
	if err != nil {
		return err
	}
	// The signed length is the request's own, set by ContentLength: a
	// Content-Length header would be ignored.
	req.ContentLength = int64(len(data))
	for k, v := range u.Headers {
		if http.CanonicalHeaderKey(k) == "Content-Length" {
			if v != strconv.Itoa(len(data)) {
				return fmt.Errorf("the server signed a length of %s bytes for a transcript of %d", v, len(data))
			}
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return bare(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswerBytes))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("the storage answered HTTP %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	return nil
}

// projectID is the id of the user's project called name.
func projectID(ctx context.Context, c *client, name string) (string, error) {
	// Only what is needed: the rest of a project (its times among them)
	// is the app's.
	var list struct {
		Projects []struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"projects"`
	}
	if err := c.call(ctx, http.MethodGet, "/projects", callTimeout, nil, &list); err != nil {
		return "", fmt.Errorf("listing your projects: %w", err)
	}
	var names []string
	for _, p := range list.Projects {
		if p.Name == name {
			return p.ID, nil
		}
		names = append(names, strconv.Quote(p.Name))
	}
	if len(names) == 0 {
		return "", fmt.Errorf("project %q not found: you have no projects", name)
	}
	return "", fmt.Errorf("project %q not found; yours are %s", name, strings.Join(names, ", "))
}

// transcriptProblem is why Parse refused a transcript: its own message
// ("Line 3 of the transcript is not valid JSON."), else the error.
func transcriptProblem(err error) string {
	if e, ok := errors.AsType[*ovrlrd.Error](err); ok && e.Code != ovrlrd.EINTERNAL {
		return e.Message
	}
	return err.Error()
}

// checkTitle is --title as the server keeps it, its runs of white space
// made one space, or why the server would refuse it: checked before the
// transcript is read or sent.
func checkTitle(title string) (string, error) {
	if title == "" {
		return "", nil
	}
	t, ok := ovrlrd.ImportTitle(title)
	switch {
	case t == "":
		return "", errors.New("--title is blank")
	case ok:
		return t, nil
	case strings.ContainsFunc(t, unicode.IsControl):
		return "", errors.New("--title holds a control character")
	}
	return "", fmt.Errorf("--title is %d characters; a title may have at most %d", utf8.RuneCountInString(t), ovrlrd.MaxImportTitle)
}

// importCommand uploads one session, which becomes a conversation.
func importCommand(ctx context.Context, args []string, sys system, stdout, stderr io.Writer) error {
	var c common
	fs := flags("import", &c, stderr)
	project := fs.String("project", "", "the name of one of your projects, for the conversation's turns")
	title := fs.String("title", "", "the conversation's title (default: the session's own)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := positionals(fs, pos, 1, "one session id (see ovrlrd sessions)"); err != nil {
		return err
	}
	id := pos[0]
	// Before anything touches the disk.
	if !transcript.IsSessionID(id) {
		return fmt.Errorf("%q is not a session id: Claude Code names sessions with a UUID (see ovrlrd sessions)", id)
	}
	if *title, err = checkTitle(*title); err != nil {
		return err
	}
	s, err := resolve(c, sys, stderr)
	if err != nil {
		return err
	}
	p, err := openSessions(c.claudeDir, sys)
	if err != nil {
		return err
	}
	defer p.Close()
	data, path, err := p.find(ctx, id)
	if err != nil {
		return err
	}
	// Checked here too, so a transcript the server would refuse is never
	// sent; the server decides how many messages it takes.
	if _, err := transcript.Parse(bytes.NewReader(data), id, math.MaxInt32); err != nil {
		return fmt.Errorf("%s cannot be imported: %s", path, transcriptProblem(err))
	}
	cl := newClient(&s)
	req := importRequest{SessionID: id, Title: *title}
	if *project != "" {
		if req.ProjectID, err = projectID(ctx, cl, *project); err != nil {
			return err
		}
	}
	got, err := importSession(ctx, cl, req, data, sys.alwaysUpload)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Imported session %s as conversation %s: %d messages", id, printable(got.ConversationID), got.MessageCount)
	if got.Title != nil {
		fmt.Fprintf(stdout, ", titled %q", *got.Title)
	}
	fmt.Fprintln(stdout, ".")
	return nil
}
