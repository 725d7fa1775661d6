package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/ext"

	"github.com/panjin-gov/syncd/internal/record"
)

// recordColumns is the explicit column list every records INSERT and SELECT
// uses; 18.16 sees no columns in a batch without one.
const recordColumns = `record_id, version, kind, status, severity,
	subject_type, subject_name, subject_uscc, subject_id_type, subject_id_hash, subject_id_masked, subject_id_enc,
	legal_rep, region_code, doc_no, violation_type, facts, legal_basis, category, content,
	fine_amount, confiscation_amount, decision_date, valid_until, publicity_until,
	authority_name, authority_uscc, data_source_unit, data_source_uscc, remark,
	source_system, source_key, source_updated_at, ingested_at, raw_hash, content_hash,
	warnings, unpublished`

// recordSelect reads recordColumns back; decimals come as strings so amounts
// stay exact.
var recordSelect = strings.NewReplacer(
	"fine_amount,", "toString(fine_amount),",
	"confiscation_amount,", "toString(confiscation_amount),",
).Replace(recordColumns)

// Raw is a raw payload as stored: Payload is what may be shown (a person's
// ID number masked), Sealed the AEAD-sealed original when the two differ,
// Hash the SHA-256 of the original.
type Raw struct {
	record.Raw
	Hash   string
	Sealed []byte
}

// Batch is what one ingest flush writes: the raw payloads as fetched, the
// records and rejects they became. WriteBatch writes it as one ClickHouse
// batch per table.
type Batch struct {
	Raws    []Raw
	Records []record.Record
	Rejects []record.Reject
}

