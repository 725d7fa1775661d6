package httpauth_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/panjin-gov/syncd/internal/httpauth"
	"github.com/panjin-gov/syncd/internal/httpauth/httpauthtest"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func keys(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { s, ok := m[k]; return s, ok }
}

// signed builds a request signed by s at now.
func signed(t *testing.T, s httpauth.Signer, method, url string, body []byte) *http.Request {
	t.Helper()
	r := httptest.NewRequest(method, url, bytes.NewReader(body))
	if err := s.Sign(r, body); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestSignVerifyRoundTripAndTampering(t *testing.T) {
	for _, alg := range []string{httpauth.AlgHMACSHA256, httpauth.AlgHMACSM3} {
		t.Run(alg, func(t *testing.T) {
			secrets := keys(map[string]string{"pj-app": "s3cret"})
			s := httpauth.Signer{AppKey: "pj-app", Secret: "s3cret", Algorithm: alg}
			body := []byte(`{"batch_id":"b1"}`)
			const url = "http://platform.example/api/v1/report?b=2&a=1"
			v := httpauth.NewVerifier(alg, 0)
			if err := v.Verify(signed(t, s, "POST", url, body), body, secrets, time.Minute); err != nil {
				t.Fatalf("a correctly signed request: %v", err)
			}

			cases := []struct {
				name   string
				mutate func(r *http.Request) (*http.Request, []byte)
				want   error
			}{
				{"body", func(r *http.Request) (*http.Request, []byte) { return r, []byte(`{"batch_id":"b2"}`) }, httpauth.ErrBadSignature},
				{"path", func(r *http.Request) (*http.Request, []byte) {
					r.URL.Path, r.RequestURI = "/api/v1/other", "/api/v1/other?b=2&a=1"
					return r, body
				}, httpauth.ErrBadSignature},
				{"query", func(r *http.Request) (*http.Request, []byte) {
					r.RequestURI = "/api/v1/report?b=3&a=1"
					return r, body
				}, httpauth.ErrBadSignature},
				{"method", func(r *http.Request) (*http.Request, []byte) { r.Method = "PUT"; return r, body }, httpauth.ErrBadSignature},
				{"timestamp", func(r *http.Request) (*http.Request, []byte) {
					ts, _ := strconv.ParseInt(r.Header.Get(httpauth.HeaderTimestamp), 10, 64)
					r.Header.Set(httpauth.HeaderTimestamp, strconv.FormatInt(ts+1, 10))
					return r, body
				}, httpauth.ErrBadSignature},
				{"nonce", func(r *http.Request) (*http.Request, []byte) {
					r.Header.Set(httpauth.HeaderNonce, "other")
					return r, body
				}, httpauth.ErrBadSignature},
				{"app key", func(r *http.Request) (*http.Request, []byte) {
					r.Header.Set(httpauth.HeaderAppKey, "who")
					return r, body
				}, httpauth.ErrUnknownAppKey},
				{"no signature", func(r *http.Request) (*http.Request, []byte) { r.Header.Del(httpauth.HeaderSignature); return r, body }, httpauth.ErrMissingHeader},
			}
			for _, c := range cases {
				r, b := c.mutate(signed(t, s, "POST", url, body))
				err := v.Verify(r, b, secrets, time.Minute)
				if !errors.Is(err, c.want) || !errors.Is(err, httpauth.ErrUnauthenticated) {
					t.Errorf("tampered %s: err = %v, want %v", c.name, err, c.want)
				}
			}

			// The other algorithm's signature does not pass.
			otherAlg := httpauth.AlgHMACSM3
			if alg == otherAlg {
				otherAlg = httpauth.AlgHMACSHA256
			}
			wrong := s
			wrong.Algorithm = otherAlg
			if err := v.Verify(signed(t, wrong, "POST", url, body), body, secrets, time.Minute); !errors.Is(err, httpauth.ErrBadSignature) {
				t.Errorf("signed with %s, verified as %s: %v", otherAlg, alg, err)
			}
		})
	}
}

func TestVerifyRefusesSkewAndReplay(t *testing.T) {
	secrets := keys(map[string]string{"k": "s"})
	v := httpauth.NewVerifier("", 0)
	old := httpauth.Signer{AppKey: "k", Secret: "s", Now: func() time.Time { return time.Now().Add(-10 * time.Minute) }}
	if err := v.Verify(signed(t, old, "GET", "http://x/a", nil), nil, secrets, 5*time.Minute); !errors.Is(err, httpauth.ErrClockSkew) {
		t.Errorf("10 minutes old: %v", err)
	}
	future := httpauth.Signer{AppKey: "k", Secret: "s", Now: func() time.Time { return time.Now().Add(10 * time.Minute) }}
	if err := v.Verify(signed(t, future, "GET", "http://x/a", nil), nil, secrets, 5*time.Minute); !errors.Is(err, httpauth.ErrClockSkew) {
		t.Errorf("10 minutes ahead: %v", err)
	}
	r := signed(t, httpauth.Signer{AppKey: "k", Secret: "s"}, "GET", "http://x/a", nil)
	if err := v.Verify(r, nil, secrets, 0); err != nil {
		t.Fatal(err)
	}
	if err := v.Verify(r, nil, secrets, 0); !errors.Is(err, httpauth.ErrReplay) {
		t.Errorf("replayed request: %v", err)
	}
}

// The nonce memory is bounded; overflowing it must refuse, not admit, a
// replay of a forgotten nonce.
func TestNonceMemoryIsBoundedAndFailsClosed(t *testing.T) {
	secrets := keys(map[string]string{"k": "s"})
	v := httpauth.NewVerifier("", 3)
	var ms int64 = 1_700_000_000_000
	clock := func() time.Time { return time.UnixMilli(ms) }
	v.Now = clock
	s := httpauth.Signer{AppKey: "k", Secret: "s", Now: clock}
	var reqs []*http.Request
	for i := 0; i < 5; i++ {
		ms++
		r := signed(t, s, "GET", "http://x/a", nil)
		reqs = append(reqs, r)
		if err := v.Verify(r, nil, secrets, time.Minute); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	for i, r := range reqs {
		if err := v.Verify(r, nil, secrets, time.Minute); !errors.Is(err, httpauth.ErrReplay) {
			t.Errorf("replay of request %d after overflow: %v", i, err)
		}
	}
	ms++
	if err := v.Verify(signed(t, s, "GET", "http://x/a", nil), nil, secrets, time.Minute); err != nil {
		t.Errorf("a fresh request after overflow: %v", err)
	}
	// Once the window has passed, nonces are forgotten for good and the
	// skew check alone refuses their requests.
	ms += time.Minute.Milliseconds() + 10
	if err := v.Verify(reqs[0], nil, secrets, time.Minute); !errors.Is(err, httpauth.ErrClockSkew) {
		t.Errorf("stale request: %v", err)
	}
}

// StripPrefix rewrites r.URL; the verifier must still see what was signed.
func TestVerifyUnderStripPrefix(t *testing.T) {
	v := httpauth.NewVerifier("", 0)
	h := http.StripPrefix("/national", httpauthtest.RequireSignature(v, map[string]string{"k": "s"},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })))
	srv := httptest.NewServer(h)
	defer srv.Close()
	c, err := httpauth.Client(httpauth.Config{Auth: httpauth.Auth{Type: "appkey", AppKey: "k", AppSecretEnv: "SECRET"}},
		env(map[string]string{"SECRET": "s"}))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Post(srv.URL+"/national/api/v1/report?x=%E7%9B%98%E9%94%A6", "application/json", strings.NewReader(`{"a":1}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

func TestClientAuthTypes(t *testing.T) {
	v := httpauth.NewVerifier(httpauth.AlgHMACSM3, 0)
	var seen sync.Map
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		seen.Store(r.URL.Path, string(b))
		io.WriteString(w, "ok")
	})
	mux := http.NewServeMux()
	mux.Handle("/bearer", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(401)
			return
		}
		echo(w, r)
	}))
	mux.Handle("/basic", httpauthtest.RequireBasic("pj", "pw", echo))
	mux.Handle("/appkey", httpauthtest.RequireSignature(v, map[string]string{"pj-app": "sec"}, echo))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	secrets := env(map[string]string{"TOK": "tok", "PW": "pw", "SEC": "sec"})
	for _, c := range []struct {
		path string
		auth httpauth.Auth
	}{
		{"/bearer", httpauth.Auth{Type: "bearer", TokenEnv: "TOK"}},
		{"/basic", httpauth.Auth{Type: "basic", Username: "pj", PasswordEnv: "PW"}},
		{"/appkey", httpauth.Auth{Type: "appkey", AppKey: "pj-app", AppSecretEnv: "SEC", Algorithm: "hmac-sm3"}},
	} {
		cl, err := httpauth.Client(httpauth.Config{Auth: c.auth, Timeout: 5 * time.Second}, secrets)
		if err != nil {
			t.Fatal(err)
		}
		// Twice: a body must be signed and still arrive whole each time.
		for i := 0; i < 2; i++ {
			body := fmt.Sprintf(`{"n":%d}`, i)
			resp, err := cl.Post(srv.URL+c.path, "application/json", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got, _ := seen.Load(c.path); resp.StatusCode != 200 || got != body {
				t.Fatalf("%s: status %d, body %v", c.path, resp.StatusCode, got)
			}
		}
		none, _ := httpauth.Client(httpauth.Config{}, nil)
		resp, err := none.Get(srv.URL + c.path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Fatalf("%s without credentials: status %d", c.path, resp.StatusCode)
		}
	}
	// A secret named but unset is an error when the client is built.
	if _, err := httpauth.Client(httpauth.Config{Auth: httpauth.Auth{Type: "bearer", TokenEnv: "NOPE"}}, secrets); err == nil ||
		!strings.Contains(err.Error(), "NOPE") {
		t.Fatalf("unset secret: %v", err)
	}
}

func TestMutualTLS(t *testing.T) {
	pki := httpauthtest.NewPKI(t)
	srv := pki.StartTLS(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.TLS.PeerCertificates[0].Subject.CommonName)
	}))

	without, err := httpauth.Client(httpauth.Config{TLS: httpauth.TLS{CAFile: pki.CAFile}, Timeout: 5 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := without.Get(srv.URL); err == nil {
		resp.Body.Close()
		t.Fatalf("a client without a certificate got through: %s", resp.Status)
	} else if !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("a client without a certificate failed for another reason: %v", err)
	}

	with, err := httpauth.Client(httpauth.Config{Timeout: 5 * time.Second, TLS: httpauth.TLS{
		CAFile: pki.CAFile, CertFile: pki.ClientCertFile, KeyFile: pki.ClientKeyFile,
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := with.Get(srv.URL)
	if err != nil {
		t.Fatalf("a client with a certificate: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "syncd test client" {
		t.Fatalf("status %d, peer %q", resp.StatusCode, b)
	}

	// Without the CA the server itself is not trusted.
	untrusting, _ := httpauth.Client(httpauth.Config{Timeout: 5 * time.Second, TLS: httpauth.TLS{
		CertFile: pki.ClientCertFile, KeyFile: pki.ClientKeyFile,
	}}, nil)
	if resp, err := untrusting.Get(srv.URL); err == nil {
		resp.Body.Close()
		t.Fatal("a server signed by an unknown CA was trusted")
	}
}

func TestRateLimitSpacesRequests(t *testing.T) {
	var mu sync.Mutex
	var at []time.Time
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		at = append(at, time.Now())
		mu.Unlock()
	}))
	defer srv.Close()
	c, err := httpauth.Client(httpauth.Config{RateLimit: 20, Burst: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	const n = 6
	start := time.Now()
	for i := 0; i < n; i++ {
		resp, err := c.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	took := time.Since(start)
	// 20/s with a burst of 1: n requests need (n-1)×50ms = 250ms at least.
	// Loose: only the lower bound is checked, with slack for timer coarseness.
	if took < 200*time.Millisecond {
		t.Fatalf("%d requests at 20/s took %v", n, took)
	}
	t.Logf("%d requests at rate_limit 20, burst 1: %v (mean spacing %v)", n, took, at[n-1].Sub(at[0])/(n-1))
}

func TestCrossHostRedirectIsRefused(t *testing.T) {
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("credentials followed a redirect to another host: %v", r.Header.Get("Authorization"))
	}))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, strings.Replace(other.URL, "127.0.0.1", "localhost", 1)+"/x", http.StatusFound)
	}))
	defer srv.Close()
	c, _ := httpauth.Client(httpauth.Config{Auth: httpauth.Auth{Type: "bearer", TokenEnv: "T"}}, env(map[string]string{"T": "tok"}))
	if resp, err := c.Get(srv.URL); err == nil {
		resp.Body.Close()
		t.Fatal("redirect to another host followed")
	}
}

func TestConfigValidate(t *testing.T) {
	bad := []struct {
		cfg  httpauth.Config
		want string
	}{
		{httpauth.Config{TLS: httpauth.TLS{CertFile: "c.pem"}}, "cert_file and key_file"},
		{httpauth.Config{TLS: httpauth.TLS{KeyFile: "k.pem"}}, "cert_file and key_file"},
		{httpauth.Config{Auth: httpauth.Auth{Type: "oauth"}}, "auth.type"},
		{httpauth.Config{Auth: httpauth.Auth{Type: "bearer"}}, "auth.token_env: required"},
		{httpauth.Config{Auth: httpauth.Auth{Type: "basic", Username: "u"}}, "auth.password_env: required"},
		{httpauth.Config{Auth: httpauth.Auth{Type: "appkey", AppKey: "k"}}, "auth.app_secret_env: required"},
		{httpauth.Config{Auth: httpauth.Auth{Type: "appkey", AppKey: "k", AppSecretEnv: "S", Algorithm: "md5"}}, "auth.algorithm"},
		{httpauth.Config{Auth: httpauth.Auth{Type: "appkey", AppKey: "k", AppSecretEnv: "S", TokenEnv: "T"}}, "auth.token_env: not used"},
		{httpauth.Config{Auth: httpauth.Auth{TokenEnv: "T"}}, "auth.token_env: not used by auth.type none"},
		{httpauth.Config{RateLimit: -1}, "rate_limit"},
		{httpauth.Config{Burst: 3}, "burst: set without rate_limit"},
		{httpauth.Config{Timeout: -time.Second}, "timeout"},
	}
	for _, c := range bad {
		c.cfg.SetDefaults()
		err := c.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: err = %v, want %q", c.cfg, err, c.want)
		}
	}
	good := httpauth.Config{RateLimit: 2.5, Auth: httpauth.Auth{Type: "appkey", AppKey: "k", AppSecretEnv: "S"}}
	good.SetDefaults()
	if err := good.Validate(); err != nil || good.Auth.Algorithm != "hmac-sha256" || good.Burst != 1 || good.Timeout != 30*time.Second {
		t.Fatalf("defaults %+v, err %v", good, err)
	}
}
