package httpsrc_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-viper/mapstructure/v2"

	"github.com/panjin-gov/syncd/internal/connectors"
	"github.com/panjin-gov/syncd/internal/connectors/conformance"
	"github.com/panjin-gov/syncd/internal/connectors/httpsrc"
	"github.com/panjin-gov/syncd/internal/httpauth"
	"github.com/panjin-gov/syncd/internal/httpauth/httpauthtest"
	"github.com/panjin-gov/syncd/internal/sandbox"
)

func secrets(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

// tokenAPI serves the discipline sandbox's data in page_token style: the
// first page of a chain is asked for by updated_since/after_id, the rest by
// an opaque token. Tokens carry a generation; Expire makes every token
// handed out so far answer 410 Gone, as a server's token TTL would.
type tokenAPI struct {
	sw  *switchable
	gen atomic.Int64

	mu       sync.Mutex
	requests []url.Values
}

type pageToken struct {
	Gen   int64  `json:"g"`
	Since string `json:"s"`
	After string `json:"a"`
}

func (a *tokenAPI) Expire() { a.gen.Add(1) }

func (a *tokenAPI) log() []url.Values {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]url.Values(nil), a.requests...)
}

func (a *tokenAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	a.mu.Lock()
	a.requests = append(a.requests, q)
	a.mu.Unlock()
	since, after := q.Get("updated_since"), q.Get("after_id")
	if tok := q.Get("cursor"); tok != "" {
		var pt pageToken
		b, err := base64.RawURLEncoding.DecodeString(tok)
		if err == nil {
			err = json.Unmarshal(b, &pt)
		}
		if err != nil || pt.Gen != a.gen.Load() {
			http.Error(w, `{"error":"page token expired"}`, http.StatusGone)
			return
		}
		since, after = pt.Since, pt.After
	}
	inner := url.Values{"updated_since": {since}, "after_id": {after}, "limit": {q.Get("limit")}}
	rec := httptest.NewRecorder()
	a.sw.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/decisions?"+inner.Encode(), nil))
	if rec.Code != http.StatusOK {
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
		return
	}
	var page struct {
		Items   []json.RawMessage `json:"items"`
		HasMore bool              `json:"has_more"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	next := ""
	if page.HasMore {
		var last struct {
			ID        string `json:"id"`
			UpdatedAt string `json:"updated_at"`
		}
		json.Unmarshal(page.Items[len(page.Items)-1], &last)
		b, _ := json.Marshal(pageToken{Gen: a.gen.Load(), Since: last.UpdatedAt, After: last.ID})
		next = base64.RawURLEncoding.EncodeToString(b)
	}
	json.NewEncoder(w).Encode(map[string]any{"data": page.Items, "next": next})
}

// appendLog is an append-only source served in offset style, the only kind
// offset paging is safe over (see the package doc).
type appendLog struct {
	mu    sync.Mutex
	items [][]byte
	fail  bool
}

func (l *appendLog) add(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, _ := json.Marshal(map[string]any{"id": id, "updated_at": time.Now().Format(time.RFC3339Nano), "facts": strings.Repeat("事实", 200)})
	l.items = append(l.items, b)
}

func (l *appendLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fail {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	off, err1 := strconv.Atoi(r.URL.Query().Get("from"))
	limit, err2 := strconv.Atoi(r.URL.Query().Get("limit"))
	if err1 != nil || err2 != nil || off < 0 || limit < 1 {
		http.Error(w, "bad from/limit", http.StatusBadRequest)
		return
	}
	off = min(off, len(l.items))
	end := min(off+limit, len(l.items))
	w.Write([]byte(`{"total":` + strconv.Itoa(len(l.items)) + `,"rows":[`))
	for i, it := range l.items[off:end] {
		if i > 0 {
			w.Write([]byte(","))
		}
		w.Write(it)
	}
	w.Write([]byte("]}"))
}

func tokenConfig(u string) httpsrc.Config {
	return httpsrc.Config{URL: u, Pagination: httpsrc.PageToken, ItemsField: "data", NextPageTokenField: "next",
		PageTokenParam: "cursor", PageSize: 100, Config: httpauth.Config{Timeout: 2 * time.Second}}
}

func offsetConfig(u string) httpsrc.Config {
	return httpsrc.Config{URL: u, Pagination: httpsrc.Offset, ItemsField: "rows", OffsetParam: "from",
		PageSize: 100, Config: httpauth.Config{Timeout: 2 * time.Second}}
}

func disciplineHarness(t *testing.T, h http.Handler, sw *switchable, cfg func(url string) httpsrc.Config, resolve func(string) string) conformance.Harness {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	var seq atomic.Int64
	current := func() *sandbox.Discipline {
		sw.mu.Lock()
		defer sw.mu.Unlock()
		return sw.d
	}
	return conformance.Harness{
		Reset: func(t *testing.T) {
			sw.mu.Lock()
			sw.d = sandbox.NewDiscipline(nil)
			sw.mu.Unlock()
		},
		Open: func(t *testing.T) connectors.Source {
			s, err := httpsrc.New("discipline", cfg(srv.URL), resolve)
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		Produce: func(t *testing.T, n int) []string {
			d := current()
			keys := make([]string, n)
			for i := range keys {
				keys[i] = fmt.Sprintf("k-%08d", seq.Add(1))
				d.Upsert(map[string]any{"id": keys[i], "case_no": keys[i], "facts": strings.Repeat("事实", 200)})
			}
			return keys
		},
		Disrupt: func(t *testing.T) func() {
			d := current()
			d.SetFaults(sandbox.Faults{FailRate: 1})
			return func() { d.SetFaults(sandbox.Faults{}) }
		},
	}
}

func TestConformancePageToken(t *testing.T) {
	sw := &switchable{d: sandbox.NewDiscipline(nil)}
	conformance.Run(t, disciplineHarness(t, &tokenAPI{sw: sw}, sw, tokenConfig, nil))
}

func TestConformanceOffset(t *testing.T) {
	var mu sync.Mutex
	log := &appendLog{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		l := log
		mu.Unlock()
		l.ServeHTTP(w, r)
	}))
	defer srv.Close()
	var seq atomic.Int64
	cur := func() *appendLog { mu.Lock(); defer mu.Unlock(); return log }
	conformance.Run(t, conformance.Harness{
		Reset: func(t *testing.T) { mu.Lock(); log = &appendLog{}; mu.Unlock() },
		Open: func(t *testing.T) connectors.Source {
			s, err := httpsrc.New("ledger", offsetConfig(srv.URL), nil)
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		Produce: func(t *testing.T, n int) []string {
			l := cur()
			keys := make([]string, n)
			for i := range keys {
				keys[i] = fmt.Sprintf("o-%08d", seq.Add(1))
				l.add(keys[i])
			}
			return keys
		},
		Disrupt: func(t *testing.T) func() {
			l := cur()
			l.mu.Lock()
			l.fail = true
			l.mu.Unlock()
			return func() { l.mu.Lock(); l.fail = false; l.mu.Unlock() }
		},
	})
}

// drainAll reads from cursor until caught up, as the runner would.
func drainAll(t *testing.T, s connectors.Source, cursor string, max int) (keys []string, next string) {
	t.Helper()
	for i := 0; i < 10000; i++ {
		b, err := s.Fetch(context.Background(), cursor, max)
		if err != nil {
			t.Fatalf("fetch %d: %v", i, err)
		}
		for _, r := range b.Records {
			keys = append(keys, r.Key)
		}
		if len(b.Records) == 0 {
			return keys, cursor
		}
		cursor = b.Next
		if !b.More {
			return keys, cursor
		}
	}
	t.Fatal("never caught up")
	return nil, ""
}

func produce(d *sandbox.Discipline, prefix string, n int) {
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("%s-%03d", prefix, i)
		d.Upsert(map[string]any{"id": id})
	}
}

func TestPageTokenExpiryAndCatchUpResumeFromTheLastItem(t *testing.T) {
	d := sandbox.NewDiscipline(nil)
	api := &tokenAPI{sw: &switchable{d: d}}
	srv := httptest.NewServer(api)
	defer srv.Close()
	s, err := httpsrc.New("s", tokenConfig(srv.URL), nil)
	if err != nil {
		t.Fatal(err)
	}
	produce(d, "a", 25)

	b1, err := s.Fetch(context.Background(), "", 10)
	if err != nil || len(b1.Records) != 10 || !b1.More || !strings.Contains(b1.Next, `"token":"`) {
		t.Fatalf("first page: %d records, more %v, next %s, %v", len(b1.Records), b1.More, b1.Next, err)
	}
	// The saved token expires (a long pause, a server restart): the fetch
	// starts a new chain from the last item read, losing and repeating nothing.
	api.Expire()
	keys, cur := drainAll(t, s, b1.Next, 10)
	if len(keys) != 15 || keys[0] != "a-010" || keys[14] != "a-024" {
		t.Fatalf("after expiry read %d: %v", len(keys), keys)
	}
	if strings.Contains(cur, `"token"`) {
		t.Fatalf("a finished chain left a token in the cursor: %s", cur)
	}
	// Caught up; new items come from a new chain started at the pair.
	produce(d, "b", 3)
	n := len(api.log())
	keys, _ = drainAll(t, s, cur, 10)
	if len(keys) != 3 || keys[0] != "b-000" {
		t.Fatalf("incremental read %v", keys)
	}
	first := api.log()[n]
	if first.Get("cursor") != "" || first.Get("after_id") != "a-024" || first.Get("updated_since") == "" {
		t.Fatalf("new chain did not start from the last item: %v", first)
	}
}

// A page-token API may answer pages without items but with a token; the
// runner stops at an empty batch, so the source must follow them itself.
func TestPageTokenFollowsEmptyPages(t *testing.T) {
	var calls atomic.Int64
	url := serve(t, func(w http.ResponseWriter, r *http.Request) {
		switch calls.Add(1) {
		case 1, 2:
			fmt.Fprintf(w, `{"items":[],"next_page_token":"t%d"}`, calls.Load())
		default:
			if r.URL.Query().Get("page_token") != "t2" {
				t.Errorf("third request %s", r.URL.RawQuery)
			}
			w.Write([]byte(`{"items":[{"id":"x","updated_at":"2026-01-01T00:00:00+08:00"}],"next_page_token":null}`))
		}
	})
	s, _ := httpsrc.New("s", httpsrc.Config{URL: url, Pagination: httpsrc.PageToken}, nil)
	b, err := s.Fetch(context.Background(), "", 10)
	if err != nil || len(b.Records) != 1 || b.More || calls.Load() != 3 {
		t.Fatalf("%d records, more %v, %d calls, %v", len(b.Records), b.More, calls.Load(), err)
	}
}

func TestOffsetQueryAndMore(t *testing.T) {
	var got url.Values
	url := serve(t, func(w http.ResponseWriter, r *http.Request) {
		got = r.URL.Query()
		w.Write([]byte(`{"items":[{"id":1,"updated_at":"2026-01-01T00:00:00+08:00"},{"no":"key"}]}`))
	})
	s, _ := httpsrc.New("s", httpsrc.Config{URL: url, Pagination: httpsrc.Offset}, nil)
	b, err := s.Fetch(context.Background(), `{"since":"","after":"","offset":40}`, 2)
	if err != nil {
		t.Fatal(err)
	}
	// A full page means more; the unplaceable item still takes its place.
	if got.Get("offset") != "40" || got.Get("limit") != "2" || !b.More || !strings.Contains(b.Next, `"offset":42`) {
		t.Fatalf("query %v, more %v, next %s", got, b.More, b.Next)
	}
}

// keyset server behind each auth scheme; the server checks credentials
// with httpauth (Verify for app keys).
func TestAuthSchemes(t *testing.T) {
	d := sandbox.NewDiscipline(nil)
	produce(d, "k", 30)
	sw := &switchable{d: d}
	sha := httpauth.NewVerifier(httpauth.AlgHMACSHA256, 0)
	sm3 := httpauth.NewVerifier(httpauth.AlgHMACSM3, 0)
	appKeys := map[string]string{"pj-syncd": "app-secret"}
	mux := http.NewServeMux()
	mux.Handle("/basic/", http.StripPrefix("/basic", httpauthtest.RequireBasic("syncd", "pw", sw)))
	mux.Handle("/sha/", http.StripPrefix("/sha", httpauthtest.RequireSignature(sha, appKeys, sw)))
	mux.Handle("/sm3/", http.StripPrefix("/sm3", httpauthtest.RequireSignature(sm3, appKeys, &tokenAPI{sw: sw})))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	env := secrets("PW", "pw", "APP", "app-secret", "WRONG", "nope")

	cases := []struct {
		name   string
		cfg    httpsrc.Config
		env    func(string) string
		denied bool
	}{
		{"basic", httpsrc.Config{URL: srv.URL + "/basic/api/v1/decisions",
			Config: httpauth.Config{Auth: httpauth.Auth{Type: "basic", Username: "syncd", PasswordEnv: "PW"}}}, env, false},
		{"appkey hmac-sha256", httpsrc.Config{URL: srv.URL + "/sha/api/v1/decisions",
			Config: httpauth.Config{Auth: httpauth.Auth{Type: "appkey", AppKey: "pj-syncd", AppSecretEnv: "APP"}}}, env, false},
		{"appkey hmac-sm3, page_token", func() httpsrc.Config {
			c := tokenConfig(srv.URL + "/sm3/")
			c.Auth = httpauth.Auth{Type: "appkey", AppKey: "pj-syncd", AppSecretEnv: "APP", Algorithm: "hmac-sm3"}
			return c
		}(), env, false},
		{"wrong secret", httpsrc.Config{URL: srv.URL + "/sha/api/v1/decisions",
			Config: httpauth.Config{Auth: httpauth.Auth{Type: "appkey", AppKey: "pj-syncd", AppSecretEnv: "WRONG"}}}, env, true},
		{"sm3 server, sha256 client", httpsrc.Config{URL: srv.URL + "/sm3/",
			Pagination: httpsrc.PageToken, ItemsField: "data", NextPageTokenField: "next", PageTokenParam: "cursor",
			Config: httpauth.Config{Auth: httpauth.Auth{Type: "appkey", AppKey: "pj-syncd", AppSecretEnv: "APP"}}}, env, true},
		{"no credentials", httpsrc.Config{URL: srv.URL + "/basic/api/v1/decisions"}, env, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := httpsrc.New("s", c.cfg, c.env)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close(context.Background())
			if c.denied {
				_, err := s.Fetch(context.Background(), "", 7)
				if !errors.Is(err, connectors.ErrPermanent) || !strings.Contains(err.Error(), "401") {
					t.Fatalf("err = %v, want a permanent 401", err)
				}
				return
			}
			keys, _ := drainAll(t, s, "", 7) // several pages, each signed afresh
			if len(keys) != 30 {
				t.Fatalf("read %d of 30", len(keys))
			}
		})
	}
}

// token_env (the key before auth existed) still means a bearer token, and
// an unset variable still means no Authorization header.
func TestLegacyTokenEnv(t *testing.T) {
	d := sandbox.NewDiscipline(nil)
	d.RequireToken("tok")
	produce(d, "k", 3)
	srv := httptest.NewServer(d.Handler())
	defer srv.Close()
	cfg := httpsrc.Config{URL: srv.URL + "/api/v1/decisions", TokenEnv: "SYNCD_DISCIPLINE_TOKEN"}
	s, err := httpsrc.New("s", cfg, secrets("SYNCD_DISCIPLINE_TOKEN", "tok"))
	if err != nil {
		t.Fatal(err)
	}
	if keys, _ := drainAll(t, s, "", 10); len(keys) != 3 {
		t.Fatalf("read %d", len(keys))
	}
	s, err = httpsrc.New("s", cfg, secrets())
	if err != nil {
		t.Fatalf("unset legacy token_env must not fail construction: %v", err)
	}
	if _, err := s.Fetch(context.Background(), "", 10); !errors.Is(err, connectors.ErrPermanent) {
		t.Fatalf("without the token: %v", err)
	}
}

func TestMutualTLSOffsetSource(t *testing.T) {
	pki := httpauthtest.NewPKI(t)
	log := &appendLog{}
	for i := 0; i < 12; i++ {
		log.add(fmt.Sprintf("m-%02d", i))
	}
	srv := pki.StartTLS(t, log)
	cfg := offsetConfig(srv.URL)
	cfg.TLS = httpauth.TLS{CAFile: pki.CAFile, CertFile: pki.ClientCertFile, KeyFile: pki.ClientKeyFile}
	s, err := httpsrc.New("s", cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if keys, _ := drainAll(t, s, "", 5); len(keys) != 12 {
		t.Fatalf("read %d of 12", len(keys))
	}
	cfg.TLS.CertFile, cfg.TLS.KeyFile = "", ""
	s, _ = httpsrc.New("s", cfg, nil)
	if _, err := s.Fetch(context.Background(), "", 5); err == nil {
		t.Fatal("fetched without a client certificate")
	}
}

func TestRateLimitIsHonoured(t *testing.T) {
	d := sandbox.NewDiscipline(nil)
	produce(d, "r", 12)
	var mu sync.Mutex
	var at []time.Time
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		at = append(at, time.Now())
		mu.Unlock()
		d.Handler().ServeHTTP(w, r)
	}))
	defer srv.Close()
	s, err := httpsrc.New("s", httpsrc.Config{URL: srv.URL + "/api/v1/decisions",
		Config: httpauth.Config{RateLimit: 10, Burst: 1}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	keys, _ := drainAll(t, s, "", 3) // 4 pages of 3
	took := time.Since(start)
	mu.Lock()
	n := len(at)
	spacing := at[n-1].Sub(at[0]) / time.Duration(n-1)
	mu.Unlock()
	// 10/s, burst 1: n requests need (n-1)×100ms. Only a loose lower bound.
	if len(keys) != 12 || took < time.Duration(n-1)*80*time.Millisecond {
		t.Fatalf("%d keys, %d requests in %v", len(keys), n, took)
	}
	t.Logf("%d requests at rate_limit 10/s: %v, mean spacing %v", n, took, spacing)
}

// The keys the config file uses, decoded as internal/config decodes them
// (unknown keys are errors).
func TestConfigKeys(t *testing.T) {
	in := map[string]any{
		"url": "https://jjjc.example/api", "timeout": "5s", "page_size": 50,
		"pagination": "page_token", "page_token_param": "pt", "next_page_token_field": "nxt",
		"offset_param": "o", "rate_limit": 2.5, "burst": 3,
		"tls":  map[string]any{"ca_file": "/etc/ca.pem", "cert_file": "c.pem", "key_file": "k.pem", "server_name": "jjjc", "insecure_skip_verify": false},
		"auth": map[string]any{"type": "appkey", "app_key": "pj", "app_secret_env": "S", "algorithm": "hmac-sm3"},
	}
	var c httpsrc.Config
	dec, _ := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		Result: &c, ErrorUnused: true, DecodeHook: mapstructure.StringToTimeDurationHookFunc(),
	})
	if err := dec.Decode(in); err != nil {
		t.Fatal(err)
	}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Timeout != 5*time.Second || c.RateLimit != 2.5 || c.Burst != 3 || c.TLS.ServerName != "jjjc" ||
		c.Auth.Algorithm != "hmac-sm3" || c.PageTokenParam != "pt" || c.NextPageTokenField != "nxt" || c.OffsetParam != "o" {
		t.Fatalf("%+v", c)
	}
}
