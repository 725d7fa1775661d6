package sandbox

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
)

// startServer serves h on loopback for the length of the test.
func startServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

type decisionsPage struct {
	Items   []map[string]any `json:"items"`
	HasMore bool             `json:"has_more"`
}

// getDecisions fetches one page; limit 0 leaves the parameter out.
func getDecisions(t *testing.T, base, since, afterID string, limit int, token string) (int, decisionsPage, []byte) {
	t.Helper()
	q := url.Values{}
	if since != "" {
		q.Set("updated_since", since)
	}
	if afterID != "" {
		q.Set("after_id", afterID)
	}
	if limit != 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	req, err := http.NewRequest(http.MethodGet, base+"/api/v1/decisions?"+q.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	var p decisionsPage
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, &p); err != nil {
			t.Fatalf("decode page: %v\n%s", err, body)
		}
	}
	return resp.StatusCode, p, body
}

// postJSON posts v (or raw bytes) and returns status and body.
func postJSON(t *testing.T, url, token string, v any) (int, []byte) {
	t.Helper()
	var b []byte
	switch x := v.(type) {
	case []byte:
		b = x
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			t.Fatal(err)
		}
	}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp.StatusCode, body
}
