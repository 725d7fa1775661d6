package push

import (
	"testing"
	"time"
)

func TestBreakerOpensHalfOpensAndCloses(t *testing.T) {
	now := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	b := NewBreaker(BreakerConfig{Failures: 3, Cooldown: time.Minute})
	b.now = func() time.Time { return now }
	for i := 0; i < 2; i++ {
		if b.Failure() {
			t.Fatalf("opened after %d failures", i+1)
		}
	}
	if ok, _ := b.Allow(); !ok {
		t.Fatal("closed breaker refused")
	}
	if !b.Failure() {
		t.Fatal("third failure did not open")
	}
	if ok, until := b.Allow(); ok || !until.Equal(now.Add(time.Minute)) {
		t.Fatalf("open breaker allowed=%v until=%v", ok, until)
	}
	now = now.Add(61 * time.Second)
	if ok, _ := b.Allow(); !ok || b.State() != "half-open" {
		t.Fatalf("after cool-down: allowed=%v state=%s", ok, b.State())
	}
	if !b.Failure() { // the probe failed: open again at once
		t.Fatal("failed probe did not reopen")
	}
	now = now.Add(61 * time.Second)
	b.Success()
	if b.State() != "closed" {
		t.Fatalf("state %s after success", b.State())
	}
	var none *Breaker
	if ok, _ := none.Allow(); !ok || none.Failure() {
		t.Error("nil breaker must never open")
	}
}
