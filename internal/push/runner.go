package push

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/panjin-gov/syncd/internal/backoff"
	"github.com/panjin-gov/syncd/internal/record"
	"github.com/panjin-gov/syncd/internal/store"
)

// Ledger is what a push run needs of the store.
type Ledger interface {
	Pending(ctx context.Context, target string, since time.Time, limit int) ([]record.Record, error)
	LastAccepted(ctx context.Context, target string, ids []string) (map[string]store.Delivered, error)
	WriteLedger(ctx context.Context, entries []store.LedgerEntry) error
	Cursor(ctx context.Context, name string) (string, bool, error)
	SaveCursor(ctx context.Context, name, value string) error
}

// Runner runs push for one target.
type Runner struct {
	Name      string
	Target    Target
	Ledger    Ledger
	Layout    *Layout // the platform profile: fields and published statuses
	IDs       Opener  // opens sealed ID numbers for the layout
	Kinds     map[record.Kind]bool
	BatchSize int
	Retry     backoff.Policy
	Log       *zap.Logger
	// Breaker, shared across runs, stops contacting a platform that keeps
	// failing; nil disables it.
	Breaker *Breaker
	// RateLimit caps records sent per second (0: no cap); a batch waits
	// until it may go as a whole.
	RateLimit float64
	// AfterSend, if set, runs after a platform answered batch n (counted
	// from 1 in this run) and before the ledger records the answer. Tests
	// use it to crash exactly there.
	AfterSend func(n int)
	// Preview, when set, makes Run a dry run: every decision is passed to it
	// (skip says why nothing would be sent) and nothing is sent, written to
	// the ledger or moved.
	Preview func(it Item, skip string)
	// SafetyLag keeps the watermark this far behind the run's start, so a
	// pull batch whose records were stamped before a push run began but
	// stored after it is still seen by the next run.
	SafetyLag time.Duration

	limiter *rate.Limiter
}

// Stats counts what one push run did.
type Stats struct {
	Batches   int
	Pushed    int // items sent
	Accepted  int
	Rejected  int
	Failed    int // items whose batch failed in transport after all retries
	Skipped   int // withdraws of versions the platform never held, out-of-scope kinds
	Sent      int // handed over, the platform answers later
	Feedback  int // earlier 'sent' versions answered by the platform in this run
	Duration  time.Duration
	Watermark time.Time
}

func (s Stats) fields() []zap.Field {
	return []zap.Field{
		zap.Int("batches", s.Batches), zap.Int("pushed", s.Pushed), zap.Int("accepted", s.Accepted),
		zap.Int("rejected", s.Rejected), zap.Int("failed", s.Failed), zap.Int("skipped", s.Skipped),
		zap.Int("sent", s.Sent), zap.Int("feedback", s.Feedback),
		zap.Duration("duration", s.Duration), zap.Time("watermark", s.Watermark),
	}
}

// WatermarkName is the cursor key under which a target's watermark is kept.
func WatermarkName(target string) string { return "push:" + target }

// ErrTransport is returned by Run when a batch could not be delivered after
// every retry; the run stops so a platform that is down is not hammered.
var ErrTransport = errors.New("platform unreachable")

