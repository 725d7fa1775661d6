package store

import (
	"context"
	"fmt"
	"time"

	"github.com/panjin-gov/syncd/internal/record"
)

// Op is what a push asks a platform to do with a record version.
type Op string

// Push operations.
const (
	OpAdd      Op = "add"
	OpUpdate   Op = "update"
	OpWithdraw Op = "withdraw"
)

// Outcome is how one push attempt of one record version ended.
type Outcome string

// Outcomes. Accepted, Rejected and Skipped are final for a version; Failed
// (transport trouble) is retried on the next run. Sent means the platform
// took the version and answers later (database and file exchange styles):
// it is not sent again, and the platform's feedback turns it into Accepted or
// Rejected.
const (
	Accepted Outcome = "accepted"
	Rejected Outcome = "rejected"
	Failed   Outcome = "failed"
	Skipped  Outcome = "skipped" // withdraw of a version the platform never held
	Sent     Outcome = "sent"    // handed over, awaiting the platform's feedback
)

// LedgerEntry is one attempt's outcome for one record version at one target.
type LedgerEntry struct {
	Target    string
	RecordID  string
	Version   uint64
	Op        Op
	Outcome   Outcome
	Code      string // the platform's code, for rejections
	Message   string
	BatchID   string
	AttemptAt time.Time
}

