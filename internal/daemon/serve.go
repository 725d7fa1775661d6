package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/panjin-gov/syncd/internal/config"
	"github.com/panjin-gov/syncd/internal/schedule"
)

// jobStatus is what /api/v1/status and /metrics report of one job.
type jobStatus struct {
	Runs        int            `json:"runs"`
	Failures    int            `json:"failures"`
	LastStart   time.Time      `json:"last_start"`
	LastEnd     time.Time      `json:"last_end"`
	LastError   string         `json:"last_error,omitempty"`
	LastSuccess time.Time      `json:"last_success"`
	Counts      map[string]int `json:"counts"` // cumulative pulled, stored, rejected, pushed, accepted, …
}

type statusBoard struct {
	mu   sync.Mutex
	jobs map[string]*jobStatus
}

func (b *statusBoard) record(job string, start time.Time, counts map[string]int, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.jobs == nil {
		b.jobs = map[string]*jobStatus{}
	}
	s := b.jobs[job]
	if s == nil {
		s = &jobStatus{Counts: map[string]int{}}
		b.jobs[job] = s
	}
	s.Runs++
	s.LastStart, s.LastEnd = start, time.Now()
	for k, v := range counts {
		s.Counts[k] += v
	}
	if err != nil {
		s.Failures++
		s.LastError = err.Error()
	} else {
		s.LastSuccess, s.LastError = s.LastEnd, ""
	}
}

func (b *statusBoard) snapshot() map[string]jobStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[string]jobStatus, len(b.jobs))
	for k, v := range b.jobs {
		c := *v
		c.Counts = make(map[string]int, len(v.Counts))
		for ck, cv := range v.Counts {
			c.Counts[ck] = cv
		}
		out[k] = c
	}
	return out
}

// Serve runs the daemon until ctx ends: migrations, the scheduler and the
// admin API. On ctx's end it stops scheduling, gives running jobs the
// configured grace to finish, then cancels them and returns.
func (d *Daemon) Serve(ctx context.Context) error {
	if _, err := d.Migrate(ctx); err != nil {
		return err
	}
	board := &statusBoard{}
	s := schedule.New(d.cfg.Location(), &schedule.LocalLeaser{}, d.log.Named("schedule"))
	if err := d.addJobs(s, board); err != nil {
		return err
	}

	var srv *http.Server
	if d.cfg.Admin.Listen != "" {
		ln, err := net.Listen("tcp", d.cfg.Admin.Listen)
		if err != nil {
			return fmt.Errorf("admin.listen %s: %w", d.cfg.Admin.Listen, err)
		}
		srv = &http.Server{Handler: d.adminHandler(s, board), ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				d.log.Error("admin API stopped", zap.Error(err))
			}
		}()
		d.log.Info("admin API listening", zap.String("addr", ln.Addr().String()))
	}

	s.Start()
	d.log.Info("syncd running", zap.Strings("jobs", s.Names()))
	// First runs at once rather than waiting a whole period.
	for _, name := range s.Names() {
		if strings.HasPrefix(name, "pull:") {
			go s.RunNow(s.Context(), name)
		}
	}

	<-ctx.Done()
	d.log.Info("shutting down: no new job runs; waiting for running jobs", zap.Duration("grace", d.cfg.Shutdown.Grace))
	grace, cancel := context.WithTimeout(context.Background(), d.cfg.Shutdown.Grace)
	defer cancel()
	s.Stop(grace)
	if srv != nil {
		shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shutCtx)
	}
	d.log.Info("syncd stopped")
	return nil
}

// addJobs registers every pull, push and housekeeping job, recording each
// run on board.
func (d *Daemon) addJobs(s *schedule.Scheduler, board *statusBoard) error {
	for _, name := range keys(d.cfg.Sources) {
		job := "pull:" + name
		if err := s.Add(schedule.Job{Name: job, Spec: d.cfg.Sources[name].Schedule, Run: func(ctx context.Context) error {
			start := time.Now()
			st, err := d.Pull(ctx, name)
			board.record(job, start, map[string]int{"pulled": st.Pulled, "stored": st.Stored, "rejected": st.Rejected,
				"duplicates": st.Duplicates, "stale": st.Stale}, err)
			return err
		}}); err != nil {
			return err
		}
	}
	for _, name := range keys(d.cfg.Targets) {
		job := "push:" + name
		if err := s.Add(schedule.Job{Name: job, Spec: d.cfg.Targets[name].Schedule, Run: func(ctx context.Context) error {
			start := time.Now()
			st, err := d.Push(ctx, name)
			board.record(job, start, map[string]int{"pushed": st.Pushed, "accepted": st.Accepted, "rejected": st.Rejected,
				"failed": st.Failed, "skipped": st.Skipped, "sent": st.Sent, "feedback": st.Feedback}, err)
			return err
		}}); err != nil {
			return err
		}
	}
	if d.cfg.Housekeeping.Schedule != "" {
		if err := s.Add(schedule.Job{Name: "housekeeping", Spec: d.cfg.Housekeeping.Schedule, Run: func(ctx context.Context) error {
			start := time.Now()
			n, err := d.Expire(ctx)
			board.record("housekeeping", start, map[string]int{"expired": n}, err)
			return err
		}}); err != nil {
			return err
		}
	}
	return nil
}