// WriteBatch stores raws, then rejects, then records and their log entries.
// Every table is idempotent under re-writes of the same content (Replacing
// engines keyed on content), so a batch re-pulled after a crash between
// WriteBatch and the cursor save leaves no visible duplicate.
//
// The tables are written one after the other on purpose: writing them on
// separate connections at once measured no faster, as the server's cost per
// INSERT is mostly creating the new part's files (two per column), which
// does not overlap on one file system.
func (s *Store) WriteBatch(ctx context.Context, b *Batch) error {
	if len(b.Raws) > 0 {
		if err := s.insertRaws(ctx, b.Raws); err != nil {
			return err
		}
	}
	if len(b.Rejects) > 0 {
		if err := s.insertRejects(ctx, b.Rejects); err != nil {
			return err
		}
	}
	if len(b.Records) > 0 {
		if err := s.InsertRecords(ctx, b.Records); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) insertRaws(ctx context.Context, raws []Raw) error {
	batch, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.t("raw_records")+
		" (source, source_key, raw_hash, encoding, payload, payload_sealed, source_updated_at, fetched_at)")
	if err != nil {
		return fmt.Errorf("prepare raw_records: %w", err)
	}
	defer batch.Abort()
	for i := range raws {
		r := &raws[i]
		hash := r.Hash
		if hash == "" {
			hash = r.Raw.Hash()
		}
		// The driver takes []byte for String columns as is: no copy.
		if err := batch.Append(r.Source, r.Key, hash, r.Encoding, r.Payload, r.Sealed,
			dateTime(r.UpdatedAt), dateTime(r.FetchedAt)); err != nil {
			return fmt.Errorf("append raw %s/%s: %w", r.Source, r.Key, err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("insert %d raw_records: %w", len(raws), err)
	}
	return nil
}

func (s *Store) insertRejects(ctx context.Context, rejects []record.Reject) error {
	batch, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.t("rejects")+
		" (source, source_key, raw_hash, field, reason, message, payload, payload_sealed, rejected_at)")
	if err != nil {
		return fmt.Errorf("prepare rejects: %w", err)
	}
	defer batch.Abort()
	for i := range rejects {
		r := &rejects[i]
		if err := batch.Append(r.Source, r.SourceKey, r.RawHash, r.Field, r.Reason, r.Message,
			r.Payload, r.PayloadSealed, dateTime(r.RejectedAt)); err != nil {
			return fmt.Errorf("append reject %s/%s: %w", r.Source, r.SourceKey, err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("insert %d rejects: %w", len(rejects), err)
	}
	return nil
}

// InsertRecords writes record versions and their record_log entries. The
// caller assigns versions (see ingest's versioning); the store only keeps
// the highest per record_id visible.
func (s *Store) InsertRecords(ctx context.Context, recs []record.Record) error {
	batch, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.t("records")+" ("+recordColumns+")")
	if err != nil {
		return fmt.Errorf("prepare records: %w", err)
	}
	defer batch.Abort()
	for i := range recs {
		r := &recs[i]
		if err := batch.Append(
			r.RecordID, r.Version, string(r.Kind), string(r.Status), r.Severity,
			string(r.SubjectType), r.SubjectName, r.SubjectUSCC, r.SubjectIDType, r.SubjectIDHash, r.SubjectIDMasked, r.SubjectIDEnc,
			r.LegalRep, r.RegionCode, r.DocNo, r.ViolationType, r.Facts, r.LegalBasis, r.Category, r.Content,
			r.FineAmount.String(), r.ConfiscationAmount.String(), date(r.DecisionDate), nullDate(r.ValidUntil), nullDate(r.PublicityUntil),
			r.AuthorityName, r.AuthorityUSCC, r.DataSourceUnit, r.DataSourceUSCC, r.Remark,
			r.SourceSystem, r.SourceKey, dateTime(r.SourceUpdatedAt), dateTime(r.IngestedAt), r.RawHash, r.ContentHash,
			warnings(r.Warnings), boolU8(r.Unpublished),
		); err != nil {
			return fmt.Errorf("append record %s v%d (source %s key %s): %w", r.RecordID, r.Version, r.SourceSystem, r.SourceKey, err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("insert %d records: %w", len(recs), err)
	}

	logBatch, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.t("record_log")+" (ingested_at, record_id, version)")
	if err != nil {
		return fmt.Errorf("prepare record_log: %w", err)
	}
	defer logBatch.Abort()
	for i := range recs {
		if err := logBatch.Append(dateTime(recs[i].IngestedAt), recs[i].RecordID, recs[i].Version); err != nil {
			return err
		}
	}
	if err := logBatch.Send(); err != nil {
		return fmt.Errorf("insert %d record_log rows: %w", len(recs), err)
	}
	return nil
}

// Latest is what the store holds as the current version of a record.
type Latest struct {
	Version         uint64
	ContentHash     string
	SourceUpdatedAt time.Time
}

// LatestVersions returns the current version of each id that the store holds.
// Ids it does not hold are absent from the map.
//
// The ids go to the server as an external table in Native format, not as an
// IN list in the SQL text: for a few thousand ids 18.16 answers several times
// faster (it parses no literal list), and the query size limit does not
// apply, so there is one query per call.
func (s *Store) LatestVersions(ctx context.Context, ids []string) (map[string]Latest, error) {
	out := make(map[string]Latest, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	set, err := ext.NewTable("ids", ext.Column("id", "String"))
	if err != nil {
		return nil, fmt.Errorf("latest versions: %w", err)
	}
	if _, err := set.Block().Columns[0].Append(ids); err != nil {
		return nil, fmt.Errorf("latest versions: %w", err)
	}
	rows, err := s.conn.Query(clickhouse.Context(ctx, clickhouse.WithExternalTable(set)),
		`SELECT record_id, max(version), argMax(content_hash, version), argMax(source_updated_at, version)
		FROM `+s.t("records")+` WHERE record_id IN (SELECT id FROM ids) GROUP BY record_id`)
	if err != nil {
		return nil, fmt.Errorf("latest versions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var l Latest
		if err := rows.Scan(&id, &l.Version, &l.ContentHash, &l.SourceUpdatedAt); err != nil {
			return nil, fmt.Errorf("latest versions: %w", err)
		}
		out[id] = l
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("latest versions: %w", err)
	}
	return out, nil
}

// Get returns the current version of one record, or ok=false.
func (s *Store) Get(ctx context.Context, id string) (rec record.Record, ok bool, err error) {
	recs, err := s.selectRecords(ctx, "SELECT "+recordSelect+" FROM "+s.t("records")+
		" FINAL WHERE record_id = ? LIMIT 1", id)
	if err != nil || len(recs) == 0 {
		return record.Record{}, false, err
	}
	return recs[0], true, nil
}

// RecordCount is the number of distinct records visible (current versions).
func (s *Store) RecordCount(ctx context.Context) (uint64, error) {
	var n uint64
	err := s.conn.QueryRow(ctx, "SELECT uniqExact(record_id) FROM "+s.t("records")).Scan(&n)
	return n, err
}

func (s *Store) selectRecords(ctx context.Context, query string, args ...any) ([]record.Record, error) {
	rows, err := s.conn.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []record.Record
	for rows.Next() {
		var (
			r                     record.Record
			kind, status, subjT   string
			enc, fine, confisc    string
			validUntil, publicity *time.Time
			unpublished           uint8
		)
		if err := rows.Scan(
			&r.RecordID, &r.Version, &kind, &status, &r.Severity,
			&subjT, &r.SubjectName, &r.SubjectUSCC, &r.SubjectIDType, &r.SubjectIDHash, &r.SubjectIDMasked, &enc,
			&r.LegalRep, &r.RegionCode, &r.DocNo, &r.ViolationType, &r.Facts, &r.LegalBasis, &r.Category, &r.Content,
			&fine, &confisc, &r.DecisionDate, &validUntil, &publicity,
			&r.AuthorityName, &r.AuthorityUSCC, &r.DataSourceUnit, &r.DataSourceUSCC, &r.Remark,
			&r.SourceSystem, &r.SourceKey, &r.SourceUpdatedAt, &r.IngestedAt, &r.RawHash, &r.ContentHash,
			&r.Warnings, &unpublished,
		); err != nil {
			return nil, fmt.Errorf("scan record: %w", err)
		}
		r.Kind, r.Status, r.SubjectType = record.Kind(kind), record.Status(status), record.SubjectType(subjT)
		r.Unpublished = unpublished != 0
		if len(r.Warnings) == 0 {
			r.Warnings = nil
		}
		if enc != "" {
			r.SubjectIDEnc = []byte(enc)
		}
		var err error
		if r.FineAmount, err = record.ParseAmount(fine); err != nil {
			return nil, fmt.Errorf("record %s fine_amount: %w", r.RecordID, err)
		}
		if r.ConfiscationAmount, err = record.ParseAmount(confisc); err != nil {
			return nil, fmt.Errorf("record %s confiscation_amount: %w", r.RecordID, err)
		}
		if validUntil != nil {
			r.ValidUntil = *validUntil
		}
		if publicity != nil {
			r.PublicityUntil = *publicity
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// shanghai is the zone every DateTime column is declared in.
var shanghai = func() *time.Location {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		return time.FixedZone("CST", 8*3600)
	}
	return loc
}()

// dateTime clamps t into what DateTime can hold (1970..2105); zero is 1970.
func dateTime(t time.Time) time.Time {
	if t.IsZero() || t.Unix() < 0 {
		return time.Unix(0, 0)
	}
	return t
}

// date converts a calendar date to the midnight UTC the driver sends as Date.
func date(t time.Time) time.Time {
	if t.IsZero() {
		return time.Unix(0, 0).UTC()
	}
	y, m, d := t.In(shanghai).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

func nullDate(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	d := date(t)
	return &d
}

// DueForExpiry returns up to limit current versions that are published
// (active or corrected) and whose publicity_until is before today. It reads
// current versions with argMax, which stays correct before merges, unlike a
// filter under FINAL on older servers.
func (s *Store) DueForExpiry(ctx context.Context, today time.Time, limit int) ([]record.Record, error) {
	rows, err := s.conn.Query(ctx, `SELECT record_id FROM (
			SELECT record_id, argMax(status, version) AS st, argMax(publicity_until, version) AS pu
			FROM `+s.t("records")+` GROUP BY record_id)
		WHERE st IN ('active', 'corrected') AND pu IS NOT NULL AND pu < toDate(?) LIMIT ?`, today.Format("2006-01-02"), limit)
	if err != nil {
		return nil, fmt.Errorf("due for expiry: %w", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return s.Current(ctx, ids)
}

// Current returns the current version of each of ids that the store holds.
func (s *Store) Current(ctx context.Context, ids []string) ([]record.Record, error) {
	var out []record.Record
	err := chunks(ids, func(part []string) error {
		recs, err := s.selectRecords(ctx, "SELECT "+recordSelect+" FROM "+s.t("records")+
			" WHERE record_id IN ? ORDER BY record_id, version DESC LIMIT 1 BY record_id", inList(part))
		out = append(out, recs...)
		return err
	})
	return out, err
}

// warnings never passes nil: the driver wants a slice for Array(String).
func warnings(w []string) []string {
	if w == nil {
		return []string{}
	}
	return w
}

func boolU8(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}
