// Package backoff retries transient failures with capped exponential
// backoff and full jitter, honouring a delay the far side asked for.
package backoff

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Policy says how often and how patiently to retry.
type Policy struct {
	MaxAttempts int           `mapstructure:"max_attempts"` // including the first; 1 = no retry
	Initial     time.Duration `mapstructure:"initial"`
	Max         time.Duration `mapstructure:"max"`
}

// SetDefaults fills unset fields.
func (p *Policy) SetDefaults() {
	if p.MaxAttempts == 0 {
		p.MaxAttempts = 5
	}
	if p.Initial == 0 {
		p.Initial = 500 * time.Millisecond
	}
	if p.Max == 0 {
		p.Max = 30 * time.Second
	}
}

// Validate checks the policy without I/O.
func (p *Policy) Validate() error {
	var errs []error
	if p.MaxAttempts < 1 || p.MaxAttempts > 100 {
		errs = append(errs, fmt.Errorf("max_attempts: %d not in 1..100", p.MaxAttempts))
	}
	if p.Initial <= 0 {
		errs = append(errs, errors.New("initial: must be positive"))
	}
	if p.Max < p.Initial {
		errs = append(errs, fmt.Errorf("max: %s is below initial %s", p.Max, p.Initial))
	}
	return errors.Join(errs...)
}

// Delay is the wait before retry number attempt (1-based): a random
// duration up to min(Max, Initial·2^(attempt-1)) ("full jitter"), so many
// clients retrying one server spread out.
func (p Policy) Delay(attempt int) time.Duration {
	d := p.Initial
	for i := 1; i < attempt && d < p.Max; i++ {
		d *= 2
	}
	d = min(d, p.Max)
	return d/2 + rand.N(d/2+1)
}

// Hinted is an error carrying the delay the far side asked for
// (HTTP Retry-After).
type Hinted interface {
	error
	RetryAfter() time.Duration
}

// RetryAfterError is a transient error carrying the delay the far side
// asked for; connectors and push targets return it for HTTP Retry-After.
type RetryAfterError struct {
	After time.Duration
	Err   error
}

func (e *RetryAfterError) Error() string { return e.Err.Error() }
func (e *RetryAfterError) Unwrap() error { return e.Err }

// RetryAfter is the delay asked for.
func (e *RetryAfterError) RetryAfter() time.Duration { return e.After }

// ParseRetryAfter reads an HTTP Retry-After header: delay-seconds or an
// HTTP-date. It returns 0 when the header is absent, unreadable or past.
func ParseRetryAfter(h string) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	if secs, err := strconv.Atoi(h); err == nil && secs >= 0 {
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

// Do calls fn until it succeeds, returns a permanent error (retryable says
// no), the attempts run out, or ctx ends. onRetry, if not nil, is told about
// each failure that will be retried and the wait before the next attempt.
func (p Policy) Do(ctx context.Context, fn func(ctx context.Context) error, retryable func(error) bool,
	onRetry func(attempt int, wait time.Duration, err error)) error {
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || !retryable(err) || attempt >= p.MaxAttempts {
			return err
		}
		wait := p.Delay(attempt)
		var h Hinted
		if errors.As(err, &h) && h.RetryAfter() > wait {
			wait = min(h.RetryAfter(), p.Max*4)
		}
		if onRetry != nil {
			onRetry(attempt, wait, err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return errors.Join(err, ctx.Err())
		case <-t.C:
		}
	}
}
