package schedule

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
)

func TestParserAcceptsOperatorForms(t *testing.T) {
	for _, spec := range []string{"*/5 * * * *", "@every 30s", "@daily", "CRON_TZ=Asia/Shanghai 0 2 * * *", "TZ=UTC 0 3 * * 1-5"} {
		if _, err := Parser.Parse(spec); err != nil {
			t.Errorf("%q: %v", spec, err)
		}
	}
	for _, spec := range []string{"", "every 5m", "* * * *", "61 * * * *", "CRON_TZ=Mars/Olympus 0 1 * * *"} {
		if _, err := Parser.Parse(spec); err == nil {
			t.Errorf("%q parsed, want error", spec)
		}
	}
}

func TestNoOverlappingRuns(t *testing.T) {
	s := New(time.UTC, nil, zaptest.NewLogger(t))
	var running, maxRunning, runs atomic.Int32
	release := make(chan struct{})
	err := s.Add(Job{Name: "pull:x", Spec: "@every 1s", Run: func(ctx context.Context) error {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			m := maxRunning.Load()
			if n <= m || maxRunning.CompareAndSwap(m, n) {
				break
			}
		}
		runs.Add(1)
		<-release
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.RunNow(context.Background(), "pull:x") }()
	for running.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	if err := s.RunNow(context.Background(), "pull:x"); !errors.Is(err, ErrBusy) {
		t.Fatalf("second RunNow = %v, want ErrBusy", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if maxRunning.Load() != 1 || runs.Load() != 1 {
		t.Fatalf("max concurrent = %d, runs = %d", maxRunning.Load(), runs.Load())
	}
	if err := s.RunNow(context.Background(), "nope"); !errors.Is(err, ErrUnknownJob) {
		t.Fatalf("unknown job: %v", err)
	}
}

func TestCronFiresAndStopWaits(t *testing.T) {
	s := New(time.UTC, nil, zaptest.NewLogger(t))
	var runs atomic.Int32
	finished := make(chan struct{}, 10)
	if err := s.Add(Job{Name: "j", Spec: "@every 1s", Run: func(ctx context.Context) error {
		runs.Add(1)
		time.Sleep(200 * time.Millisecond)
		finished <- struct{}{}
		return nil
	}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Add(Job{Name: "j", Spec: "@every 1s"}); err == nil {
		t.Fatal("duplicate job accepted")
	}
	if err := s.Add(Job{Name: "bad", Spec: "whenever"}); err == nil {
		t.Fatal("bad spec accepted")
	}
	s.Start()
	deadline := time.After(5 * time.Second)
	for runs.Load() == 0 {
		select {
		case <-deadline:
			t.Fatal("cron never fired")
		case <-time.After(10 * time.Millisecond):
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.Stop(ctx)
	if len(finished) != int(runs.Load()) {
		t.Fatalf("Stop returned before the running job finished: %d started, %d finished", runs.Load(), len(finished))
	}
}

func TestHardStopCancelsJobs(t *testing.T) {
	s := New(time.UTC, nil, zaptest.NewLogger(t))
	started := make(chan struct{})
	var sawCancel atomic.Bool
	_ = s.Add(Job{Name: "slow", Spec: "@every 1h", Run: func(ctx context.Context) error {
		close(started)
		<-ctx.Done()
		sawCancel.Store(true)
		return ctx.Err()
	}})
	go s.RunNow(s.Context(), "slow")
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	s.Stop(ctx)
	if !sawCancel.Load() {
		t.Fatal("job was not cancelled at the shutdown deadline")
	}
}
