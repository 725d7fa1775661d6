// Package ingest runs one source's pull: fetch from a connector, normalize,
// assign versions, store, and only then save the cursor.
//
// It owns the pull lifecycle (retries, backoff, batching, ordering); the
// connector only reads and the store only writes. Fetching and normalizing
// run one batch ahead of storing, handing batches over one at a time, so the
// source and ClickHouse work at the same time with at most two batches in
// memory: the one being stored and the one being prepared. A batch is
// normalized by several workers and reassembled in source order.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/panjin-gov/syncd/internal/backoff"
	"github.com/panjin-gov/syncd/internal/connectors"
	"github.com/panjin-gov/syncd/internal/record"
	"github.com/panjin-gov/syncd/internal/store"
)

// Store is what a pull needs of the consolidated store.
type Store interface {
	WriteBatch(ctx context.Context, b *store.Batch) error
	LatestVersions(ctx context.Context, ids []string) (map[string]store.Latest, error)
	Cursor(ctx context.Context, name string) (string, bool, error)
	SaveCursor(ctx context.Context, name, value string) error
}

// Normalizer turns raw payloads into canonical records or rejects. With
// Runner.Workers other than 1 it is called from several goroutines at once.
type Normalizer interface {
	Normalize(raw *record.Raw, now time.Time) (record.Record, *record.Reject)
}

// HashedNormalizer is implemented by a Normalizer that can take the raw
// payload's hash (record.Raw.Hash, which the runner computes to store the
// payload) instead of hashing the payload again.
type HashedNormalizer interface {
	NormalizeHashed(raw *record.Raw, rawHash string, now time.Time) (record.Record, *record.Reject)
}

// Redactor is implemented by a Normalizer that can mask a person's ID
// number in a raw payload; Seal keeps the original sealed. With both, raw
// payloads and rejects are stored masked with a sealed original.
type Redactor interface {
	Redact(raw *record.Raw) (shown []byte, hadPII bool)
}

// Sealer seals a payload with the PII key.
type Sealer interface {
	SealBytes(plain []byte) []byte
}

// ReasonBadSourceItem rejects a payload a connector could not place (see
// record.Raw.Problem).
const ReasonBadSourceItem = "bad_source_item"

// Runner pulls one source until it has caught up.
type Runner struct {
	Name       string // source name; the cursor is saved as "source:<Name>"
	Source     connectors.Source
	Normalizer Normalizer
	Store      Store
	// Sealer, with a Normalizer that is a Redactor, keeps ID numbers out of
	// stored raw payloads and rejects.
	Sealer    Sealer
	BatchSize int
	// BatchBytes bounds the raw payload bytes of a batch (0: no bound). The
	// count asked of the source is adapted from the payload sizes seen so
	// far in the run (the first fetch asks for at most probeBatch records),
	// so a source of large payloads gets smaller batches and memory stays
	// bounded whatever the payload size.
	BatchBytes int
	// Workers normalize a batch in parallel (0 = GOMAXPROCS). The
	// Normalizer, Redactor and Sealer must then be safe for concurrent use.
	Workers int
	Retry   backoff.Policy
	Log     *zap.Logger
	// MaxBatches stops a run after that many batches (0 = until caught up),
	// so one pull job cannot starve the others on a huge backlog.
	MaxBatches int
	// AfterStore, if set, runs after a batch is stored and before its cursor
	// is saved. Tests use it to crash exactly there.
	AfterStore func(batch int)
}

// Stats counts what one run did.
type Stats struct {
	Batches    int
	Pulled     int // raw payloads fetched
	Stored     int // new record versions written
	Rejected   int
	Duplicates int // identical to the stored current version
	Stale      int // older than the stored current version
	Duration   time.Duration
}

func (s Stats) fields() []zap.Field {
	return []zap.Field{
		zap.Int("batches", s.Batches), zap.Int("pulled", s.Pulled), zap.Int("stored", s.Stored),
		zap.Int("rejected", s.Rejected), zap.Int("duplicates", s.Duplicates), zap.Int("stale", s.Stale),
		zap.Duration("duration", s.Duration),
	}
}

// CursorName is the cursor key a source's position is saved under.
func CursorName(source string) string { return "source:" + source }

type prepared struct {
	n       int
	fetched connectors.Batch
	raws    []store.Raw
	recs    []record.Record
	rejects []record.Reject
	err     error
}