// WriteLedger appends entries to the push ledger.
func (s *Store) WriteLedger(ctx context.Context, entries []LedgerEntry) error {
	if len(entries) == 0 {
		return nil
	}
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.t("push_ledger")+
		" (target, record_id, version, op, outcome, code, message, batch_id, attempt_at)")
	if err != nil {
		return fmt.Errorf("prepare push_ledger: %w", err)
	}
	defer b.Abort()
	for _, e := range entries {
		if err := b.Append(e.Target, e.RecordID, e.Version, string(e.Op), string(e.Outcome), e.Code, e.Message, e.BatchID, dateTime(e.AttemptAt)); err != nil {
			return fmt.Errorf("append ledger %s %s v%d: %w", e.Target, e.RecordID, e.Version, err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("insert %d ledger rows: %w", len(entries), err)
	}
	return nil
}

// Pending returns up to limit current record versions that changed at or after
// since and whose latest outcome at target is not final (accepted, rejected,
// skipped) or sent (awaiting feedback): new ones, failed ones, requeued ones,
// oldest change first. Its cost follows the number of changes since the
// watermark, not the size of the store: candidates come from record_log,
// which is ordered by ingest time.
func (s *Store) Pending(ctx context.Context, target string, since time.Time, limit int) ([]record.Record, error) {
	changed := "SELECT record_id FROM " + s.t("record_log") + " WHERE ingested_at >= ?"
	q := "SELECT " + recordSelect + " FROM " + s.t("records") +
		" WHERE record_id IN (" + changed + ")" +
		" AND (record_id, version) IN (SELECT record_id, max(version) FROM " + s.t("records") +
		"   WHERE record_id IN (" + changed + ") GROUP BY record_id)" +
		" AND (record_id, version) NOT IN (SELECT record_id, version FROM (" +
		"   SELECT record_id, version, argMax(outcome, " + latestOrder + ") AS o FROM " + s.t("push_ledger") +
		"   WHERE target = ? AND record_id IN (" + changed + ") GROUP BY record_id, version)" +
		"   WHERE o IN ('accepted', 'rejected', 'skipped', 'sent'))" +
		" ORDER BY ingested_at, record_id LIMIT ?"
	since = dateTime(since)
	recs, err := s.selectRecords(ctx, q, since, since, target, since, limit*2)
	if err != nil {
		return nil, fmt.Errorf("pending for %s since %s: %w", target, since.Format(time.RFC3339), err)
	}
	// Before a merge the same (record_id, version) may be stored twice.
	out := recs[:0]
	seen := make(map[string]bool, len(recs))
	for _, r := range recs {
		if seen[r.RecordID] {
			continue
		}
		seen[r.RecordID] = true
		out = append(out, r)
		if len(out) == limit {
			break
		}
	}
	return out, nil
}

// latestOrder orders a version's ledger entries to find its latest outcome.
// attempt_at has one-second resolution, so within one second a final
// outcome (accepted, rejected, skipped) wins over failed, and failed over
// sent: feedback that arrives in the same second as the hand-over decides.
const latestOrder = "toUInt64(attempt_at) * 4 + multiIf(outcome = 'sent', 0, outcome = 'failed', 1, 2)"

// Delivered is what a target last accepted (or was handed, awaiting its
// feedback) for a record.
type Delivered struct {
	Version uint64
	Op      Op
	Sent    bool // handed over, no feedback yet
}

// LastAccepted returns, per record id, the highest version the target
// accepted or holds awaiting feedback, and the op it was sent as. Push uses
// it to choose add, update or withdraw: a version awaiting feedback counts
// as held, so a revocation that follows it is withdrawn rather than skipped.
// A version's latest outcome decides (a 'sent' later rejected is not held).
func (s *Store) LastAccepted(ctx context.Context, target string, ids []string) (map[string]Delivered, error) {
	out := make(map[string]Delivered, len(ids))
	err := chunks(ids, func(part []string) error {
		rows, err := s.conn.Query(ctx, "SELECT record_id, version, toString(op), toString(o) FROM ("+
			"SELECT record_id, version, argMax(op, "+latestOrder+") AS op, argMax(outcome, "+latestOrder+") AS o FROM "+s.t("push_ledger")+
			" WHERE target = ? AND outcome IN ('accepted', 'sent', 'rejected') AND record_id IN ?"+
			" GROUP BY record_id, version) WHERE o IN ('accepted', 'sent')", target, inList(part))
		if err != nil {
			return fmt.Errorf("last accepted for %s: %w", target, err)
		}
		defer rows.Close()
		for rows.Next() {
			var id, op, o string
			var d Delivered
			if err := rows.Scan(&id, &d.Version, &op, &o); err != nil {
				return err
			}
			d.Op, d.Sent = Op(op), Outcome(o) == Sent
			if prev, ok := out[id]; !ok || d.Version > prev.Version {
				out[id] = d
			}
		}
		return rows.Err()
	})
	return out, err
}

// LedgerSummary counts a target's ledger by latest outcome per record version.
type LedgerSummary struct {
	Accepted, Rejected, Failed, Skipped uint64
	Sent                                uint64 // awaiting the platform's feedback
	OldestSent                          time.Time
	Pending                             uint64 // current versions with no final outcome
	LastErrors                          []LedgerEntry
}

// Summary reports a target's ledger: final outcomes per record version,
// versions still pending, and the most recent rejections and failures.
func (s *Store) Summary(ctx context.Context, target string, lastErrors int) (LedgerSummary, error) {
	var sum LedgerSummary
	rows, err := s.conn.Query(ctx, `SELECT toString(o), count() FROM (
			SELECT argMax(outcome, `+latestOrder+`) AS o FROM `+s.t("push_ledger")+`
			WHERE target = ? GROUP BY record_id, version) GROUP BY o`, target)
	if err != nil {
		return sum, fmt.Errorf("ledger summary %s: %w", target, err)
	}
	for rows.Next() {
		var o string
		var n uint64
		if err := rows.Scan(&o, &n); err != nil {
			rows.Close()
			return sum, err
		}
		switch Outcome(o) {
		case Accepted:
			sum.Accepted = n
		case Rejected:
			sum.Rejected = n
		case Failed:
			sum.Failed = n
		case Skipped:
			sum.Skipped = n
		case Sent:
			sum.Sent = n
		}
	}
	rows.Close()
	if err := s.conn.QueryRow(ctx, `SELECT count() FROM (
			SELECT record_id, max(version) AS version FROM `+s.t("records")+` GROUP BY record_id)
		WHERE (record_id, version) NOT IN (SELECT record_id, version FROM (
			SELECT record_id, version, argMax(outcome, `+latestOrder+`) AS o FROM `+s.t("push_ledger")+`
			WHERE target = ? GROUP BY record_id, version) WHERE o IN ('accepted', 'rejected', 'skipped', 'sent'))`, target).Scan(&sum.Pending); err != nil {
		return sum, fmt.Errorf("ledger pending %s: %w", target, err)
	}
	if sum.Sent > 0 {
		if err := s.conn.QueryRow(ctx, `SELECT min(at) FROM (
				SELECT argMax(outcome, `+latestOrder+`) AS o, max(attempt_at) AS at FROM `+s.t("push_ledger")+`
				WHERE target = ? GROUP BY record_id, version) WHERE o = 'sent'`, target).Scan(&sum.OldestSent); err != nil {
			return sum, fmt.Errorf("ledger oldest sent %s: %w", target, err)
		}
	}
	erows, err := s.conn.Query(ctx, `SELECT record_id, version, toString(op), toString(outcome), code, message, batch_id, attempt_at
		FROM `+s.t("push_ledger")+` WHERE target = ? AND outcome IN ('rejected', 'failed')
		ORDER BY attempt_at DESC LIMIT ?`, target, lastErrors)
	if err != nil {
		return sum, fmt.Errorf("ledger errors %s: %w", target, err)
	}
	defer erows.Close()
	for erows.Next() {
		e := LedgerEntry{Target: target}
		var op, outcome string
		if err := erows.Scan(&e.RecordID, &e.Version, &op, &outcome, &e.Code, &e.Message, &e.BatchID, &e.AttemptAt); err != nil {
			return sum, err
		}
		e.Op, e.Outcome = Op(op), Outcome(outcome)
		sum.LastErrors = append(sum.LastErrors, e)
	}
	return sum, erows.Err()
}

// SentVersion is a version a target was handed and has not answered for.
type SentVersion struct {
	RecordID   string
	Version    uint64
	Op         Op
	SentAt     time.Time
	IngestedAt time.Time // when the version was stored (its record_log time)
}

// SentBefore lists the versions whose latest outcome at target is 'sent'
// and that were handed over before cutoff: a database or file platform that
// never answered for them.
func (s *Store) SentBefore(ctx context.Context, target string, cutoff time.Time) ([]SentVersion, error) {
	rows, err := s.conn.Query(ctx, `SELECT l.record_id, l.version, toString(l.op), l.at, g.ingested
		FROM (
			SELECT record_id, version, argMax(op, `+latestOrder+`) AS op, argMax(outcome, `+latestOrder+`) AS o,
				max(attempt_at) AS at
			FROM `+s.t("push_ledger")+` WHERE target = ? GROUP BY record_id, version
		) AS l
		ANY LEFT JOIN (
			SELECT record_id, version, min(ingested_at) AS ingested FROM `+s.t("record_log")+` GROUP BY record_id, version
		) AS g USING (record_id, version)
		WHERE l.o = 'sent' AND l.at <= ?
		ORDER BY l.at`, target, dateTime(cutoff).UTC())
	if err != nil {
		return nil, fmt.Errorf("sent versions of %s: %w", target, err)
	}
	defer rows.Close()
	var out []SentVersion
	for rows.Next() {
		var v SentVersion
		var op string
		if err := rows.Scan(&v.RecordID, &v.Version, &op, &v.SentAt, &v.IngestedAt); err != nil {
			return nil, err
		}
		v.Op = Op(op)
		out = append(out, v)
	}
	return out, rows.Err()
}
