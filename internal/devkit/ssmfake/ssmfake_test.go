package ssmfake_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/ovrlrd/cloud/internal/devkit/ssmfake"
)

func post(t *testing.T, url, target, body string) (*http.Response, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Amz-Target", target)
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return resp, out
}

func TestWireFormat(t *testing.T) {
	srv := ssmfake.New(map[string]string{"/a": "1"})
	defer srv.Close()

	resp, out := post(t, srv.URL, "AmazonSSM.GetParameters", `{"Names":["/a","/b"],"WithDecryption":true}`)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-amz-json-1.1" {
		t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	params := out["Parameters"].([]any)
	p := params[0].(map[string]any)
	if len(params) != 1 || p["Name"] != "/a" || p["Value"] != "1" || p["Type"] != "SecureString" || p["Version"] != 1.0 {
		t.Errorf("Parameters = %v", params)
	}
	if inv := out["InvalidParameters"].([]any); len(inv) != 1 || inv[0] != "/b" {
		t.Errorf("InvalidParameters = %v", inv)
	}

	srv.Throttle(1)
	resp, out = post(t, srv.URL, "AmazonSSM.GetParameters", `{"Names":["/a"]}`)
	if resp.StatusCode != 400 || out["__type"] != "ThrottlingException" || out["message"] != "Rate exceeded" {
		t.Errorf("throttle: status %d body %v", resp.StatusCode, out)
	}

	resp, out = post(t, srv.URL, "AmazonSSM.GetParameters", `{"Names":["/a"]}`)
	if resp.StatusCode != 200 || out["Parameters"].([]any)[0].(map[string]any)["Value"] == "1" {
		t.Errorf("without WithDecryption the plaintext came back: %v", out)
	}

	resp, out = post(t, srv.URL, "AmazonSSM.GetParameter", `{"Name":"/a"}`)
	if resp.StatusCode != 400 || out["__type"] != "UnknownOperationException" {
		t.Errorf("other operation: status %d body %v", resp.StatusCode, out)
	}
	if srv.Calls() != 3 {
		t.Errorf("Calls() = %d, want 3", srv.Calls())
	}
}