// Run pulls until the source has no more data (or MaxBatches), storing each
// batch before saving its cursor. A batch that cannot be fetched after the
// retry policy, or stored, ends the run with an error; nothing after the last
// saved cursor is lost, it is pulled again next run.
func (r *Runner) Run(ctx context.Context) (Stats, error) {
	start := time.Now()
	var st Stats
	cur, _, err := r.Store.Cursor(ctx, CursorName(r.Name))
	if err != nil {
		return st, err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Unbuffered: the producer prepares the next batch while this one is
	// stored, and no further.
	ready := make(chan prepared)
	go r.produce(ctx, cur, ready)

	for p := range ready {
		if p.err != nil {
			st.Duration = time.Since(start)
			return st, p.err
		}
		st.Batches++
		st.Pulled += len(p.fetched.Records)
		st.Rejected += len(p.rejects)
		stored, dups, stale, err := r.store(ctx, &p)
		if err != nil {
			st.Duration = time.Since(start)
			return st, fmt.Errorf("pull %s batch %d: %w", r.Name, p.n, err)
		}
		st.Stored += stored
		st.Duplicates += dups
		st.Stale += stale
		if r.AfterStore != nil {
			r.AfterStore(p.n)
		}
		if err := r.Store.SaveCursor(ctx, CursorName(r.Name), p.fetched.Next); err != nil {
			st.Duration = time.Since(start)
			return st, fmt.Errorf("pull %s batch %d stored, cursor not saved (will re-pull, harmless): %w", r.Name, p.n, err)
		}
		if c, ok := r.Source.(connectors.Committer); ok {
			if err := c.Commit(ctx, p.fetched); err != nil {
				st.Duration = time.Since(start)
				return st, fmt.Errorf("pull %s batch %d stored, commit to source failed (will re-deliver, harmless): %w", r.Name, p.n, err)
			}
		}
		r.Log.Debug("batch stored", zap.Int("batch", p.n), zap.Int("pulled", len(p.fetched.Records)),
			zap.Int("stored", stored), zap.Int("rejected", len(p.rejects)), zap.Int("duplicates", dups))
	}
	st.Duration = time.Since(start)
	r.Log.Info("pull done", st.fields()...)
	return st, nil
}

// produce fetches and normalizes batches in order and hands them over; it
// stops after the last batch, on error, or when ctx ends.
func (r *Runner) produce(ctx context.Context, cur string, out chan<- prepared) {
	defer close(out)
	limit := r.BatchSize
	if r.BatchBytes > 0 {
		limit = min(limit, probeBatch)
	}
	var seenBytes, seenRecords int
	for n := 1; r.MaxBatches == 0 || n <= r.MaxBatches; n++ {
		var b connectors.Batch
		err := r.Retry.Do(ctx, func(ctx context.Context) error {
			var err error
			b, err = r.Source.Fetch(ctx, cur, limit)
			return err
		}, func(err error) bool { return !errors.Is(err, connectors.ErrPermanent) },
			func(attempt int, wait time.Duration, err error) {
				r.Log.Warn("fetch failed, retrying", zap.Int("batch", n), zap.Int("attempt", attempt),
					zap.Duration("wait", wait), zap.Error(err))
			})
		if err != nil {
			select {
			case out <- prepared{err: fmt.Errorf("pull %s batch %d: %w", r.Name, n, err)}:
			case <-ctx.Done():
			}
			return
		}
		if len(b.Records) == 0 && b.Token == nil {
			return
		}
		if r.BatchBytes > 0 {
			for i := range b.Records {
				seenBytes += len(b.Records[i].Payload)
			}
			seenRecords += len(b.Records)
			if seenRecords > 0 {
				avg := max(seenBytes/seenRecords, 1)
				limit = max(1, min(r.BatchSize, r.BatchBytes/avg))
			}
		}
		p := prepared{n: n, fetched: b}
		r.prepare(&p, time.Now())
		select {
		case out <- p:
		case <-ctx.Done():
			return
		}
		if !b.More {
			return
		}
		cur = b.Next
	}
}

// probeBatch is the most records the first fetch of a byte-bounded run asks
// for, before any payload size is known.
const probeBatch = 100

// workerChunk is how many payloads a normalize worker takes at a time:
// small enough to balance uneven payloads, large enough to keep the shared
// counter cold.
const workerChunk = 64

// prepare turns the fetched payloads of p into the raws to store and the
// records and rejects they become, in fetch order, on r.Workers goroutines.
func (r *Runner) prepare(p *prepared, now time.Time) {
	raws := p.fetched.Records
	p.raws = make([]store.Raw, len(raws))
	recs := make([]record.Record, len(raws))
	rejs := make([]*record.Reject, len(raws)) // nil where recs holds the outcome
	redactor, _ := r.Normalizer.(Redactor)
	hashed, _ := r.Normalizer.(HashedNormalizer)
	one := func(i int) {
		raw := &raws[i]
		stored := store.Raw{Raw: *raw, Hash: raw.Hash()}
		if redactor != nil && r.Sealer != nil {
			if shown, had := redactor.Redact(raw); had {
				stored.Payload, stored.Sealed = shown, r.Sealer.SealBytes(raw.Payload)
			}
		}
		p.raws[i] = stored
		if raw.Problem != "" {
			rejs[i] = &record.Reject{
				Source: raw.Source, SourceKey: raw.Key, Reason: ReasonBadSourceItem, Message: raw.Problem,
				Payload: stored.Payload, PayloadSealed: stored.Sealed, RawHash: stored.Hash, RejectedAt: now,
			}
			return
		}
		var rej *record.Reject
		if hashed != nil {
			recs[i], rej = hashed.NormalizeHashed(raw, stored.Hash, now)
		} else {
			recs[i], rej = r.Normalizer.Normalize(raw, now)
		}
		if rej != nil {
			rej.Payload, rej.PayloadSealed = stored.Payload, stored.Sealed
			rejs[i] = rej
		}
	}

	workers := r.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = min(workers, (len(raws)+workerChunk-1)/workerChunk)
	if workers <= 1 {
		for i := range raws {
			one(i)
		}
	} else {
		var next atomic.Int64
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for {
					end := int(next.Add(workerChunk))
					start := end - workerChunk
					if start >= len(raws) {
						return
					}
					for i := start; i < min(end, len(raws)); i++ {
						one(i)
					}
				}
			})
		}
		wg.Wait()
	}

	// Reassemble in fetch order, moving records down over the rejected.
	keep := recs[:0]
	for i := range recs {
		if rejs[i] != nil {
			p.rejects = append(p.rejects, *rejs[i])
			continue
		}
		keep = append(keep, recs[i])
	}
	clear(recs[len(keep):])
	if len(keep) > 0 {
		p.recs = keep
	}
}

