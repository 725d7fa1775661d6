// Package httpsrc reads a source system's HTTP/JSON API incrementally.
//
// The API contract (the sandbox's discipline system speaks it):
//
//	GET {url}?{since_param}=<RFC3339Nano>&{after_param}=<key>&{limit_param}=<n>
//	→ 200 {"<items_field>": [ {...}, ... ], "<more_field>": true|false}
//
// Items are ordered by (updated_at, key) and are those strictly after the
// pair given, so a cursor made of the last item's pair resumes exactly, even
// when many items share one timestamp.
package httpsrc

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/panjin-gov/syncd/internal/backoff"
	"github.com/panjin-gov/syncd/internal/connectors"
	"github.com/panjin-gov/syncd/internal/record"
)

// Config is the http source's part of a source's config.
type Config struct {
	URL          string        `mapstructure:"url"`
	Timeout      time.Duration `mapstructure:"timeout"`   // per request
	PageSize     int           `mapstructure:"page_size"` // items per request
	ItemsField   string        `mapstructure:"items_field"`
	MoreField    string        `mapstructure:"more_field"`
	KeyField     string        `mapstructure:"key_field"`
	UpdatedField string        `mapstructure:"updated_field"`
	SinceParam   string        `mapstructure:"since_param"`
	AfterParam   string        `mapstructure:"after_param"`
	LimitParam   string        `mapstructure:"limit_param"`
	// TokenEnv names the environment variable holding a bearer token; the
	// token itself never sits in the config file.
	TokenEnv string `mapstructure:"token_env"`
}

// SetDefaults fills unset fields with the sandbox/contract defaults.
func (c *Config) SetDefaults() {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.ItemsField, "items")
	def(&c.MoreField, "has_more")
	def(&c.KeyField, "id")
	def(&c.UpdatedField, "updated_at")
	def(&c.SinceParam, "updated_since")
	def(&c.AfterParam, "after_id")
	def(&c.LimitParam, "limit")
	if c.Timeout == 0 {
		c.Timeout = 30 * time.Second
	}
	if c.PageSize == 0 {
		c.PageSize = 200
	}
}

// Validate checks the config without I/O.
func (c *Config) Validate() error {
	var errs []error
	u, err := url.Parse(c.URL)
	if c.URL == "" {
		errs = append(errs, errors.New("url: required"))
	} else if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("url: %q is not an http(s) URL", c.URL))
	}
	if c.Timeout < 0 {
		errs = append(errs, errors.New("timeout: must be positive"))
	}
	if c.PageSize < 0 || c.PageSize > 10000 {
		errs = append(errs, fmt.Errorf("page_size: %d not in 1..10000", c.PageSize))
	}
	return errors.Join(errs...)
}

// Source reads one HTTP/JSON API.
type Source struct {
	name   string
	cfg    Config
	token  string
	client *http.Client
}

var _ connectors.Source = (*Source)(nil)

// New makes a source named name. token is the resolved bearer token ("" for none).
func New(name string, cfg Config, token string) (*Source, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Source{
		name:   name,
		cfg:    cfg,
		token:  token,
		client: &http.Client{Timeout: cfg.Timeout},
	}, nil
}

// cursor is the (updated_at, key) pair of the last item stored.
type cursor struct {
	Since string `json:"since"`
	After string `json:"after"`
}

// Fetch asks for the next page after cursor. Transport errors and 5xx/429
// answers are returned as transient (the runner retries with backoff);
// other 4xx answers and undecodable pages wrap connectors.ErrPermanent.
func (s *Source) Fetch(ctx context.Context, cur string, max int) (connectors.Batch, error) {
	var c cursor
	if cur != "" {
		if err := json.Unmarshal([]byte(cur), &c); err != nil {
			return connectors.Batch{}, fmt.Errorf("source %s: bad cursor %q: %w", s.name, cur, connectors.ErrPermanent)
		}
	}
	limit := s.cfg.PageSize
	if max > 0 && max < limit {
		limit = max
	}
	u, _ := url.Parse(s.cfg.URL)
	q := u.Query()
	q.Set(s.cfg.SinceParam, c.Since)
	q.Set(s.cfg.AfterParam, c.After)
	q.Set(s.cfg.LimitParam, strconv.Itoa(limit))
	u.RawQuery = q.Encode()

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return connectors.Batch{}, fmt.Errorf("source %s: %w: %w", s.name, err, connectors.ErrPermanent)
	}
	req.Header.Set("Accept", "application/json")
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return connectors.Batch{}, fmt.Errorf("source %s: GET page after %q: %w", s.name, c.After, err)
	}
	defer resp.Body.Close()
	// A page is bounded by page_size; 64 MiB guards against a runaway answer.
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return connectors.Batch{}, fmt.Errorf("source %s: read page after %q: %w", s.name, c.After, err)
	}
	if resp.StatusCode != http.StatusOK {
		err := fmt.Errorf("source %s: GET %s: %s: %s", s.name, redact(u), resp.Status, snippet(body))
		switch {
		case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
			if d := backoff.ParseRetryAfter(resp.Header.Get("Retry-After")); d > 0 {
				return connectors.Batch{}, &connectors.RetryAfterError{After: d, Err: err}
			}
			return connectors.Batch{}, err
		default:
			return connectors.Batch{}, fmt.Errorf("%w: %w", err, connectors.ErrPermanent)
		}
	}
	return s.decodePage(body, c)
}

