// Package publicity ends publication of records whose publicity period
// (公示期) is over: each becomes a new version with status expired, which
// push turns into a withdraw at every platform that holds it.
package publicity

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/panjin-gov/syncd/internal/record"
	"github.com/panjin-gov/syncd/internal/store"
)

// Store is what expiry needs of the consolidated store.
type Store interface {
	DueForExpiry(ctx context.Context, today time.Time, limit int) ([]record.Record, error)
	InsertRecords(ctx context.Context, recs []record.Record) error
}

// Expire writes an expired version of every published record whose
// publicity-until date is before today (in loc). It returns how many.
func Expire(ctx context.Context, s Store, now time.Time, loc *time.Location, log *zap.Logger) (int, error) {
	y, m, d := now.In(loc).Date()
	today := time.Date(y, m, d, 0, 0, 0, 0, loc)
	total := 0
	for {
		due, err := s.DueForExpiry(ctx, today, 5000)
		if err != nil {
			return total, fmt.Errorf("expiry: %w", err)
		}
		if len(due) == 0 {
			break
		}
		for i := range due {
			r := &due[i]
			r.Status = record.Expired
			r.Version++
			r.IngestedAt = now
			r.ContentHash = r.ComputeContentHash()
		}
		if err := s.InsertRecords(ctx, due); err != nil {
			return total, fmt.Errorf("expiry: write %d expired versions: %w", len(due), err)
		}
		total += len(due)
	}
	log.Info("publicity expiry done", zap.Int("expired", total), zap.Time("today", today))
	return total, nil
}

var _ Store = (*store.Store)(nil)
