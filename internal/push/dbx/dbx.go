// Package dbx delivers record versions in the GB/T 39443 "database" style:
// syncd inserts rows into the platform's front-end database (前置库) tables,
// one transaction per batch, and later reads the platform's feedback rows
// back to learn which were accepted and which came back as 疑问数据 with a
// code.
//
// The front table holds, per row, the idempotency key, the op, the batch id,
// the time syncd wrote it, and the record in the platform profile's fields
// (one column per field). The feedback table has an increasing id, the key,
// a status, an error code and message. Column names are configuration; the
// defaults are the pinyin-initial names front-end databases commonly use.
package dbx

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	_ "github.com/go-sql-driver/mysql" // driver "mysql"
	_ "github.com/jackc/pgx/v5/stdlib" // driver "pgx"

	"github.com/panjin-gov/syncd/internal/push"
	"github.com/panjin-gov/syncd/internal/store"
)

// Config is a database-style target's part of a target's config.
type Config struct {
	Driver string `mapstructure:"driver"` // postgres or mysql
	// DSNEnv names the environment variable holding the DSN (it carries a
	// password, so it never sits in the file).
	DSNEnv  string        `mapstructure:"dsn_env"`
	Timeout time.Duration `mapstructure:"timeout"` // per statement batch

	Table     string `mapstructure:"table"`      // front table syncd inserts into
	KeyColumn string `mapstructure:"key_column"` // idempotency key (record_id:version)
	OpColumn  string `mapstructure:"op_column"`
	// OpValues maps add/update/withdraw to what the platform expects.
	OpValues      map[string]string `mapstructure:"op_values"`
	BatchColumn   string            `mapstructure:"batch_column"`
	WrittenColumn string            `mapstructure:"written_column"`

	FeedbackTable  string   `mapstructure:"feedback_table"`
	FeedbackID     string   `mapstructure:"feedback_id_column"` // increasing id: the feedback cursor
	FeedbackKey    string   `mapstructure:"feedback_key_column"`
	StatusColumn   string   `mapstructure:"status_column"`
	AcceptedValues []string `mapstructure:"accepted_values"`
	CodeColumn     string   `mapstructure:"code_column"`
	MessageColumn  string   `mapstructure:"message_column"`
}

// SetDefaults fills unset names with the common front-end database names.
func (c *Config) SetDefaults() {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.Table, "xy_sjjh")
	def(&c.KeyColumn, "ywid")
	def(&c.OpColumn, "czlx")
	def(&c.BatchColumn, "pch")
	def(&c.WrittenColumn, "rksj")
	def(&c.FeedbackTable, "xy_sjjh_fk")
	def(&c.FeedbackID, "id")
	def(&c.FeedbackKey, "ywid")
	def(&c.StatusColumn, "clzt")
	def(&c.CodeColumn, "cwdm")
	def(&c.MessageColumn, "cwxx")
	if len(c.AcceptedValues) == 0 {
		c.AcceptedValues = []string{"1"}
	}
	if c.OpValues == nil {
		c.OpValues = map[string]string{}
	}
	for _, op := range []store.Op{store.OpAdd, store.OpUpdate, store.OpWithdraw} {
		if c.OpValues[string(op)] == "" {
			c.OpValues[string(op)] = map[store.Op]string{store.OpAdd: "I", store.OpUpdate: "U", store.OpWithdraw: "D"}[op]
		}
	}
	if c.Timeout == 0 {
		c.Timeout = 30 * time.Second
	}
}

