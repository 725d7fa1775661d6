// Package httpjson delivers record batches to a platform's HTTP JSON
// service interface (GB/T 39443 "service" style) and reads per-record
// receipts from its answer.
//
//	POST {url}  Authorization: Bearer <token>
//	{"batch_id": "...", "records": [{"key": "<record_id>:<version>", "op": "add|update|withdraw",
//	                                 "record_id": "...", "version": 3, "data": {"CF_...": ...}}]}
//	→ 200 {"batch_id": "...", "receipts": [{"key": "...", "status": "accepted|rejected", "code": "", "message": ""}]}
package httpjson

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/panjin-gov/syncd/internal/backoff"
	"github.com/panjin-gov/syncd/internal/push"
)

// Config is the HTTP JSON target's part of a target's config.
type Config struct {
	URL     string        `mapstructure:"url"`
	Timeout time.Duration `mapstructure:"timeout"`
	// TokenEnv names the environment variable holding the bearer token.
	TokenEnv string `mapstructure:"token_env"`
}

// SetDefaults fills unset fields.
func (c *Config) SetDefaults() {
	if c.Timeout == 0 {
		c.Timeout = 30 * time.Second
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
	return errors.Join(errs...)
}

// Target is one platform's HTTP JSON endpoint.
type Target struct {
	cfg    Config
	token  string
	client *http.Client
}

var _ push.Target = (*Target)(nil)

// New makes a target; token is the resolved bearer token ("" for none).
func New(cfg Config, token string) (*Target, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Target{cfg: cfg, token: token, client: &http.Client{Timeout: cfg.Timeout}}, nil
}

type wireRecord struct {
	Key      string         `json:"key"`
	Op       string         `json:"op"`
	RecordID string         `json:"record_id"`
	Version  uint64         `json:"version"`
	Data     map[string]any `json:"data,omitempty"`
}

type wireReceipt struct {
	Key     string `json:"key"`
	Status  string `json:"status"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Send posts one batch. 5xx, 429 and transport errors are transient; other
// non-200 answers are permanent (push.ErrPermanent).
func (t *Target) Send(ctx context.Context, batchID string, items []push.Item) ([]push.Receipt, error) {
	body := struct {
		BatchID string       `json:"batch_id"`
		Records []wireRecord `json:"records"`
	}{BatchID: batchID, Records: make([]wireRecord, len(items))}
	for i, it := range items {
		body.Records[i] = wireRecord{Key: it.Key, Op: string(it.Op), RecordID: it.Record.RecordID, Version: it.Record.Version, Data: it.Data}
	}
	buf, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encode batch %s: %w: %w", batchID, err, push.ErrPermanent)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.cfg.URL, bytes.NewReader(buf))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", err, push.ErrPermanent)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("Idempotency-Key", batchID)
	if t.token != "" {
		req.Header.Set("Authorization", "Bearer "+t.token)
	}
	resp, err := t.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("POST batch %s: %w", batchID, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return nil, fmt.Errorf("read answer to batch %s: %w", batchID, err)
	}
	if resp.StatusCode != http.StatusOK {
		err := fmt.Errorf("POST batch %s: %s: %s", batchID, resp.Status, snippet(raw))
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
			if d := backoff.ParseRetryAfter(resp.Header.Get("Retry-After")); d > 0 {
				return nil, &push.RetryAfterError{After: d, Err: err}
			}
			return nil, err
		}
		return nil, fmt.Errorf("%w: %w", err, push.ErrPermanent)
	}
	var answer struct {
		Receipts []wireReceipt `json:"receipts"`
	}
	if err := json.Unmarshal(raw, &answer); err != nil {
		// A 200 we cannot read tells us nothing about what was applied;
		// the batch is retried, which the idempotency keys make safe.
		return nil, fmt.Errorf("answer to batch %s is not JSON: %w", batchID, err)
	}
	out := make([]push.Receipt, 0, len(answer.Receipts))
	for _, rc := range answer.Receipts {
		out = append(out, push.Receipt{Key: rc.Key, Accepted: rc.Status == "accepted", Code: rc.Code, Message: rc.Message})
	}
	return out, nil
}

// Close releases idle connections.
func (t *Target) Close(context.Context) error {
	t.client.CloseIdleConnections()
	return nil
}

func snippet(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "…"
	}
	return string(b)
}