func (s *Source) decodePage(body []byte, c cursor) (connectors.Batch, error) {
	var page map[string]json.RawMessage
	if err := json.Unmarshal(body, &page); err != nil {
		// A truncated body (a connection dropped mid-page) also lands here;
		// it is transient: the same page is asked for again.
		return connectors.Batch{}, fmt.Errorf("source %s: page after %q is not JSON: %w", s.name, c.After, err)
	}
	var items []json.RawMessage
	if raw, ok := page[s.cfg.ItemsField]; ok {
		if err := json.Unmarshal(raw, &items); err != nil {
			return connectors.Batch{}, fmt.Errorf("source %s: %q is not a list: %w", s.name, s.cfg.ItemsField, connectors.ErrPermanent)
		}
	}
	var more bool
	if raw, ok := page[s.cfg.MoreField]; ok {
		_ = json.Unmarshal(raw, &more)
	}
	now := time.Now()
	batch := connectors.Batch{Records: make([]record.Raw, 0, len(items)), More: more}
	next := c
	for i, item := range items {
		raw := record.Raw{Source: s.name, Payload: bytes.Clone(item), Encoding: "utf-8", FetchedAt: now}
		key, updated, err := s.keyOf(item)
		if err != nil {
			// Without its key and time an item cannot move the cursor; it
			// still goes on, keyed by content, so normalize rejects it with
			// a reason instead of it vanishing.
			sum := sha256.Sum256(item)
			raw.Key = "sha256:" + hex.EncodeToString(sum[:8])
			raw.Problem = fmt.Sprintf("item %d of page after %q: %v", i, c.After, err)
			batch.Records = append(batch.Records, raw)
			continue
		}
		raw.Key, raw.UpdatedAt = key, updated
		batch.Records = append(batch.Records, raw)
		next = cursor{Since: updated.Format(time.RFC3339Nano), After: key}
	}
	nb, _ := json.Marshal(next)
	batch.Next = string(nb)
	return batch, nil
}

// keyOf reads the key and updated-at of one item without decoding the rest.
func (s *Source) keyOf(item json.RawMessage) (string, time.Time, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(item, &fields); err != nil {
		return "", time.Time{}, fmt.Errorf("item is not an object")
	}
	var key any
	if err := json.Unmarshal(fields[s.cfg.KeyField], &key); err != nil || key == nil {
		return "", time.Time{}, fmt.Errorf("item has no %q", s.cfg.KeyField)
	}
	var ks string
	switch k := key.(type) {
	case string:
		ks = k
	case float64:
		ks = strconv.FormatFloat(k, 'f', -1, 64)
	default:
		return "", time.Time{}, fmt.Errorf("item %q is not a string or number", s.cfg.KeyField)
	}
	var us string
	if err := json.Unmarshal(fields[s.cfg.UpdatedField], &us); err != nil {
		return "", time.Time{}, fmt.Errorf("item %s has no %q", ks, s.cfg.UpdatedField)
	}
	t, err := time.Parse(time.RFC3339Nano, us)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("item %s: %q %q is not RFC 3339", ks, s.cfg.UpdatedField, us)
	}
	return ks, t, nil
}

// Close releases idle connections.
func (s *Source) Close(context.Context) error {
	s.client.CloseIdleConnections()
	return nil
}

func snippet(b []byte) string {
	const n = 200
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// redact drops the query from a URL for messages: it may carry tokens.
func redact(u *url.URL) string {
	c := *u
	c.RawQuery = ""
	return c.String()
}