// Validate checks the config without I/O.
func (c *Config) Validate() error {
	var errs []error
	switch c.Driver {
	case "postgres", "mysql":
	case "":
		errs = append(errs, errors.New("driver: required (postgres or mysql)"))
	default:
		errs = append(errs, fmt.Errorf("driver: %q is not postgres or mysql", c.Driver))
	}
	if c.DSNEnv == "" {
		errs = append(errs, errors.New("dsn_env: required (the variable holding the DSN)"))
	}
	for key, name := range map[string]string{
		"table": c.Table, "key_column": c.KeyColumn, "op_column": c.OpColumn, "batch_column": c.BatchColumn,
		"written_column": c.WrittenColumn, "feedback_table": c.FeedbackTable, "feedback_id_column": c.FeedbackID,
		"feedback_key_column": c.FeedbackKey, "status_column": c.StatusColumn, "code_column": c.CodeColumn,
		"message_column": c.MessageColumn,
	} {
		if !validIdent(name) {
			errs = append(errs, fmt.Errorf("%s: %q is not a plain SQL identifier (letters, digits, _; optionally schema.table)", key, name))
		}
	}
	for op := range c.OpValues {
		if op != "add" && op != "update" && op != "withdraw" {
			errs = append(errs, fmt.Errorf("op_values.%s: not an op (add, update, withdraw)", op))
		}
	}
	if c.Timeout < 0 {
		errs = append(errs, errors.New("timeout: negative"))
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errors.Join(errs...)
}

func validIdent(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, part := range strings.Split(s, ".") {
		if part == "" || (part[0] >= '0' && part[0] <= '9') {
			return false
		}
		for _, r := range part {
			if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
				return false
			}
		}
	}
	return true
}

// Target writes to a platform's front-end database.
type Target struct {
	cfg   Config
	db    *sql.DB
	opFor map[string]store.Op // platform op value → op
}

// New opens a connection pool (lazily: nothing is contacted until Send).
func New(c Config, dsn string) (*Target, error) {
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if dsn == "" {
		return nil, fmt.Errorf("dsn_env: %s is empty", c.DSNEnv)
	}
	driver := "pgx"
	if c.Driver == "mysql" {
		driver = "mysql"
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", c.Driver, err)
	}
	db.SetMaxOpenConns(2)
	db.SetConnMaxIdleTime(5 * time.Minute)
	t := &Target{cfg: c, db: db, opFor: map[string]store.Op{}}
	for op, v := range c.OpValues {
		t.opFor[v] = store.Op(op)
	}
	return t, nil
}

// Close closes the pool.
func (t *Target) Close(context.Context) error { return t.db.Close() }

func (t *Target) quote(id string) string {
	q := `"`
	if t.cfg.Driver == "mysql" {
		q = "`"
	}
	parts := strings.Split(id, ".")
	for i, p := range parts {
		parts[i] = q + p + q
	}
	return strings.Join(parts, ".")
}

func (t *Target) ph(n int) string {
	if t.cfg.Driver == "mysql" {
		return "?"
	}
	return "$" + strconv.Itoa(n)
}

// Send inserts the batch's rows in one transaction. Keys already in the
// front table (a batch re-sent after a crash before the ledger write) are
// not inserted twice. Every item comes back Pending: the platform answers
// through its feedback table.
func (t *Target) Send(ctx context.Context, batchID string, items []push.Item) ([]push.Receipt, error) {
	ctx, cancel := context.WithTimeout(ctx, t.cfg.Timeout)
	defer cancel()
	tx, err := t.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("front database: begin: %w", err)
	}
	defer tx.Rollback()

	have, err := t.existing(ctx, tx, items)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	for _, it := range items {
		if have[it.Key] {
			continue
		}
		cols := []string{t.cfg.KeyColumn, t.cfg.OpColumn, t.cfg.BatchColumn, t.cfg.WrittenColumn}
		args := []any{it.Key, t.cfg.OpValues[string(it.Op)], batchID, now}
		fields := make([]string, 0, len(it.Data))
		for f := range it.Data {
			fields = append(fields, f)
		}
		slices.Sort(fields)
		for _, f := range fields {
			if !validIdent(f) {
				return nil, fmt.Errorf("record %s: profile field %q is not a valid column name: %w", it.Key, f, push.ErrPermanent)
			}
			cols = append(cols, f)
			args = append(args, fmt.Sprint(it.Data[f]))
		}
		var b strings.Builder
		b.WriteString("INSERT INTO " + t.quote(t.cfg.Table) + " (")
		for i, c := range cols {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(t.quote(c))
		}
		b.WriteString(") VALUES (")
		for i := range cols {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(t.ph(i + 1))
		}
		b.WriteString(")")
		if _, err := tx.ExecContext(ctx, b.String(), args...); err != nil {
			return nil, t.classify(fmt.Errorf("front database: insert %s: %w", it.Key, err))
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("front database: commit batch %s: %w", batchID, err)
	}
	out := make([]push.Receipt, len(items))
	for i, it := range items {
		out[i] = push.Receipt{Key: it.Key, Pending: true, Message: "written to " + t.cfg.Table + ", awaiting feedback"}
	}
	return out, nil
}

