package push

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrCircuitOpen is returned by Run while a target's circuit breaker is
// open: the platform failed too often in a row and is left alone until the
// cool-down ends.
var ErrCircuitOpen = errors.New("circuit open: platform failing, not contacted until cool-down ends")

// BreakerConfig configures a target's circuit breaker.
type BreakerConfig struct {
	// Failures is how many consecutive batches failing in transport (after
	// their retries) open the circuit; 0 disables the breaker.
	Failures int `mapstructure:"failures"`
	// Cooldown is how long an open circuit stays open. After it one probe
	// batch is let through (half-open): success closes the circuit, failure
	// opens it for another cool-down.
	Cooldown time.Duration `mapstructure:"cooldown"`
}

// SetDefaults: open after 3 failed batches, for 5 minutes.
func (c *BreakerConfig) SetDefaults() {
	if c.Failures == 0 {
		c.Failures = 3
	}
	if c.Cooldown == 0 {
		c.Cooldown = 5 * time.Minute
	}
}

// Validate checks ranges.
func (c *BreakerConfig) Validate() error {
	var errs []error
	if c.Failures < 0 {
		errs = append(errs, fmt.Errorf("failures: %d is negative", c.Failures))
	}
	if c.Cooldown < 0 {
		errs = append(errs, fmt.Errorf("cooldown: %s is negative", c.Cooldown))
	}
	return errors.Join(errs...)
}

// Breaker is a consecutive-failure circuit breaker. It lives as long as the
// process (one per target), so it spans push runs. Safe for concurrent use.
type Breaker struct {
	cfg BreakerConfig
	now func() time.Time

	mu        sync.Mutex
	failures  int
	openUntil time.Time
}

// NewBreaker returns a closed breaker; a nil *Breaker never opens.
func NewBreaker(cfg BreakerConfig) *Breaker {
	return &Breaker{cfg: cfg, now: time.Now}
}

// Allow reports whether a batch may be sent now, and until when the circuit
// stays open when it may not.
func (b *Breaker) Allow() (bool, time.Time) {
	if b == nil || b.cfg.Failures <= 0 {
		return true, time.Time{}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.now().Before(b.openUntil) {
		return false, b.openUntil
	}
	return true, time.Time{}
}

// Success closes the circuit.
func (b *Breaker) Success() {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.failures, b.openUntil = 0, time.Time{}
	b.mu.Unlock()
}

// Failure counts a failed batch; it returns true when this failure opened
// the circuit. In half-open state (cool-down over, failures already at the
// threshold) one failure reopens it.
func (b *Breaker) Failure() bool {
	if b == nil || b.cfg.Failures <= 0 {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failures++
	if b.failures >= b.cfg.Failures {
		b.openUntil = b.now().Add(b.cfg.Cooldown)
		return true
	}
	return false
}

// State is "closed", "open" or "half-open", for status pages.
func (b *Breaker) State() string {
	if b == nil || b.cfg.Failures <= 0 {
		return "closed"
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.now().Before(b.openUntil):
		return "open"
	case b.failures >= b.cfg.Failures:
		return "half-open"
	}
	return "closed"
}
