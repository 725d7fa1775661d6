// Package httpsrc reads a source system's HTTP/JSON API incrementally, in
// one of three pagination styles chosen by `pagination`. Every answer is a
// JSON object whose <items_field> is a list of items; each item carries
// <key_field> (string or number) and <updated_field> (RFC 3339).
//
// keyset (default; the sandbox's discipline system speaks it):
//
//	GET {url}?{since_param}=<RFC3339Nano>&{after_param}=<key>&{limit_param}=<n>
//	→ 200 {"<items_field>": [ {...}, ... ], "<more_field>": true|false}
//
// Items are ordered by (updated_at, key) and are those strictly after the
// pair given, so a cursor made of the last item's pair resumes exactly, even
// when many items share one timestamp.
//
// page_token:
//
//	GET {url}?{since_param}=..&{after_param}=..&{limit_param}=<n>        first page of a chain
//	GET {url}?{page_token_param}=<token>&{limit_param}=<n>               the pages after it
//	→ 200 {"<items_field>": [...], "<next_page_token_field>": "<token>"|""|null, "<more_field>": ...}
//
// The cursor keeps the token to ask for next AND the (updated_at, key) pair
// of the last item read. While the server hands out tokens they are
// followed. When a chain ends (an empty or absent token) the next fetch
// starts a new chain from the pair, so a catch-up run asks only for what
// changed. A token the server no longer accepts (any 4xx other than 401,
// 403 and 429 to a request that carried one: expired, unknown) is dropped
// and the same fetch starts again from the pair, once. A final token that
// comes with "<more_field>": false is kept and polled with next time. So a
// page-token API resumes incrementally only if its first page honours
// since/after; one that ignores them is re-read from its beginning after
// each catch-up (still at-least-once, as storage is idempotent, but the
// cost of a run then grows with the source, not with its changes — prefer
// keyset for such a system). More is <more_field> when the answer has it,
// else "a token came back". Pages with no items but a token are followed
// within one fetch (up to 100), since the runner stops at an empty batch.
//
// offset:
//
//	GET {url}?{offset_param}=<n>&{limit_param}=<n> → 200 {"<items_field>": [...], "<more_field>": ...}
//
// The cursor is the count of items read so far (and the last item's pair,
// for information). Offset paging is only safe over a stable order in
// which items are only ever appended: if an item before the offset is
// removed, or an update moves it to the end (ordering by updated_at does
// that), every later item shifts down one place and one is skipped without
// a trace; an insertion before the offset makes one item come twice. Use it
// for append-only logs ordered by an immutable sequence; otherwise use
// keyset. More is <more_field> when the answer has it, else "the page was
// full".
//
// Authentication, TLS and the request rate limit come from httpauth (keys
// timeout, rate_limit, burst, tls, auth beside url).
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
	"github.com/panjin-gov/syncd/internal/httpauth"
	"github.com/panjin-gov/syncd/internal/record"
)

// Pagination styles.
const (
	Keyset    = "keyset"
	PageToken = "page_token"
	Offset    = "offset"
)

// Config is the http source's part of a source's config.
type Config struct {
	// Timeout, rate limit, TLS and auth; their keys sit beside url.
	httpauth.Config `mapstructure:",squash"`

	URL          string `mapstructure:"url"`
	PageSize     int    `mapstructure:"page_size"` // items per request
	Pagination   string `mapstructure:"pagination"`
	ItemsField   string `mapstructure:"items_field"`
	MoreField    string `mapstructure:"more_field"`
	KeyField     string `mapstructure:"key_field"`
	UpdatedField string `mapstructure:"updated_field"`
	SinceParam   string `mapstructure:"since_param"`
	AfterParam   string `mapstructure:"after_param"`
	LimitParam   string `mapstructure:"limit_param"`
	// page_token pagination
	PageTokenParam     string `mapstructure:"page_token_param"`
	NextPageTokenField string `mapstructure:"next_page_token_field"`
	// offset pagination
	OffsetParam string `mapstructure:"offset_param"`
	// TokenEnv is the older way to name a bearer token's environment
	// variable, kept working: it means auth.type bearer with this
	// auth.token_env, except that an unset variable means no auth (as it
	// always did) rather than an error.
	TokenEnv string `mapstructure:"token_env"`
}

// SetDefaults fills unset fields with the sandbox/contract defaults.
func (c *Config) SetDefaults() {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	c.Config.SetDefaults()
	def(&c.Pagination, Keyset)
	def(&c.ItemsField, "items")
	def(&c.MoreField, "has_more")
	def(&c.KeyField, "id")
	def(&c.UpdatedField, "updated_at")
	def(&c.SinceParam, "updated_since")
	def(&c.AfterParam, "after_id")
	def(&c.LimitParam, "limit")
	def(&c.PageTokenParam, "page_token")
	def(&c.NextPageTokenField, "next_page_token")
	def(&c.OffsetParam, "offset")
	if c.PageSize == 0 {
		c.PageSize = 200
	}
}