// existing returns the batch's keys already in the front table.
func (t *Target) existing(ctx context.Context, tx *sql.Tx, items []push.Item) (map[string]bool, error) {
	have := map[string]bool{}
	args := make([]any, len(items))
	phs := make([]string, len(items))
	for i, it := range items {
		args[i], phs[i] = it.Key, t.ph(i+1)
	}
	rows, err := tx.QueryContext(ctx, "SELECT "+t.quote(t.cfg.KeyColumn)+" FROM "+t.quote(t.cfg.Table)+
		" WHERE "+t.quote(t.cfg.KeyColumn)+" IN ("+strings.Join(phs, ", ")+")", args...)
	if err != nil {
		return nil, t.classify(fmt.Errorf("front database: read existing keys: %w", err))
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, err
		}
		have[k] = true
	}
	return have, rows.Err()
}

// Feedback reads the platform's feedback rows after cursor (the last
// feedback id read), joined to the front table for each key's op.
func (t *Target) Feedback(ctx context.Context, cursor string, max int) ([]push.Receipt, string, error) {
	after := int64(0)
	if cursor != "" {
		v, err := strconv.ParseInt(cursor, 10, 64)
		if err != nil {
			return nil, cursor, fmt.Errorf("feedback cursor %q is not a number: %w", cursor, push.ErrPermanent)
		}
		after = v
	}
	ctx, cancel := context.WithTimeout(ctx, t.cfg.Timeout)
	defer cancel()
	c := t.cfg
	q := "SELECT f." + t.quote(c.FeedbackID) + ", f." + t.quote(c.FeedbackKey) + ", f." + t.quote(c.StatusColumn) +
		", f." + t.quote(c.CodeColumn) + ", f." + t.quote(c.MessageColumn) + ", t." + t.quote(c.OpColumn) +
		" FROM " + t.quote(c.FeedbackTable) + " f LEFT JOIN " + t.quote(c.Table) + " t ON t." + t.quote(c.KeyColumn) +
		" = f." + t.quote(c.FeedbackKey) + " WHERE f." + t.quote(c.FeedbackID) + " > " + t.ph(1) +
		" ORDER BY f." + t.quote(c.FeedbackID) + " LIMIT " + strconv.Itoa(max)
	rows, err := t.db.QueryContext(ctx, q, after)
	if err != nil {
		return nil, cursor, t.classify(fmt.Errorf("front database: read feedback: %w", err))
	}
	defer rows.Close()
	var out []push.Receipt
	next := cursor
	for rows.Next() {
		var id int64
		var key string
		var status, code, msg, op sql.NullString
		if err := rows.Scan(&id, &key, &status, &code, &msg, &op); err != nil {
			return nil, cursor, fmt.Errorf("front database: feedback row: %w", err)
		}
		next = strconv.FormatInt(id, 10)
		rc := push.Receipt{Key: key, Code: code.String, Message: msg.String, Op: t.opFor[op.String]}
		rc.Accepted = slices.Contains(c.AcceptedValues, status.String)
		// rc.Op is empty when the platform already removed the front row:
		// the runner finds the op in the ledger.
		out = append(out, rc)
	}
	if err := rows.Err(); err != nil {
		return nil, cursor, err
	}
	return out, next, nil
}

// classify marks errors retrying cannot fix (missing table or column,
// permission) as permanent.
func (t *Target) classify(err error) error {
	s := strings.ToLower(err.Error())
	for _, p := range []string{"does not exist", "doesn't exist", "unknown column", "permission denied", "access denied", "syntax error", "sqlstate 42"} {
		if strings.Contains(s, p) {
			return fmt.Errorf("%w: %w", err, push.ErrPermanent)
		}
	}
	return err
}
