// Package schedule runs syncd's jobs (one pull per source, one push per
// target, housekeeping) on robfig/cron schedules, never two runs of one job
// at once.
//
// Job ownership goes through a Leaser, so that when several syncd replicas
// share one ClickHouse, a lease in a shared engine can decide which replica
// runs a job (DESIGN.md §4). Today's Leaser is in-process.
package schedule

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/robfig/cron/v3"
	"go.uber.org/zap"
)

// Job is one scheduled unit of work.
type Job struct {
	Name string // "pull:discipline", "push:liaoning", "housekeeping"
	Spec string // cron spec: 5 fields, @every 30s, @daily, CRON_TZ=Asia/Shanghai 0 2 * * *
	Run  func(ctx context.Context) error
}

// Leaser grants the right to run a job. Acquire returns ok=false when the
// job is already running (here or, with a shared leaser, on another replica).
type Leaser interface {
	Acquire(ctx context.Context, job string) (release func(), ok bool, err error)
}

// LocalLeaser is a Leaser for a single replica: one mutex per job.
type LocalLeaser struct {
	mu      sync.Mutex
	running map[string]bool
}

// Acquire implements Leaser.
func (l *LocalLeaser) Acquire(_ context.Context, job string) (func(), bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.running == nil {
		l.running = map[string]bool{}
	}
	if l.running[job] {
		return nil, false, nil
	}
	l.running[job] = true
	return func() {
		l.mu.Lock()
		delete(l.running, job)
		l.mu.Unlock()
	}, true, nil
}

// ErrBusy is returned by RunNow when the job is already running.
var ErrBusy = errors.New("job is already running")

// ErrUnknownJob is returned by RunNow for a name no job has.
var ErrUnknownJob = errors.New("no such job")

// Parser accepts standard 5-field specs, descriptors (@every, @daily) and a
// CRON_TZ= prefix.
var Parser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Scheduler runs jobs on their schedules.
type Scheduler struct {
	cron   *cron.Cron
	log    *zap.Logger
	leaser Leaser
	jobs   map[string]Job

	// runCtx is cancelled on a hard stop; jobs get it so they can abandon
	// their current batch (which is safe: cursors move only after storing).
	runCtx    context.Context
	cancelRun context.CancelFunc
	wg        sync.WaitGroup
}

// New makes a scheduler whose schedules are read in loc.
func New(loc *time.Location, leaser Leaser, log *zap.Logger) *Scheduler {
	if leaser == nil {
		leaser = &LocalLeaser{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cl := cronLogger{log}
	return &Scheduler{
		cron: cron.New(cron.WithLocation(loc), cron.WithParser(Parser), cron.WithLogger(cl),
			cron.WithChain(cron.Recover(cl), cron.SkipIfStillRunning(cl))),
		log:       log,
		leaser:    leaser,
		jobs:      map[string]Job{},
		runCtx:    ctx,
		cancelRun: cancel,
	}
}

// Add registers a job.
func (s *Scheduler) Add(j Job) error {
	if _, dup := s.jobs[j.Name]; dup {
		return fmt.Errorf("job %s registered twice", j.Name)
	}
	if _, err := s.cron.AddFunc(j.Spec, func() {
		if err := s.RunNow(s.runCtx, j.Name); err != nil && !errors.Is(err, ErrBusy) {
			// Logged by RunNow; nothing else to do until the next tick.
			_ = err
		}
	}); err != nil {
		return fmt.Errorf("job %s: schedule %q: %w", j.Name, j.Spec, err)
	}
	s.jobs[j.Name] = j
	return nil
}

// Names lists the registered jobs, sorted.
func (s *Scheduler) Names() []string {
	names := make([]string, 0, len(s.jobs))
	for n := range s.jobs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// RunNow runs a job at once in the caller's goroutine, unless it is already
// running (ErrBusy). Cron ticks and operator requests share this path, so
// the no-overlap rule holds for both.
func (s *Scheduler) RunNow(ctx context.Context, name string) error {
	j, ok := s.jobs[name]
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknownJob, name)
	}
	release, ok, err := s.leaser.Acquire(ctx, name)
	if err != nil {
		return fmt.Errorf("job %s: lease: %w", name, err)
	}
	if !ok {
		s.log.Info("job still running, skipped", zap.String("job", name))
		return fmt.Errorf("%s: %w", name, ErrBusy)
	}
	defer release()
	s.wg.Add(1)
	defer s.wg.Done()
	start := time.Now()
	if err := j.Run(ctx); err != nil {
		s.log.Error("job failed", zap.String("job", name), zap.Duration("duration", time.Since(start)), zap.Error(err))
		return err
	}
	return nil
}

// Start starts the cron clock.
func (s *Scheduler) Start() { s.cron.Start() }

// Stop stops scheduling new runs and waits for running jobs to finish. When
// ctx ends first, running jobs are cancelled and Stop waits for them to
// return (they abandon their current batch without losing it).
func (s *Scheduler) Stop(ctx context.Context) {
	cronDone := s.cron.Stop()
	done := make(chan struct{})
	go func() {
		<-cronDone.Done()
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		s.log.Warn("jobs still running at shutdown deadline; cancelling them")
		s.cancelRun()
		<-done
	}
	s.cancelRun()
}

// Context is the context jobs run under; it ends on a hard stop.
func (s *Scheduler) Context() context.Context { return s.runCtx }

type cronLogger struct{ l *zap.Logger }

func (c cronLogger) Info(msg string, kv ...any) { c.l.Debug(msg, zap.Any("kv", kv)) }
func (c cronLogger) Error(err error, msg string, kv ...any) {
	c.l.Error(msg, zap.Error(err), zap.Any("kv", kv))
}