// Validate checks the config without I/O.
func (c *Config) Validate() error {
	var errs []error
	if err := httpauth.ValidateURL(c.URL); err != nil {
		errs = append(errs, err)
	}
	if c.PageSize < 0 || c.PageSize > 10000 {
		errs = append(errs, fmt.Errorf("page_size: %d not in 1..10000", c.PageSize))
	}
	switch c.Pagination {
	case "", Keyset, PageToken, Offset:
	default:
		errs = append(errs, fmt.Errorf("pagination: %q is not keyset, page_token or offset", c.Pagination))
	}
	if err := c.Config.ValidateLegacyToken(c.TokenEnv); err != nil {
		errs = append(errs, err)
	}
	if err := c.Config.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Source reads one HTTP/JSON API.
type Source struct {
	name   string
	cfg    Config
	client *http.Client
}

var _ connectors.Source = (*Source)(nil)

// New makes a source named name. resolve turns the environment variable
// names in cfg (auth.*_env, token_env) into secrets; pass config.Secret.
// It reads the TLS files named in cfg.
func New(name string, cfg Config, resolve func(envName string) string) (*Source, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	client, err := httpauth.Client(cfg.Config.WithLegacyToken(cfg.TokenEnv, resolve), resolve)
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", name, err)
	}
	return &Source{name: name, cfg: cfg, client: client}, nil
}

// cursor is the position after the last item stored: its (updated_at, key)
// pair in every style, plus the next page token or the item count.
type cursor struct {
	Since  string `json:"since"`
	After  string `json:"after"`
	Token  string `json:"token,omitempty"`
	Offset int64  `json:"offset,omitempty"`
}

// maxEmptyPages bounds how many item-less pages with a token one fetch follows.
const maxEmptyPages = 100

// Fetch asks for the next page after cursor. Transport errors and 5xx/429
// answers are returned as transient (the runner retries with backoff);
// other 4xx answers and undecodable pages wrap connectors.ErrPermanent.
func (s *Source) Fetch(ctx context.Context, cur string, max int) (connectors.Batch, error) {
	var c cursor
	if cur != "" {
		if err := json.Unmarshal([]byte(cur), &c); err != nil || c.Offset < 0 {
			return connectors.Batch{}, fmt.Errorf("source %s: bad cursor %q: %w", s.name, cur, connectors.ErrPermanent)
		}
	}
	limit := s.cfg.PageSize
	if max > 0 && max < limit {
		limit = max
	}
	switch s.cfg.Pagination {
	case PageToken:
		return s.fetchToken(ctx, c, limit)
	case Offset:
		return s.fetchOffset(ctx, c, limit)
	default:
		return s.fetchKeyset(ctx, c, limit)
	}
}

func (s *Source) fetchKeyset(ctx context.Context, c cursor, limit int) (connectors.Batch, error) {
	c.Token, c.Offset = "", 0 // left by another style; meaningless here
	page, err := s.get(ctx, "page after "+strconv.Quote(c.After), func(q url.Values) {
		q.Set(s.cfg.SinceParam, c.Since)
		q.Set(s.cfg.AfterParam, c.After)
		q.Set(s.cfg.LimitParam, strconv.Itoa(limit))
	})
	if err != nil {
		return connectors.Batch{}, err
	}
	b, next, err := s.decodeItems(page, c)
	if err != nil {
		return connectors.Batch{}, err
	}
	b.More, _ = s.more(page)
	return s.withNext(b, next), nil
}

func (s *Source) fetchToken(ctx context.Context, c cursor, limit int) (connectors.Batch, error) {
	c.Offset = 0
	restarted := false
	for empty := 0; ; {
		what := "page after " + strconv.Quote(c.After)
		if c.Token != "" {
			what = "page by token"
		}
		sentToken := c.Token
		page, err := s.get(ctx, what, func(q url.Values) {
			if sentToken != "" {
				q.Set(s.cfg.PageTokenParam, sentToken)
			} else {
				q.Set(s.cfg.SinceParam, c.Since)
				q.Set(s.cfg.AfterParam, c.After)
			}
			q.Set(s.cfg.LimitParam, strconv.Itoa(limit))
		})
		var se *statusError
		if sentToken != "" && !restarted && errors.As(err, &se) && se.tokenRefused() {
			// An expired or unknown token: start a new chain from the
			// last item read, which loses nothing and repeats nothing.
			c.Token, restarted = "", true
			continue
		}
		if err != nil {
			return connectors.Batch{}, err
		}
		b, next, err := s.decodeItems(page, c)
		if err != nil {
			return connectors.Batch{}, err
		}
		var token string
		if raw, ok := page[s.cfg.NextPageTokenField]; ok && string(raw) != "null" {
			if err := json.Unmarshal(raw, &token); err != nil {
				return connectors.Batch{}, fmt.Errorf("source %s: %q is not a string: %w", s.name, s.cfg.NextPageTokenField, connectors.ErrPermanent)
			}
		}
		more, ok := s.more(page)
		if !ok {
			more = token != ""
		}
		next.Token = token
		if len(b.Records) == 0 && token != "" && more && empty < maxEmptyPages {
			empty++
			c = next
			continue
		}
		b.More = more
		return s.withNext(b, next), nil
	}
}