func (d *Daemon) adminHandler(s *schedule.Scheduler, board *statusBoard) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		if err := d.store.Conn().Ping(ctx); err != nil {
			http.Error(w, "clickhouse: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	mux.HandleFunc("GET /api/v1/status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"jobs": board.snapshot(), "config": d.cfg.File(), "circuits": d.circuitStates()})
	})
	// Data-quality figures (DOMAIN.md indicators) for decisions since the
	// given date (default: the start of the current year).
	mux.HandleFunc("GET /api/v1/quality", func(w http.ResponseWriter, r *http.Request) {
		since, err := QualitySince(r.URL.Query().Get("since"), time.Now(), d.cfg.Location())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		q, err := d.store.Quality(r.Context(), since)
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(q)
	})
	token := config.Secret(d.cfg.Admin.TokenEnv)
	mux.HandleFunc("POST /api/v1/jobs/{name}/run", func(w http.ResponseWriter, r *http.Request) {
		if token == "" || r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, "operator bearer token required", http.StatusUnauthorized)
			return
		}
		name := r.PathValue("name")
		if !contains(s.Names(), name) {
			http.Error(w, "no such job: "+name, http.StatusNotFound)
			return
		}
		// Run in the background under the scheduler's context; the answer
		// only says it started. A job already running answers 409.
		started := make(chan error, 1)
		go func() {
			err := s.RunNow(s.Context(), name)
			select {
			case started <- err:
			default:
			}
		}()
		select {
		case err := <-started:
			if errors.Is(err, schedule.ErrBusy) {
				http.Error(w, err.Error(), http.StatusConflict)
				return
			}
			writeRunResult(w, name, err)
		case <-time.After(200 * time.Millisecond):
			w.WriteHeader(http.StatusAccepted)
			fmt.Fprintf(w, "{\"job\":%q,\"state\":\"started\"}\n", name)
		}
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		writeMetrics(w, board.snapshot())
		writeCircuitMetrics(w, d.circuitStates())
	})
	return mux
}

func writeRunResult(w http.ResponseWriter, name string, err error) {
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		json.NewEncoder(w).Encode(map[string]string{"job": name, "state": "failed", "error": err.Error()})
		return
	}
	json.NewEncoder(w).Encode(map[string]string{"job": name, "state": "done"})
}

// writeMetrics writes the Prometheus text exposition format by hand: a
// handful of counters does not justify a client library.
func writeMetrics(w http.ResponseWriter, jobs map[string]jobStatus) {
	names := keys(jobs)
	fmt.Fprintln(w, "# HELP syncd_job_runs_total Job runs by result.")
	fmt.Fprintln(w, "# TYPE syncd_job_runs_total counter")
	for _, n := range names {
		j := jobs[n]
		fmt.Fprintf(w, "syncd_job_runs_total{job=%q,result=\"ok\"} %d\n", n, j.Runs-j.Failures)
		fmt.Fprintf(w, "syncd_job_runs_total{job=%q,result=\"error\"} %d\n", n, j.Failures)
	}
	fmt.Fprintln(w, "# HELP syncd_job_last_success_timestamp_seconds End of the job's last successful run.")
	fmt.Fprintln(w, "# TYPE syncd_job_last_success_timestamp_seconds gauge")
	for _, n := range names {
		if t := jobs[n].LastSuccess; !t.IsZero() {
			fmt.Fprintf(w, "syncd_job_last_success_timestamp_seconds{job=%q} %d\n", n, t.Unix())
		}
	}
	fmt.Fprintln(w, "# HELP syncd_records_total Records handled by jobs, by what happened to them.")
	fmt.Fprintln(w, "# TYPE syncd_records_total counter")
	for _, n := range names {
		counts := jobs[n].Counts
		for _, k := range keys(counts) {
			fmt.Fprintf(w, "syncd_records_total{job=%q,outcome=%q} %d\n", n, k, counts[k])
		}
	}
}

// circuitStates is each target's circuit breaker state.
func (d *Daemon) circuitStates() map[string]string {
	out := make(map[string]string, len(d.cfg.Targets))
	for name := range d.cfg.Targets {
		out[name] = d.breakers[name].State()
	}
	return out
}

// writeCircuitMetrics writes syncd_circuit_open{target}: 1 while a target's
// breaker keeps syncd from contacting it, 0.5 half-open, 0 closed.
func writeCircuitMetrics(w http.ResponseWriter, states map[string]string) {
	names := keys(states)
	fmt.Fprintln(w, "# HELP syncd_circuit_open Whether a target's circuit breaker is open (1), half-open (0.5) or closed (0).")
	fmt.Fprintln(w, "# TYPE syncd_circuit_open gauge")
	for _, n := range names {
		v := "0"
		switch states[n] {
		case "open":
			v = "1"
		case "half-open":
			v = "0.5"
		}
		fmt.Fprintf(w, "syncd_circuit_open{target=%q} %s\n", n, v)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// QualitySince parses a quality window start (YYYY-MM-DD); empty means the
// start of now's year.
func QualitySince(s string, now time.Time, loc *time.Location) (time.Time, error) {
	if s == "" {
		return time.Date(now.In(loc).Year(), 1, 1, 0, 0, 0, 0, loc), nil
	}
	t, err := time.ParseInLocation("2006-01-02", s, loc)
	if err != nil {
		return time.Time{}, fmt.Errorf("since: %q is not a date (YYYY-MM-DD)", s)
	}
	return t, nil
}
