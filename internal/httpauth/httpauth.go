// Package httpauth holds what syncd's HTTP clients share on the wire in the
// GB/T 39443 "service" style: TLS (with client certificates), credentials
// (bearer, basic, app-key signing with HMAC-SHA256 or HMAC-SM3), a request
// rate limit and a timeout, built into one *http.Client by Client. It also
// verifies app-key signatures for servers (Verifier), so the sandbox
// platforms check exactly the scheme syncd signs with.
//
// Secrets never sit in config: config names environment variables, and the
// caller passes a resolver (config.Secret) that turns a name into a value.
// The package depends on no other syncd package.
package httpauth

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"golang.org/x/time/rate"
)

// Config is the transport part of an HTTP source's or target's config. It is
// meant to be embedded with `mapstructure:",squash"`, so its keys sit beside
// url: timeout, rate_limit, burst, tls: {...}, auth: {...}.
type Config struct {
	Timeout time.Duration `mapstructure:"timeout"` // per request, rate-limit wait included
	// RateLimit caps requests per second (fractions allowed: 0.5 is one
	// request every 2 s); 0 means no limit. Burst is how many may go at
	// once after a quiet spell.
	RateLimit float64 `mapstructure:"rate_limit"`
	Burst     int     `mapstructure:"burst"`
	TLS       TLS     `mapstructure:"tls"`
	Auth      Auth    `mapstructure:"auth"`
}

// SetDefaults fills unset fields: timeout 30s, burst 1 when rate-limited,
// auth type none, algorithm hmac-sha256 for appkey.
func (c *Config) SetDefaults() {
	if c.Timeout == 0 {
		c.Timeout = 30 * time.Second
	}
	if c.RateLimit > 0 && c.Burst == 0 {
		c.Burst = 1
	}
	c.Auth.SetDefaults()
}

// Validate checks the config without I/O. Messages name keys relative to
// the embedding block (timeout, tls.cert_file, auth.type, ...).
func (c *Config) Validate() error {
	var errs []error
	if c.Timeout < 0 {
		errs = append(errs, errors.New("timeout: must be positive"))
	}
	if c.RateLimit < 0 {
		errs = append(errs, fmt.Errorf("rate_limit: %v must not be negative (0 = no limit)", c.RateLimit))
	}
	if c.Burst < 0 {
		errs = append(errs, fmt.Errorf("burst: %d must not be negative", c.Burst))
	}
	if c.Burst > 0 && c.RateLimit == 0 {
		errs = append(errs, errors.New("burst: set without rate_limit"))
	}
	if err := c.TLS.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Auth.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Limiter returns the rate limiter the config asks for, nil for none.
func (c *Config) Limiter() *rate.Limiter {
	if c.RateLimit <= 0 {
		return nil
	}
	return rate.NewLimiter(rate.Limit(c.RateLimit), max(c.Burst, 1))
}

// Client builds an HTTP client from cfg: TLS from its files, credentials
// resolved through resolve (config.Secret), the rate limit, the timeout.
// It reads the TLS files, so it belongs in a constructor, not in Validate.
// Redirects to another host are refused: the credentials added to every
// request must not follow a redirect off the host they were meant for.
func Client(cfg Config, resolve func(envName string) string) (*http.Client, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	creds, err := cfg.Auth.Credentials(resolve)
	if err != nil {
		return nil, err
	}
	tc, err := cfg.TLS.ClientConfig()
	if err != nil {
		return nil, err
	}
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.TLSClientConfig = tc
	return &http.Client{
		Timeout:       cfg.Timeout,
		Transport:     &Transport{Base: base, Credentials: creds, Limiter: cfg.Limiter()},
		CheckRedirect: sameHostRedirects,
	}, nil
}

func sameHostRedirects(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	if req.URL.Host != via[0].URL.Host || req.URL.Scheme != via[0].URL.Scheme {
		return fmt.Errorf("redirect to %s://%s refused: credentials are for %s://%s",
			req.URL.Scheme, req.URL.Host, via[0].URL.Scheme, via[0].URL.Host)
	}
	return nil
}

// ValidateURL checks an endpoint's url key: set, and an http(s) URL with a
// host. Its errors start with "url: ".
func ValidateURL(s string) error {
	if s == "" {
		return errors.New("url: required")
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("url: %q is not an http(s) URL", s)
	}
	return nil
}

// ValidateLegacyToken checks the older top-level token_env key (a bearer
// token's variable) against c: it cannot be combined with an auth.type.
func (c *Config) ValidateLegacyToken(tokenEnv string) error {
	if tokenEnv != "" && c.Auth.Type != "" && c.Auth.Type != TypeNone {
		return fmt.Errorf("token_env: set together with auth.type %s; use auth alone", c.Auth.Type)
	}
	return nil
}

// WithLegacyToken is c with the older token_env key applied: bearer auth
// from that variable when no auth.type is set and the variable holds a
// token (an unset variable means no auth, as it always did).
func (c *Config) WithLegacyToken(tokenEnv string, resolve func(envName string) string) Config {
	out := *c
	if tokenEnv != "" && out.Auth.Type == TypeNone && resolve != nil && resolve(tokenEnv) != "" {
		out.Auth = Auth{Type: TypeBearer, TokenEnv: tokenEnv}
	}
	return out
}