// store assigns versions against what the store holds, drops exact
// duplicates and stale versions, and writes the batch.
func (r *Runner) store(ctx context.Context, p *prepared) (stored, dups, stale int, err error) {
	ids := make([]string, 0, len(p.recs))
	for i := range p.recs {
		ids = append(ids, p.recs[i].RecordID)
	}
	latest, err := r.Store.LatestVersions(ctx, ids)
	if err != nil {
		return 0, 0, 0, err
	}
	keep := p.recs[:0]
	for _, rec := range p.recs {
		prev, seen := latest[rec.RecordID]
		v, verdict := Version(prev, seen, &rec)
		switch verdict {
		case Duplicate:
			dups++
			continue
		case StaleVersion:
			stale++
			r.Log.Info("stale version ignored", zap.String("record_id", rec.RecordID),
				zap.String("source_key", rec.SourceKey), zap.Time("source_updated_at", rec.SourceUpdatedAt),
				zap.Time("stored_updated_at", prev.SourceUpdatedAt))
			continue
		}
		rec.Version = v
		latest[rec.RecordID] = store.Latest{Version: v, ContentHash: rec.ContentHash, SourceUpdatedAt: rec.SourceUpdatedAt}
		keep = append(keep, rec)
	}
	err = r.Store.WriteBatch(ctx, &store.Batch{Raws: p.raws, Records: keep, Rejects: p.rejects})
	return len(keep), dups, stale, err
}

// Verdict is what Version decided about an incoming record.
type Verdict int

// Verdicts.
const (
	NewVersion Verdict = iota
	Duplicate
	StaleVersion
)

// Version decides the version of an incoming record given the stored
// current one. The same content is a duplicate; content older (by source
// updated-at) than what is stored is stale; anything else is a new version,
// numbered by the source's updated-at in milliseconds where that is higher
// than the stored version, so re-pulling after a crash yields the same
// number and ReplacingMergeTree collapses it.
func Version(prev store.Latest, seen bool, rec *record.Record) (uint64, Verdict) {
	if !seen {
		if rec.SourceUpdatedAt.IsZero() || rec.SourceUpdatedAt.UnixMilli() <= 0 {
			return 1, NewVersion
		}
		return uint64(rec.SourceUpdatedAt.UnixMilli()), NewVersion
	}
	if prev.ContentHash == rec.ContentHash {
		return 0, Duplicate
	}
	if !rec.SourceUpdatedAt.IsZero() && rec.SourceUpdatedAt.Before(prev.SourceUpdatedAt) {
		return 0, StaleVersion
	}
	v := prev.Version + 1
	if ms := rec.SourceUpdatedAt.UnixMilli(); ms > 0 && uint64(ms) > v {
		v = uint64(ms)
	}
	return v, NewVersion
}