func (s *Source) fetchOffset(ctx context.Context, c cursor, limit int) (connectors.Batch, error) {
	c.Token = ""
	page, err := s.get(ctx, "page at offset "+strconv.FormatInt(c.Offset, 10), func(q url.Values) {
		q.Set(s.cfg.OffsetParam, strconv.FormatInt(c.Offset, 10))
		q.Set(s.cfg.LimitParam, strconv.Itoa(limit))
	})
	if err != nil {
		return connectors.Batch{}, err
	}
	b, next, err := s.decodeItems(page, c)
	if err != nil {
		return connectors.Batch{}, err
	}
	// Every item takes a place, placeable or not.
	next.Offset = c.Offset + int64(len(b.Records))
	more, ok := s.more(page)
	if !ok {
		more = len(b.Records) >= limit
	}
	b.More = more
	return s.withNext(b, next), nil
}

func (s *Source) withNext(b connectors.Batch, next cursor) connectors.Batch {
	nb, _ := json.Marshal(next)
	b.Next = string(nb)
	return b
}

// more reads <more_field>; ok is false when the answer does not have it.
func (s *Source) more(page map[string]json.RawMessage) (more, ok bool) {
	raw, ok := page[s.cfg.MoreField]
	if !ok {
		return false, false
	}
	_ = json.Unmarshal(raw, &more)
	return more, true
}

// statusError is a non-200 answer.
type statusError struct {
	code int
	err  error
}

func (e *statusError) Error() string { return e.err.Error() }
func (e *statusError) Unwrap() error { return e.err }

// tokenRefused reports an answer that, to a request carrying a page token,
// means the token is no good (rather than "not now" or "not you").
func (e *statusError) tokenRefused() bool {
	return e.code >= 400 && e.code < 500 && e.code != http.StatusUnauthorized &&
		e.code != http.StatusForbidden && e.code != http.StatusTooManyRequests
}

// get asks for one page with the query set adds to the URL's own, and
// decodes the JSON object. what names the page in errors.
func (s *Source) get(ctx context.Context, what string, set func(url.Values)) (map[string]json.RawMessage, error) {
	u, _ := url.Parse(s.cfg.URL)
	q := u.Query()
	set(q)
	u.RawQuery = q.Encode()

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("source %s: %w: %w", s.name, err, connectors.ErrPermanent)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("source %s: GET %s: %w", s.name, what, err)
	}
	defer resp.Body.Close()
	// A page is bounded by page_size; 64 MiB guards against a runaway answer.
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("source %s: read %s: %w", s.name, what, err)
	}
	if resp.StatusCode != http.StatusOK {
		err := fmt.Errorf("source %s: GET %s: %s: %s", s.name, redact(u), resp.Status, snippet(body))
		switch {
		case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
			if d := backoff.ParseRetryAfter(resp.Header.Get("Retry-After")); d > 0 {
				return nil, &connectors.RetryAfterError{After: d, Err: err}
			}
			return nil, &statusError{code: resp.StatusCode, err: err}
		default:
			return nil, &statusError{code: resp.StatusCode, err: fmt.Errorf("%w: %w", err, connectors.ErrPermanent)}
		}
	}
	var page map[string]json.RawMessage
	if err := json.Unmarshal(body, &page); err != nil {
		// A truncated body (a connection dropped mid-page) also lands here;
		// it is transient: the same page is asked for again.
		return nil, fmt.Errorf("source %s: %s is not JSON: %w", s.name, what, err)
	}
	return page, nil
}

// decodeItems turns the page's items into raw records and returns the
// cursor c moved to the last placeable item (token and offset as in c).
func (s *Source) decodeItems(page map[string]json.RawMessage, c cursor) (connectors.Batch, cursor, error) {
	var items []json.RawMessage
	if raw, ok := page[s.cfg.ItemsField]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &items); err != nil {
			return connectors.Batch{}, c, fmt.Errorf("source %s: %q is not a list: %w", s.name, s.cfg.ItemsField, connectors.ErrPermanent)
		}
	}
	now := time.Now()
	batch := connectors.Batch{Records: make([]record.Raw, 0, len(items))}
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
		next.Since, next.After = updated.Format(time.RFC3339Nano), key
	}
	return batch, next, nil
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