// Run delivers every pending version changed since the watermark. It stops
// at the first batch that fails in transport after retries (the rest wait
// for the next run) and moves the watermark only past what is finished.
func (r *Runner) Run(ctx context.Context) (Stats, error) {
	start := time.Now()
	st := Stats{}
	if r.Layout == nil {
		return st, fmt.Errorf("push %s: no layout (platform profile) configured", r.Name)
	}
	if ok, until := r.Breaker.Allow(); !ok && r.Preview == nil {
		r.Log.Warn("push skipped: circuit open", zap.Time("until", until))
		return st, fmt.Errorf("push %s: %w (until %s)", r.Name, ErrCircuitOpen, until.Format(time.RFC3339))
	}
	if r.limiter == nil && r.RateLimit > 0 {
		r.limiter = rate.NewLimiter(rate.Limit(r.RateLimit), r.BatchSize)
	}
	since, err := r.watermark(ctx)
	if err != nil {
		return st, err
	}
	if fr, ok := r.Target.(FeedbackReader); ok && r.Preview == nil {
		n, err := r.collectFeedback(ctx, fr)
		st.Feedback = n
		if err != nil {
			// Feedback waits for the next run; sending new versions need not.
			r.Log.Warn("reading the platform's feedback failed", zap.Error(err))
		}
	}
	lag := r.SafetyLag
	if lag == 0 {
		lag = 10 * time.Minute
	}
	// The next watermark: the run's start less the lag, or the ingest time of
	// the oldest version left unfinished, whichever is earlier.
	next := start.Add(-lag)
	unfinished := func(rec *record.Record) {
		if rec.IngestedAt.Before(next) {
			next = rec.IngestedAt
		}
	}
	tried := map[string]bool{}
	var runErr error
	limit := r.BatchSize
	for {
		recs, err := r.Ledger.Pending(ctx, r.Name, since, limit)
		if err != nil {
			runErr = err
			break
		}
		// A version left unfinished in this run (no receipt) comes back from
		// Pending; it waits for the next run instead of looping here.
		fresh := recs[:0]
		for _, rec := range recs {
			if !tried[Key(rec.RecordID, rec.Version)] {
				tried[Key(rec.RecordID, rec.Version)] = true
				fresh = append(fresh, rec)
			}
		}
		if len(fresh) == 0 {
			break
		}
		if err := r.pushBatch(ctx, fresh, &st, unfinished); err != nil {
			runErr = err
			break
		}
		if len(recs) < limit {
			break
		}
		if r.Preview != nil {
			// Nothing is written in a dry run, so the same versions stay
			// pending: ask for one more batch each time and skip those seen.
			limit += r.BatchSize
		}
	}
	if r.Preview != nil {
		st.Duration = time.Since(start)
		return st, runErr
	}
	if next.Before(since) {
		next = since
	}
	if runErr == nil || errors.Is(runErr, ErrTransport) || errors.Is(runErr, ErrCircuitOpen) {
		if err := r.Ledger.SaveCursor(ctx, WatermarkName(r.Name), next.UTC().Format(time.RFC3339)); err != nil && runErr == nil {
			runErr = err
		}
	}
	st.Watermark = next
	st.Duration = time.Since(start)
	if runErr != nil {
		r.Log.Warn("push ended early", append(st.fields(), zap.Error(runErr))...)
		return st, runErr
	}
	r.Log.Info("push done", st.fields()...)
	return st, nil
}

func (r *Runner) watermark(ctx context.Context) (time.Time, error) {
	v, ok, err := r.Ledger.Cursor(ctx, WatermarkName(r.Name))
	if err != nil || !ok {
		return time.Unix(0, 0), err
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Unix(0, 0), fmt.Errorf("target %s: bad watermark %q: %w", r.Name, v, err)
	}
	return t, nil
}

