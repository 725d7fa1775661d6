package httpsrc_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/panjin-gov/syncd/internal/connectors"
	"github.com/panjin-gov/syncd/internal/connectors/conformance"
	"github.com/panjin-gov/syncd/internal/connectors/httpsrc"
	"github.com/panjin-gov/syncd/internal/httpauth"
	"github.com/panjin-gov/syncd/internal/sandbox"
)

// switchable lets a test replace the sandbox behind one URL.
type switchable struct {
	mu sync.Mutex
	d  *sandbox.Discipline
}

func (s *switchable) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	d := s.d
	s.mu.Unlock()
	d.Handler().ServeHTTP(w, r)
}

// TestConformance runs the suite against the discipline sandbox in the
// default keyset style; modes_test.go runs it for the other styles.
func TestConformance(t *testing.T) {
	sw := &switchable{d: sandbox.NewDiscipline(nil)}
	srv := httptest.NewServer(sw)
	defer srv.Close()
	var seq atomic.Int64
	conformance.Run(t, conformance.Harness{
		Reset: func(t *testing.T) {
			sw.mu.Lock()
			sw.d = sandbox.NewDiscipline(nil)
			sw.mu.Unlock()
		},
		Open: func(t *testing.T) connectors.Source {
			s, err := httpsrc.New("discipline", httpsrc.Config{URL: srv.URL + "/api/v1/decisions", Config: httpauth.Config{Timeout: 2 * time.Second}, PageSize: 100}, nil)
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		Produce: func(t *testing.T, n int) []string {
			sw.mu.Lock()
			d := sw.d
			sw.mu.Unlock()
			keys := make([]string, n)
			for i := range keys {
				keys[i] = fmt.Sprintf("k-%08d", seq.Add(1))
				d.Upsert(map[string]any{"id": keys[i], "case_no": keys[i], "facts": strings.Repeat("事实", 200)})
			}
			return keys
		},
		Disrupt: func(t *testing.T) func() {
			sw.mu.Lock()
			d := sw.d
			sw.mu.Unlock()
			d.SetFaults(sandbox.Faults{FailRate: 1})
			return func() { d.SetFaults(sandbox.Faults{}) }
		},
		Backlog: 20000,
	})
}

func serve(t *testing.T, h http.HandlerFunc) string {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestErrorsAreClassified(t *testing.T) {
	cases := []struct {
		name      string
		status    int
		header    string
		permanent bool
		after     time.Duration
	}{
		{"server error is transient", 503, "", false, 0},
		{"429 with Retry-After", 429, "7", false, 7 * time.Second},
		{"unauthorized is permanent", 401, "", true, 0},
		{"not found is permanent", 404, "", true, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			url := serve(t, func(w http.ResponseWriter, r *http.Request) {
				if c.header != "" {
					w.Header().Set("Retry-After", c.header)
				}
				w.WriteHeader(c.status)
				w.Write([]byte(`{"error":"x"}`))
			})
			s, _ := httpsrc.New("s", httpsrc.Config{URL: url}, nil)
			_, err := s.Fetch(context.Background(), "", 10)
			if err == nil {
				t.Fatal("no error")
			}
			if errors.Is(err, connectors.ErrPermanent) != c.permanent {
				t.Fatalf("permanent = %v, want %v (%v)", !c.permanent, c.permanent, err)
			}
			var ra *connectors.RetryAfterError
			if c.after > 0 && (!errors.As(err, &ra) || ra.After != c.after) {
				t.Fatalf("retry-after not carried: %v", err)
			}
		})
	}
}

func TestTruncatedPageIsTransient(t *testing.T) {
	url := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"items":[{"id":"a","updated_at":"2026-01-01T00:00:00+08:00"`))
	})
	s, _ := httpsrc.New("s", httpsrc.Config{URL: url}, nil)
	_, err := s.Fetch(context.Background(), "", 10)
	if err == nil || errors.Is(err, connectors.ErrPermanent) {
		t.Fatalf("truncated page: err = %v, want a transient error", err)
	}
}

func TestBadCursorIsPermanent(t *testing.T) {
	url := serve(t, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"items":[]}`)) })
	s, _ := httpsrc.New("s", httpsrc.Config{URL: url}, nil)
	if _, err := s.Fetch(context.Background(), "{not json", 10); !errors.Is(err, connectors.ErrPermanent) {
		t.Fatalf("err = %v", err)
	}
}

// An item without key or timestamp is passed on with a Problem (to be
// rejected), and does not move the cursor.
func TestUnplaceableItemsArePassedOnWithAProblem(t *testing.T) {
	url := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"items":[
			{"id":"a","updated_at":"2026-01-01T00:00:00+08:00"},
			{"updated_at":"2026-01-01T00:00:01+08:00","case_no":"no id"},
			{"id":"c","updated_at":"yesterday"},
			"just a string"],"has_more":false}`))
	})
	s, _ := httpsrc.New("s", httpsrc.Config{URL: url}, nil)
	b, err := s.Fetch(context.Background(), "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Records) != 4 {
		t.Fatalf("%d records, want all 4", len(b.Records))
	}
	problems := 0
	for _, r := range b.Records {
		if r.Problem != "" {
			problems++
			if !strings.HasPrefix(r.Key, "sha256:") {
				t.Errorf("unplaceable item keyed %q", r.Key)
			}
		}
	}
	if problems != 3 {
		t.Fatalf("%d problems, want 3", problems)
	}
	if !strings.Contains(b.Next, `"after":"a"`) {
		t.Fatalf("cursor %s should stay at the last placeable item", b.Next)
	}
}

func TestBearerTokenAndQuery(t *testing.T) {
	var got *http.Request
	url := serve(t, func(w http.ResponseWriter, r *http.Request) {
		got = r
		w.Write([]byte(`{"items":[]}`))
	})
	s, _ := httpsrc.New("s", httpsrc.Config{URL: url + "/x?tenant=pj", PageSize: 50, TokenEnv: "TOK"}, secrets("TOK", "tok"))
	if _, err := s.Fetch(context.Background(), `{"since":"2026-01-01T00:00:00+08:00","after":"k9"}`, 20); err != nil {
		t.Fatal(err)
	}
	q := got.URL.Query()
	if got.Header.Get("Authorization") != "Bearer tok" || q.Get("tenant") != "pj" || q.Get("limit") != "20" ||
		q.Get("after_id") != "k9" || q.Get("updated_since") != "2026-01-01T00:00:00+08:00" {
		t.Fatalf("request %s %v", got.URL, got.Header)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []httpsrc.Config{{}, {URL: "ftp://x"}, {URL: "http://x", PageSize: 20000},
		{URL: "http://x", Pagination: "cursor"},
		{URL: "http://x", TokenEnv: "T", Config: httpauth.Config{Auth: httpauth.Auth{Type: "bearer", TokenEnv: "T"}}},
		{URL: "http://x", Config: httpauth.Config{Auth: httpauth.Auth{Type: "basic", Username: "u"}}},
		{URL: "http://x", Config: httpauth.Config{TLS: httpauth.TLS{CertFile: "c.pem"}}},
	} {
		c.SetDefaults()
		if err := c.Validate(); err == nil {
			t.Errorf("%+v validated", c)
		}
	}
}
