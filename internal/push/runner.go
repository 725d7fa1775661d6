package push

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

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

// Layout renders a record in a platform's field layout.
type Layout func(r *record.Record, ids Opener) (map[string]any, error)

// Runner runs push for one target.
type Runner struct {
	Name      string
	Target    Target
	Ledger    Ledger
	Layout    Layout
	IDs       Opener // opens sealed ID numbers for the layout
	Kinds     map[record.Kind]bool
	BatchSize int
	Retry     backoff.Policy
	Log       *zap.Logger
	// SafetyLag keeps the watermark this far behind the run's start, so a
	// pull batch whose records were stamped before a push run began but
	// stored after it is still seen by the next run.
	SafetyLag time.Duration
}

// Stats counts what one push run did.
type Stats struct {
	Batches   int
	Pushed    int // items sent
	Accepted  int
	Rejected  int
	Failed    int // items whose batch failed in transport after all retries
	Skipped   int // withdraws of versions the platform never held, out-of-scope kinds
	Duration  time.Duration
	Watermark time.Time
}

func (s Stats) fields() []zap.Field {
	return []zap.Field{
		zap.Int("batches", s.Batches), zap.Int("pushed", s.Pushed), zap.Int("accepted", s.Accepted),
		zap.Int("rejected", s.Rejected), zap.Int("failed", s.Failed), zap.Int("skipped", s.Skipped),
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
	since, err := r.watermark(ctx)
	if err != nil {
		return st, err
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
	for {
		recs, err := r.Ledger.Pending(ctx, r.Name, since, r.BatchSize)
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
		if len(recs) < r.BatchSize {
			break
		}
	}
	if next.Before(since) {
		next = since
	}
	if runErr == nil || errors.Is(runErr, ErrTransport) {
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
		op, skip := decideOp(rec, held, r.Kinds)
		entry := store.LedgerEntry{Target: r.Name, RecordID: rec.RecordID, Version: rec.Version, Op: op, BatchID: batchID, AttemptAt: now}
		if skip != "" {
			entry.Outcome, entry.Message = store.Skipped, skip
			entries = append(entries, entry)
			st.Skipped++
			continue
		}
		item := Item{Key: Key(rec.RecordID, rec.Version), Op: op, Record: rec}
		if op != store.OpWithdraw {
			data, err := r.Layout(rec, r.IDs)
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

	if len(items) > 0 {
		st.Batches++
		st.Pushed += len(items)
		var receipts []Receipt
		err := r.Retry.Do(ctx, func(ctx context.Context) error {
			var err error
			receipts, err = r.Target.Send(ctx, batchID, items)
			return err
		}, func(err error) bool { return !errors.Is(err, ErrPermanent) },
			func(attempt int, wait time.Duration, err error) {
				r.Log.Warn("push batch failed, retrying", zap.String("batch_id", batchID), zap.Int("items", len(items)),
					zap.Int("attempt", attempt), zap.Duration("wait", wait), zap.Error(err))
			})
		if err != nil {
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
func decideOp(rec *record.Record, held bool, kinds map[record.Kind]bool) (op store.Op, skip string) {
	inScope := len(kinds) == 0 || kinds[rec.Kind]
	switch {
	case !rec.Status.Published() || !inScope:
		if !held {
			if !inScope {
				return store.OpWithdraw, "kind " + string(rec.Kind) + " is out of this target's scope"
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
