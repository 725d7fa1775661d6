package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"
)

// migration is one versioned schema change. Statements use {db} for the
// database and {on_cluster} for the ON CLUSTER clause; {replacing} and
// {merge} expand to the table engine chosen by config.
type migration struct {
	version    uint32
	name       string
	statements []string
}

// migrations are applied in order and never edited once released: a schema
// change is a new entry.
var migrations = []migration{
	{1, "initial schema", []string{
		`CREATE TABLE IF NOT EXISTS {db}.records {on_cluster} (
			record_id String,
			version UInt64,
			kind Enum8('court_judgment' = 1, 'judgment_debtor' = 2, 'admin_penalty' = 3,
			           'disciplinary_action' = 4, 'accountability' = 5, 'contract_breach' = 6),
			status Enum8('active' = 1, 'disputed' = 2, 'corrected' = 3, 'revoked' = 4, 'repaired' = 5, 'expired' = 6),
			severity String,
			subject_type String,
			subject_name String,
			subject_uscc String,
			subject_id_type String,
			subject_id_hash String,
			subject_id_masked String,
			subject_id_enc String,
			legal_rep String,
			region_code String,
			doc_no String,
			violation_type String,
			facts String,
			legal_basis String,
			category String,
			content String,
			fine_amount Decimal(18, 6),
			confiscation_amount Decimal(18, 6),
			decision_date Date,
			valid_until Nullable(Date),
			publicity_until Nullable(Date),
			authority_name String,
			authority_uscc String,
			data_source_unit String,
			data_source_uscc String,
			remark String,
			source_system String,
			source_key String,
			source_updated_at DateTime('Asia/Shanghai'),
			ingested_at DateTime('Asia/Shanghai'),
			raw_hash String,
			content_hash String
		) ENGINE = {replacing}(version) ORDER BY record_id`,
		// record_log indexes record versions by ingest time so push runs
		// read only what changed since their watermark (DESIGN.md §3).
		`CREATE TABLE IF NOT EXISTS {db}.record_log {on_cluster} (
			ingested_at DateTime('Asia/Shanghai'),
			record_id String,
			version UInt64
		) ENGINE = {replacing}() PARTITION BY toYYYYMM(ingested_at) ORDER BY (ingested_at, record_id, version)`,
		`CREATE TABLE IF NOT EXISTS {db}.raw_records {on_cluster} (
			source String,
			source_key String,
			raw_hash String,
			encoding String,
			payload String,
			source_updated_at DateTime('Asia/Shanghai'),
			fetched_at DateTime('Asia/Shanghai')
		) ENGINE = {replacing}() ORDER BY (source, source_key, raw_hash)`,
		`CREATE TABLE IF NOT EXISTS {db}.rejects {on_cluster} (
			source String,
			source_key String,
			raw_hash String,
			field String,
			reason String,
			message String,
			payload String,
			rejected_at DateTime('Asia/Shanghai')
		) ENGINE = {replacing}() ORDER BY (source, source_key, raw_hash, field, reason)`,
		`CREATE TABLE IF NOT EXISTS {db}.push_ledger {on_cluster} (
			target String,
			record_id String,
			version UInt64,
			op Enum8('add' = 1, 'update' = 2, 'withdraw' = 3),
			outcome Enum8('accepted' = 1, 'rejected' = 2, 'failed' = 3, 'skipped' = 4),
			code String,
			message String,
			batch_id String,
			attempt_at DateTime('Asia/Shanghai')
		) ENGINE = {merge}() ORDER BY (target, record_id, version, attempt_at)`,
		`CREATE TABLE IF NOT EXISTS {db}.cursors {on_cluster} (
			name String,
			value String,
			seq UInt64,
			updated_at DateTime('Asia/Shanghai')
		) ENGINE = {replacing}(seq) ORDER BY name`,
	}},
	// Raw payloads holding a person's ID number are stored with it masked;
	// the original is kept only sealed with the PII key (for replay).
	{2, "sealed raw payloads", []string{
		`ALTER TABLE {db}.raw_records {on_cluster} ADD COLUMN payload_sealed String`,
		`ALTER TABLE {db}.rejects {on_cluster} ADD COLUMN payload_sealed String`,
	}},
	// Database- and file-style platforms answer later: a version handed over
	// but not yet answered is 'sent' until the platform's feedback arrives.
	{3, "sent outcome for asynchronous receipts", []string{
		`ALTER TABLE {db}.push_ledger {on_cluster} MODIFY COLUMN outcome
			Enum8('accepted' = 1, 'rejected' = 2, 'failed' = 3, 'skipped' = 4, 'sent' = 5)`,
	}},
	// Validation rules set to "warn" keep the record and say why; severity
	// tiers that are not published (轻微) are stored but withheld from push.
	{4, "warnings and unpublished flag", []string{
		`ALTER TABLE {db}.records {on_cluster} ADD COLUMN warnings Array(String)`,
		`ALTER TABLE {db}.records {on_cluster} ADD COLUMN unpublished UInt8 DEFAULT 0`,
	}},
}

