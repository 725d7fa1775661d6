package ingest

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/panjin-gov/syncd/internal/record"
	"github.com/panjin-gov/syncd/internal/store"
)

// ReplayStore is what a replay needs of the store.
type ReplayStore interface {
	LatestRaws(ctx context.Context, source, afterKey string, limit int) ([]store.Raw, error)
	LatestVersions(ctx context.Context, ids []string) (map[string]store.Latest, error)
	WriteBatch(ctx context.Context, b *store.Batch) error
}

// Unsealer opens a sealed raw payload (the original, with ID numbers).
type Unsealer interface {
	OpenBytes(ct []byte) ([]byte, error)
}

// Replayer re-normalizes a source's stored raw payloads with the current
// mapping, after a mapping change, and writes a new version only where the
// canonical result changed. The latest payload of each source key is used
// (what the source says now); versions are decided exactly as a pull
// decides them, so an unchanged result is a duplicate and is not written.
type Replayer struct {
	Source     string
	Store      ReplayStore
	Normalizer Normalizer
	Unsealer   Unsealer // nil: sealed originals cannot be opened; the masked payload is used
	BatchSize  int
	Log        *zap.Logger
	// DryRun counts what would change and writes nothing.
	DryRun bool
}

// ReplayStats counts what a replay did.
type ReplayStats struct {
	Raws      int // source keys replayed
	Changed   int // new versions written (or that would be, in a dry run)
	Unchanged int // same canonical content as stored
	New       int // of Changed: records not in the store before (were rejected)
	Rejected  int // payloads the current mapping rejects (stored records are left as they are)
	Duration  time.Duration
}

// Run replays every stored source key of the source.
func (r *Replayer) Run(ctx context.Context) (ReplayStats, error) {
	start := time.Now()
	var st ReplayStats
	size := r.BatchSize
	if size <= 0 {
		size = 1000
	}
	after := ""
	for {
		raws, err := r.Store.LatestRaws(ctx, r.Source, after, size)
		if err != nil {
			return st, err
		}
		if len(raws) == 0 {
			break
		}
		after = raws[len(raws)-1].Key
		if err := r.batch(ctx, raws, &st); err != nil {
			return st, fmt.Errorf("replay %s after key %q: %w", r.Source, after, err)
		}
		r.Log.Info("replay progress", zap.String("source", r.Source), zap.Int("raws", st.Raws),
			zap.Int("changed", st.Changed), zap.Int("rejected", st.Rejected))
		if len(raws) < size {
			break
		}
	}
	st.Duration = time.Since(start)
	r.Log.Info("replay done", zap.String("source", r.Source), zap.Int("raws", st.Raws), zap.Int("changed", st.Changed),
		zap.Int("new", st.New), zap.Int("unchanged", st.Unchanged), zap.Int("rejected", st.Rejected),
		zap.Bool("dry_run", r.DryRun), zap.Duration("duration", st.Duration))
	return st, nil
}

func (r *Replayer) batch(ctx context.Context, raws []store.Raw, st *ReplayStats) error {
	now := time.Now()
	var recs []record.Record
	var rejects []record.Reject
	for i := range raws {
		raw := raws[i].Raw
		st.Raws++
		if len(raws[i].Sealed) > 0 && r.Unsealer != nil {
			orig, err := r.Unsealer.OpenBytes(raws[i].Sealed)
			if err != nil {
				return fmt.Errorf("source key %s: open sealed payload: %w", raw.Key, err)
			}
			raw.Payload = orig
		}
		raw.FetchedAt = now
		rec, rej := r.Normalizer.Normalize(&raw, now)
		if rej != nil {
			st.Rejected++
			rej.Payload, rej.PayloadSealed = raws[i].Payload, raws[i].Sealed
			rejects = append(rejects, *rej)
			continue
		}
		recs = append(recs, rec)
	}
	ids := make([]string, len(recs))
	for i := range recs {
		ids[i] = recs[i].RecordID
	}
	latest, err := r.Store.LatestVersions(ctx, ids)
	if err != nil {
		return err
	}
	keep := recs[:0]
	for _, rec := range recs {
		prev, seen := latest[rec.RecordID]
		v, verdict := Version(prev, seen, &rec)
		if verdict != NewVersion {
			// A stale verdict cannot come from the same payload; count it
			// as unchanged rather than overwrite a newer stored version.
			st.Unchanged++
			continue
		}
		if !seen {
			st.New++
		}
		rec.Version = v
		latest[rec.RecordID] = store.Latest{Version: v, ContentHash: rec.ContentHash, SourceUpdatedAt: rec.SourceUpdatedAt}
		keep = append(keep, rec)
	}
	st.Changed += len(keep)
	if r.DryRun || (len(keep) == 0 && len(rejects) == 0) {
		return nil
	}
	return r.Store.WriteBatch(ctx, &store.Batch{Records: keep, Rejects: rejects})
}
