package store

import (
	"context"
	"fmt"

	"github.com/panjin-gov/syncd/internal/record"
)

// LatestRaws returns, for one source, the most recently fetched raw payload
// of each source key after afterKey, in key order, at most limit of them.
// Replay re-normalizes these: the latest payload of a key is what the
// source says now; older payloads were superseded by it.
func (s *Store) LatestRaws(ctx context.Context, source, afterKey string, limit int) ([]Raw, error) {
	rows, err := s.conn.Query(ctx, `SELECT source_key, argMax(raw_hash, fetched_at), argMax(encoding, fetched_at),
			argMax(payload, fetched_at), argMax(payload_sealed, fetched_at), argMax(source_updated_at, fetched_at)
		FROM `+s.t("raw_records")+` WHERE source = ? AND source_key > ?
		GROUP BY source_key ORDER BY source_key LIMIT ?`, source, afterKey, limit)
	if err != nil {
		return nil, fmt.Errorf("raw records of %s after %q: %w", source, afterKey, err)
	}
	defer rows.Close()
	var out []Raw
	for rows.Next() {
		r := Raw{Raw: record.Raw{Source: source}}
		var payload, sealed string
		if err := rows.Scan(&r.Key, &r.Hash, &r.Encoding, &payload, &sealed, &r.UpdatedAt); err != nil {
			return nil, fmt.Errorf("raw records of %s: %w", source, err)
		}
		r.Payload, r.Sealed = []byte(payload), []byte(sealed)
		out = append(out, r)
	}
	return out, rows.Err()
}