// Migrate creates the database and applies every migration not yet recorded
// in schema_migrations. It is idempotent: running it again applies nothing.
// It returns the versions it applied.
func (s *Store) Migrate(ctx context.Context) ([]uint32, error) {
	onCluster := ""
	if s.cfg.Cluster != "" {
		onCluster = "ON CLUSTER `" + s.cfg.Cluster + "`"
	}
	if err := s.conn.Exec(ctx, fmt.Sprintf("CREATE DATABASE IF NOT EXISTS `%s` %s", s.db, onCluster)); err != nil {
		return nil, fmt.Errorf("create database %s: %w", s.db, err)
	}
	if err := s.conn.Exec(ctx, s.expand(`CREATE TABLE IF NOT EXISTS {db}.schema_migrations {on_cluster} (
		version UInt32, name String, applied_at DateTime('Asia/Shanghai')
	) ENGINE = {merge}() ORDER BY version`)); err != nil {
		return nil, fmt.Errorf("create schema_migrations: %w", err)
	}
	applied := map[uint32]bool{}
	rows, err := s.conn.Query(ctx, "SELECT version FROM "+s.t("schema_migrations"))
	if err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	for rows.Next() {
		var v uint32
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return nil, err
		}
		applied[v] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}

	var done []uint32
	for _, m := range migrations {
		if applied[m.version] {
			continue
		}
		for i, stmt := range m.statements {
			if err := s.conn.Exec(ctx, s.expand(stmt)); err != nil {
				return done, fmt.Errorf("migration %d (%s) statement %d: %w", m.version, m.name, i+1, err)
			}
		}
		b, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.t("schema_migrations")+" (version, name, applied_at)")
		if err != nil {
			return done, err
		}
		if err := b.Append(m.version, m.name, time.Now()); err != nil {
			return done, err
		}
		if err := b.Send(); err != nil {
			return done, fmt.Errorf("record migration %d: %w", m.version, err)
		}
		done = append(done, m.version)
		s.log.Info("migration applied", zap.Uint32("version", m.version), zap.String("name", m.name))
	}
	return done, nil
}

// SchemaVersion is the highest migration this binary knows.
func SchemaVersion() uint32 { return migrations[len(migrations)-1].version }

func (s *Store) expand(stmt string) string {
	replacing, merge, onCluster := "ReplacingMergeTree", "MergeTree", ""
	if s.cfg.Cluster != "" {
		// Beyond one machine: same schema, replicated engines (DESIGN.md §4).
		replacing, merge = "ReplicatedReplacingMergeTree", "ReplicatedMergeTree"
		onCluster = "ON CLUSTER `" + s.cfg.Cluster + "`"
	}
	r := strings.NewReplacer(
		"{db}", "`"+s.db+"`",
		"{on_cluster}", onCluster,
		"{replacing}()", replicatedArgs(replacing, ""),
		"{replacing}(version)", replicatedArgs(replacing, "version"),
		"{replacing}(seq)", replicatedArgs(replacing, "seq"),
		"{merge}()", replicatedArgs(merge, ""),
	)
	return r.Replace(stmt)
}

// replicatedArgs writes the engine clause; Replicated engines take the
// ZooKeeper path and replica name first (macros from the server's config).
func replicatedArgs(engine, versionCol string) string {
	var args []string
	if strings.HasPrefix(engine, "Replicated") {
		args = append(args, "'/clickhouse/tables/{shard}/{database}/{table}'", "'{replica}'")
	}
	if versionCol != "" {
		args = append(args, versionCol)
	}
	return engine + "(" + strings.Join(args, ", ") + ")"
}