// pushBatch sends one batch of pending versions and writes their outcomes.
// unfinished is told of every version that ends without a final outcome.
func (r *Runner) pushBatch(ctx context.Context, recs []record.Record, st *Stats, unfinished func(*record.Record)) error {
	ids := make([]string, len(recs))
	for i := range recs {
		ids[i] = recs[i].RecordID
	}
	last, err := r.Ledger.LastAccepted(ctx, r.Name, ids)
	if err != nil {
		return err
	}
	now := time.Now()
	batchID := newBatchID()
	var items []Item
	var entries []store.LedgerEntry
	for i := range recs {
		rec := &recs[i]
		prev, held := last[rec.RecordID]
		held = held && prev.Op != store.OpWithdraw
		op, skip := decideOp(rec, held, r.Kinds, r.Layout.Published)
		entry := store.LedgerEntry{Target: r.Name, RecordID: rec.RecordID, Version: rec.Version, Op: op, BatchID: batchID, AttemptAt: now}
		if r.Preview != nil && skip != "" {
			r.Preview(Item{Key: Key(rec.RecordID, rec.Version), Op: op, Record: rec}, skip)
			st.Skipped++
			continue
		}
		if skip != "" {
			entry.Outcome, entry.Message = store.Skipped, skip
			entries = append(entries, entry)
			st.Skipped++
			continue
		}
		item := Item{Key: Key(rec.RecordID, rec.Version), Op: op, Record: rec}
		if op != store.OpWithdraw {
			data, err := r.Layout.Render(rec, r.IDs)
			if err != nil {
				// Cannot render (e.g. an ID sealed with a key we no longer
				// hold): a rejection on our side, kept until the record changes.
				entry.Outcome, entry.Code, entry.Message = store.Rejected, "local_render", err.Error()
				entries = append(entries, entry)
				st.Rejected++
				continue
			}
			item.Data = data
		}
		items = append(items, item)
	}

	if r.Preview != nil {
		for _, it := range items {
			r.Preview(it, "")
		}
		st.Pushed += len(items)
		return nil
	}
	if len(items) > 0 {
		st.Batches++
		st.Pushed += len(items)
		var receipts []Receipt
		err := r.Retry.Do(ctx, func(ctx context.Context) error {
			if ok, until := r.Breaker.Allow(); !ok {
				return fmt.Errorf("%w (until %s)", ErrCircuitOpen, until.Format(time.RFC3339))
			}
			if r.limiter != nil {
				if err := r.limiter.WaitN(ctx, min(len(items), r.limiter.Burst())); err != nil {
					return err
				}
			}
			var err error
			receipts, err = r.Target.Send(ctx, batchID, items)
			return err
		}, func(err error) bool { return !errors.Is(err, ErrPermanent) && !errors.Is(err, ErrCircuitOpen) },
			func(attempt int, wait time.Duration, err error) {
				r.Log.Warn("push batch failed, retrying", zap.String("batch_id", batchID), zap.Int("items", len(items)),
					zap.Int("attempt", attempt), zap.Duration("wait", wait), zap.Error(err))
			})
		if errors.Is(err, ErrCircuitOpen) {
			// Nothing was attempted: the versions simply wait.
			for _, it := range items {
				unfinished(it.Record)
			}
			st.Pushed -= len(items)
			if werr := r.Ledger.WriteLedger(ctx, entries); werr != nil {
				return errors.Join(err, werr)
			}
			return fmt.Errorf("push %s: %w", r.Name, err)
		}
		if err != nil {
			if r.Breaker.Failure() {
				r.Log.Error("circuit opened: platform keeps failing", zap.String("target", r.Name), zap.Error(err))
			}
			for _, it := range items {
				entries = append(entries, store.LedgerEntry{Target: r.Name, RecordID: it.Record.RecordID, Version: it.Record.Version,
					Op: it.Op, Outcome: store.Failed, Message: err.Error(), BatchID: batchID, AttemptAt: time.Now()})
				unfinished(it.Record)
			}
			st.Failed += len(items)
			if werr := r.Ledger.WriteLedger(ctx, entries); werr != nil {
				return errors.Join(err, werr)
			}
			return fmt.Errorf("push %s batch %s (%d items): %w: %w", r.Name, batchID, len(items), ErrTransport, err)
		}
		r.Breaker.Success()
		if r.AfterSend != nil {
			r.AfterSend(st.Batches)
		}
		byKey := make(map[string]Receipt, len(receipts))
		for _, rc := range receipts {
			byKey[rc.Key] = rc
		}
		for _, it := range items {
			e := store.LedgerEntry{Target: r.Name, RecordID: it.Record.RecordID, Version: it.Record.Version,
				Op: it.Op, BatchID: batchID, AttemptAt: time.Now()}
			rc, ok := byKey[it.Key]
			switch {
			case !ok:
				// No receipt: we cannot know; retry next run.
				e.Outcome, e.Message = store.Failed, "no receipt for this record in the platform's answer"
				st.Failed++
				unfinished(it.Record)
			case rc.Pending:
				e.Outcome, e.Message = store.Sent, rc.Message
				st.Sent++
			case rc.Accepted:
				e.Outcome = store.Accepted
				st.Accepted++
			default:
				e.Outcome, e.Code, e.Message = store.Rejected, rc.Code, rc.Message
				st.Rejected++
			}
			entries = append(entries, e)
		}
	}
	return r.Ledger.WriteLedger(ctx, entries)
}

