package store

import (
	"context"
	"fmt"
	"time"
)

// Cursor returns the saved cursor of a source (or a push watermark), or
// ok=false when none was saved yet.
func (s *Store) Cursor(ctx context.Context, name string) (value string, ok bool, err error) {
	rows, err := s.conn.Query(ctx, "SELECT argMax(value, seq), count() FROM "+s.t("cursors")+" WHERE name = ?", name)
	if err != nil {
		return "", false, fmt.Errorf("read cursor %s: %w", name, err)
	}
	defer rows.Close()
	var n uint64
	if rows.Next() {
		if err := rows.Scan(&value, &n); err != nil {
			return "", false, fmt.Errorf("read cursor %s: %w", name, err)
		}
	}
	return value, n > 0, rows.Err()
}

// SaveCursor records a new cursor value. Callers save a cursor only after the
// data it covers is durably stored (DESIGN.md §3).
func (s *Store) SaveCursor(ctx context.Context, name, value string) error {
	now := time.Now()
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.t("cursors")+" (name, value, seq, updated_at)")
	if err != nil {
		return fmt.Errorf("save cursor %s: %w", name, err)
	}
	defer b.Abort()
	if err := b.Append(name, value, uint64(now.UnixNano()), now); err != nil {
		return fmt.Errorf("save cursor %s: %w", name, err)
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("save cursor %s: %w", name, err)
	}
	return nil
}
