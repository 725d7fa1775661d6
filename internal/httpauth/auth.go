package httpauth

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"

	"golang.org/x/time/rate"
)

// Auth types.
const (
	TypeNone   = "none"
	TypeBearer = "bearer"
	TypeBasic  = "basic"
	TypeAppKey = "appkey" // app key + timestamp + nonce + HMAC signature
)

// Auth says how a client proves who it is. Secrets are named by environment
// variable (*_env) and resolved when the client is built.
type Auth struct {
	Type string `mapstructure:"type"` // none (default), bearer, basic, appkey
	// bearer
	TokenEnv string `mapstructure:"token_env"`
	// basic
	Username    string `mapstructure:"username"`
	PasswordEnv string `mapstructure:"password_env"`
	// appkey
	AppKey       string `mapstructure:"app_key"`
	AppSecretEnv string `mapstructure:"app_secret_env"`
	Algorithm    string `mapstructure:"algorithm"` // hmac-sha256 (default) or hmac-sm3
}

// SetDefaults fills unset fields.
func (a *Auth) SetDefaults() {
	if a.Type == "" {
		a.Type = TypeNone
	}
	if a.Type == TypeAppKey && a.Algorithm == "" {
		a.Algorithm = AlgHMACSHA256
	}
}

// authKeys lists, per auth type, the keys it uses and whether each is
// required; any other key set is an error.
var authKeys = map[string]map[string]bool{
	TypeNone:   {},
	TypeBearer: {"token_env": true},
	TypeBasic:  {"username": true, "password_env": true},
	TypeAppKey: {"app_key": true, "app_secret_env": true, "algorithm": false},
}

// Validate checks the config without I/O: the keys a type needs are set and
// no key belongs to another type (a token_env left over from a switch to
// appkey would otherwise be silently ignored).
func (a Auth) Validate() error {
	var errs []error
	uses, known := authKeys[a.Type]
	if !known && a.Type != "" { // "" is none before SetDefaults

		return fmt.Errorf("auth.type: %q is not none, bearer, basic or appkey", a.Type)
	}
	for _, k := range []struct{ key, v string }{
		{"token_env", a.TokenEnv}, {"username", a.Username}, {"password_env", a.PasswordEnv},
		{"app_key", a.AppKey}, {"app_secret_env", a.AppSecretEnv}, {"algorithm", a.Algorithm},
	} {
		required, used := uses[k.key]
		switch {
		case used && required && k.v == "":
			errs = append(errs, fmt.Errorf("auth.%s: required for auth.type %s", k.key, a.Type))
		case !used && k.v != "":
			errs = append(errs, fmt.Errorf("auth.%s: not used by auth.type %s", k.key, a.Type))
		}
	}
	if a.Type == TypeAppKey && a.Algorithm != "" && a.Algorithm != AlgHMACSHA256 && a.Algorithm != AlgHMACSM3 {
		errs = append(errs, fmt.Errorf("auth.algorithm: %q is not %s or %s", a.Algorithm, AlgHMACSHA256, AlgHMACSM3))
	}
	return errors.Join(errs...)
}

// Credentials are an Auth with its secrets resolved. Build them with
// Auth.Credentials, or directly in tests.
type Credentials struct {
	Type      string
	Token     string // bearer
	Username  string // basic
	Password  string // basic
	AppKey    string // appkey
	AppSecret string // appkey
	Algorithm string // appkey: AlgHMACSHA256 (default) or AlgHMACSM3
}

// Credentials resolves the secrets a names through resolve. A named variable
// that is unset or empty is an error: a platform would only answer 401.
func (a Auth) Credentials(resolve func(envName string) string) (Credentials, error) {
	a.SetDefaults()
	if err := a.Validate(); err != nil {
		return Credentials{}, err
	}
	if resolve == nil {
		resolve = func(string) string { return "" }
	}
	secret := func(key, env string) (string, error) {
		v := resolve(env)
		if v == "" {
			return "", fmt.Errorf("auth.%s: environment variable %s is unset or empty", key, env)
		}
		return v, nil
	}
	c := Credentials{Type: a.Type, Username: a.Username, AppKey: a.AppKey, Algorithm: a.Algorithm}
	var err error
	switch a.Type {
	case TypeBearer:
		c.Token, err = secret("token_env", a.TokenEnv)
	case TypeBasic:
		c.Password, err = secret("password_env", a.PasswordEnv)
	case TypeAppKey:
		c.AppSecret, err = secret("app_secret_env", a.AppSecretEnv)
	}
	return c, err
}

// Transport decorates each request with Credentials after waiting for the
// Limiter (so an app-key timestamp is taken after the wait, not before).
// It clones the request rather than modifying the caller's.
type Transport struct {
	Base        http.RoundTripper // nil: http.DefaultTransport
	Credentials Credentials
	Limiter     *rate.Limiter // nil: no limit
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	closeBody := func() {
		if req.Body != nil {
			req.Body.Close()
		}
	}
	if t.Limiter != nil {
		if err := t.Limiter.Wait(req.Context()); err != nil {
			closeBody()
			return nil, fmt.Errorf("rate limit: %w", err)
		}
	}
	r := req.Clone(req.Context())
	switch t.Credentials.Type {
	case TypeBearer:
		r.Header.Set("Authorization", "Bearer "+t.Credentials.Token)
	case TypeBasic:
		r.SetBasicAuth(t.Credentials.Username, t.Credentials.Password)
	case TypeAppKey:
		body, err := readBody(req, r)
		if err != nil {
			closeBody()
			return nil, err
		}
		s := Signer{AppKey: t.Credentials.AppKey, Secret: t.Credentials.AppSecret, Algorithm: t.Credentials.Algorithm}
		if err := s.Sign(r, body); err != nil {
			closeBody()
			return nil, err
		}
	}
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(r)
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach Base.
func (t *Transport) CloseIdleConnections() {
	type closeIdler interface{ CloseIdleConnections() }
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	if c, ok := base.(closeIdler); ok {
		c.CloseIdleConnections()
	}
}

// readBody returns the body of req for signing, leaving clone with a body
// that still reads in full. Requests built from a bytes.Reader (as syncd's
// are) carry GetBody, so the original body is not touched.
func readBody(req, clone *http.Request) ([]byte, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return nil, nil
	}
	if req.GetBody != nil {
		rc, err := req.GetBody()
		if err != nil {
			return nil, fmt.Errorf("sign: copy body: %w", err)
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		if err != nil {
			return nil, fmt.Errorf("sign: read body: %w", err)
		}
		return b, nil
	}
	b, err := io.ReadAll(req.Body)
	req.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("sign: read body: %w", err)
	}
	clone.Body = io.NopCloser(bytes.NewReader(b))
	clone.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	clone.ContentLength = int64(len(b))
	return b, nil
}
