package backoff

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"
)

type hinted struct{ d time.Duration }

func (h hinted) Error() string             { return "slow down" }
func (h hinted) RetryAfter() time.Duration { return h.d }

func TestDelayIsBoundedAndGrows(t *testing.T) {
	p := Policy{MaxAttempts: 10, Initial: 100 * time.Millisecond, Max: time.Second}
	for attempt := 1; attempt <= 10; attempt++ {
		ceiling := min(p.Initial<<(attempt-1), p.Max)
		for range 50 {
			d := p.Delay(attempt)
			if d < ceiling/2 || d > ceiling {
				t.Fatalf("attempt %d: delay %s outside [%s, %s]", attempt, d, ceiling/2, ceiling)
			}
		}
	}
}

func TestDoStopsOnPermanentAndRetriesTransient(t *testing.T) {
	p := Policy{MaxAttempts: 4, Initial: time.Millisecond, Max: 2 * time.Millisecond}
	permanent := errors.New("permanent")
	calls := 0
	err := p.Do(context.Background(), func(context.Context) error { calls++; return permanent },
		func(err error) bool { return !errors.Is(err, permanent) }, nil)
	if !errors.Is(err, permanent) || calls != 1 {
		t.Fatalf("permanent: calls=%d err=%v", calls, err)
	}
	calls = 0
	retries := 0
	err = p.Do(context.Background(), func(context.Context) error {
		calls++
		if calls < 3 {
			return errors.New("flaky")
		}
		return nil
	}, func(error) bool { return true }, func(int, time.Duration, error) { retries++ })
	if err != nil || calls != 3 || retries != 2 {
		t.Fatalf("transient: calls=%d retries=%d err=%v", calls, retries, err)
	}
	calls = 0
	err = p.Do(context.Background(), func(context.Context) error { calls++; return errors.New("down") },
		func(error) bool { return true }, nil)
	if err == nil || calls != 4 {
		t.Fatalf("exhausted: calls=%d err=%v", calls, err)
	}
}

func TestDoHonoursRetryAfter(t *testing.T) {
	p := Policy{MaxAttempts: 2, Initial: time.Millisecond, Max: time.Second}
	var waited time.Duration
	_ = p.Do(context.Background(), func(context.Context) error { return hinted{300 * time.Millisecond} },
		func(error) bool { return true }, func(_ int, w time.Duration, _ error) { waited = w })
	if waited != 300*time.Millisecond {
		t.Fatalf("waited %s, want the 300ms the server asked for", waited)
	}
}

func TestDoEndsWithContext(t *testing.T) {
	p := Policy{MaxAttempts: 100, Initial: time.Hour, Max: time.Hour}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err := p.Do(ctx, func(context.Context) error { return errors.New("down") }, func(error) bool { return true }, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
}

func TestParseRetryAfter(t *testing.T) {
	future := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	for _, c := range []struct {
		h        string
		min, max time.Duration
	}{
		{"", 0, 0}, {"7", 7 * time.Second, 7 * time.Second}, {" 3 ", 3 * time.Second, 3 * time.Second},
		{"-1", 0, 0}, {"soon", 0, 0}, {"Wed, 21 Oct 2015 07:28:00 GMT", 0, 0},
		{future, 80 * time.Second, 90 * time.Second},
	} {
		if d := ParseRetryAfter(c.h); d < c.min || d > c.max {
			t.Errorf("%q: %s, want %s..%s", c.h, d, c.min, c.max)
		}
	}
}