// decideOp chooses the operation for a record version given whether the
// platform holds an earlier version. skip, when not empty, says why nothing
// is sent.
func decideOp(rec *record.Record, held bool, kinds map[record.Kind]bool, published func(record.Status) bool) (op store.Op, skip string) {
	inScope := len(kinds) == 0 || kinds[rec.Kind]
	switch {
	case !published(rec.Status) || !inScope || rec.Unpublished:
		if !held {
			switch {
			case !inScope:
				return store.OpWithdraw, "kind " + string(rec.Kind) + " is out of this target's scope"
			case rec.Unpublished:
				return store.OpWithdraw, "severity " + rec.Severity + " is not published"
			}
			return store.OpWithdraw, "status " + string(rec.Status) + ": platform never held it"
		}
		return store.OpWithdraw, ""
	case held:
		return store.OpUpdate, ""
	default:
		return store.OpAdd, ""
	}
}

func newBatchID() string {
	var b [8]byte
	rand.Read(b[:])
	return time.Now().Format("20060102T150405") + "-" + hex.EncodeToString(b[:])
}

// collectFeedback reads the platform's answers to versions sent earlier
// (database and file styles) from the saved feedback cursor and writes them
// to the ledger, then moves the cursor.
func (r *Runner) collectFeedback(ctx context.Context, fr FeedbackReader) (int, error) {
	name := FeedbackCursorName(r.Name)
	cursor, _, err := r.Ledger.Cursor(ctx, name)
	if err != nil {
		return 0, err
	}
	total := 0
	for {
		receipts, next, err := fr.Feedback(ctx, cursor, max(r.BatchSize, 100))
		if err != nil {
			return total, err
		}
		if len(receipts) == 0 && next == cursor {
			return total, nil
		}
		ops, err := r.feedbackOps(ctx, receipts)
		if err != nil {
			return total, err
		}
		entries := make([]store.LedgerEntry, 0, len(receipts))
		now := time.Now()
		for _, rc := range receipts {
			id, version, ok := ParseKey(rc.Key)
			op := rc.Op
			if op == "" {
				op = ops[rc.Key]
			}
			if !ok || rc.Pending || op == "" {
				// Not a version this target was sent: nothing to record.
				r.Log.Warn("platform feedback for a key never sent ignored", zap.String("key", rc.Key))
				continue
			}
			e := store.LedgerEntry{Target: r.Name, RecordID: id, Version: version, Op: op, AttemptAt: now, BatchID: "feedback"}
			if rc.Accepted {
				e.Outcome = store.Accepted
			} else {
				e.Outcome, e.Code, e.Message = store.Rejected, rc.Code, rc.Message
			}
			entries = append(entries, e)
		}
		// Ledger first, cursor second: a crash between them re-reads the
		// same feedback, which writes the same outcomes again. (A page of
		// only unknown keys writes nothing but still moves the cursor.)
		if err := r.Ledger.WriteLedger(ctx, entries); err != nil {
			return total, err
		}
		if err := r.Ledger.SaveCursor(ctx, name, next); err != nil {
			return total, err
		}
		total += len(entries)
		r.Log.Info("platform feedback recorded", zap.Int("receipts", len(entries)))
		cursor = next
	}
}

// feedbackOps finds, for feedback receipts that do not carry their op, the
// op the version was sent as, from the ledger.
func (r *Runner) feedbackOps(ctx context.Context, receipts []Receipt) (map[string]store.Op, error) {
	var ids []string
	for _, rc := range receipts {
		if rc.Op == "" {
			if id, _, ok := ParseKey(rc.Key); ok {
				ids = append(ids, id)
			}
		}
	}
	ops := map[string]store.Op{}
	if len(ids) == 0 {
		return ops, nil
	}
	sent, err := r.Ledger.LastAccepted(ctx, r.Name, ids)
	if err != nil {
		return nil, err
	}
	for id, d := range sent {
		ops[Key(id, d.Version)] = d.Op
	}
	return ops, nil
}
