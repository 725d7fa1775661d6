// Package sqlsrc reads a table (or a query) of a source system's PostgreSQL,
// MySQL or MariaDB database incrementally, through database/sql.
//
// Rows are read in (updated, id) order with a keyset predicate
//
//	updated >= $1 AND (updated > $1 OR id > $2) ORDER BY updated, id LIMIT n
//
// which is (updated > $1) OR (updated = $1 AND id > $2) written so both
// engines can range-scan an index on (updated, id). The cursor is the pair of
// the last row delivered, so rows sharing one timestamp are neither skipped
// nor repeated across a page boundary.
//
// The cursor is opaque to the runner; it is JSON holding both values and how
// to bind them again:
//   - updated: a time at full precision (RFC 3339 with nanoseconds, in
//     time_zone), bound back as a time; or, for an integer change counter, an
//     integer; or text.
//   - id: bound as an integer when the driver reports the id column as an
//     integer type, otherwise as text. Comparison and order are both done by
//     the database in the column's own type and collation, so they always
//     agree; binding an integer id as text would make MySQL compare as
//     floating point and lose ids above 2^53.
//
// Each row becomes a record.Raw whose Payload is a JSON object, column name →
// value: NULL → null; integers and floats → numbers (NaN and ±Inf as
// strings); DECIMAL/NUMERIC → strings, exact; dates → "2006-01-02"; times →
// RFC 3339 with nanoseconds in time_zone (zone-less columns are read as
// time_zone's wall clock); text and valid UTF-8 bytes → strings; other bytes
// → base64 strings; PostgreSQL json/jsonb → embedded JSON. Key is the id as
// text and UpdatedAt the updated value when it is a time.
//
// Rows whose updated column is NULL are never read: declare it NOT NULL.
package sqlsrc

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/panjin-gov/syncd/internal/connectors"
	"github.com/panjin-gov/syncd/internal/record"
)

// Source reads one table or query. Fetch calls are serialized: the scan
// buffers are reused from one fetch to the next.
type Source struct {
	name string
	cfg  Config
	loc  *time.Location
	db   *sql.DB

	firstSQL, nextSQL string // without and with a cursor

	mu       sync.Mutex
	plan     []column // for the current result shape
	names    []string // column names and types plan was built for
	types    []string
	cells    []cell
	dest     []any
	idCol    int
	upCol    int
	rowBytes int // average payload size seen, to size the next batch's buffer
}

var _ connectors.Source = (*Source)(nil)

// New makes a source named name reading with dsn (the value of the variable
// cfg.DSNEnv names). It does not connect: the first Fetch does.
func New(name string, cfg Config, dsn string) (*Source, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if dsn == "" {
		return nil, fmt.Errorf("dsn_env: $%s is empty", cfg.DSNEnv)
	}
	loc, _ := location(cfg.TimeZone)
	s := &Source{name: name, cfg: cfg, loc: loc}
	switch cfg.Driver {
	case Postgres:
		pc, err := pgx.ParseConfig(dsn)
		if err != nil {
			// pgx redacts passwords only on a best-effort basis: say nothing of the value.
			return nil, fmt.Errorf("dsn_env: $%s is not a valid PostgreSQL DSN", cfg.DSNEnv)
		}
		s.db = stdlib.OpenDB(*pc)
	case MySQL:
		mc, err := mysql.ParseDSN(dsn)
		if err != nil {
			return nil, fmt.Errorf("dsn_env: $%s is not a valid MySQL DSN: %v", cfg.DSNEnv, err)
		}
		// Times come back as time.Time, DATETIME read in time_zone, and
		// TIMESTAMP converted by the server to the same offset, unless the
		// DSN says otherwise.
		mc.ParseTime = true
		if !strings.Contains(dsn, "?loc=") && !strings.Contains(dsn, "&loc=") {
			mc.Loc = loc
			if _, ok := mc.Params["time_zone"]; !ok {
				if mc.Params == nil {
					mc.Params = map[string]string{}
				}
				_, off := time.Now().In(loc).Zone()
				mc.Params["time_zone"] = "'" + offsetString(off) + "'"
			}
		}
		conn, err := mysql.NewConnector(mc)
		if err != nil {
			return nil, fmt.Errorf("dsn_env: $%s: %v", cfg.DSNEnv, err)
		}
		s.db = sql.OpenDB(conn)
	}
	// One fetch at a time needs one connection; a second covers a close racing a reconnect.
	s.db.SetMaxOpenConns(2)
	s.db.SetMaxIdleConns(1)
	s.db.SetConnMaxIdleTime(5 * time.Minute)
	s.db.SetConnMaxLifetime(time.Hour)
	s.firstSQL, s.nextSQL = buildSQL(cfg)
	return s, nil
}

func offsetString(off int) string {
	sign := byte('+')
	if off < 0 {
		sign, off = '-', -off
	}
	return fmt.Sprintf("%c%02d:%02d", sign, off/3600, off/60%60)
}

// buildSQL returns the statement without a cursor (parameter: limit) and the
// one with (parameters: updated, id, limit on PostgreSQL; updated, updated,
// id, limit on MySQL).
func buildSQL(c Config) (first, next string) {
	pg := c.Driver == Postgres
	quote := func(s string) string {
		if pg {
			return `"` + s + `"`
		}
		return "`" + s + "`"
	}
	up, id := c.UpdatedColumn, c.IDColumn
	if c.Table != "" {
		up, id = quote(up), quote(id)
	}
	var predNext, limFirst, limNext string
	if pg {
		predNext = fmt.Sprintf("%s >= $1 AND (%s > $1 OR %s > $2)", up, up, id)
		limFirst, limNext = "$1", "$3"
	} else {
		predNext = fmt.Sprintf("%s >= ? AND (%s > ? OR %s > ?)", up, up, id)
		limFirst, limNext = "?", "?"
	}
	predFirst := up + " IS NOT NULL"
	if c.Query != "" {
		r := func(pred, lim string) string {
			q := strings.Replace(c.Query, CursorPlaceholder, "("+pred+")", 1)
			return strings.Replace(q, LimitPlaceholder, lim, 1)
		}
		return r(predFirst, limFirst), r(predNext, limNext)
	}
	sel := "*"
	if len(c.Columns) > 0 {
		cols := make([]string, 0, len(c.Columns)+2)
		for _, col := range c.Columns {
			cols = append(cols, quote(col))
		}
		for _, must := range []string{c.IDColumn, c.UpdatedColumn} {
			found := false
			for _, col := range c.Columns {
				found = found || col == must
			}
			if !found {
				cols = append(cols, quote(must))
			}
		}
		sel = strings.Join(cols, ", ")
	}
	parts := strings.Split(c.Table, ".")
	for i, p := range parts {
		parts[i] = quote(p)
	}
	from := strings.Join(parts, ".")
	f := "SELECT %s FROM %s WHERE %s ORDER BY %s, %s LIMIT %s"
	return fmt.Sprintf(f, sel, from, predFirst, up, id, limFirst),
		fmt.Sprintf(f, sel, from, predNext, up, id, limNext)
}

// cursor is the (updated, id) pair of the last row delivered.
type cursor struct {
	At     string `json:"at"`
	AtType string `json:"at_type"` // time | int | text
	ID     string `json:"id"`
	IDType string `json:"id_type"` // int | text
}

const (
	typeTime = "time"
	typeInt  = "int"
	typeText = "text"
)

// args returns the bind values of c, or an error wrapping ErrPermanent.
func (c *cursor) args() (at, id any, err error) {
	switch c.AtType {
	case typeTime:
		t, perr := time.Parse(time.RFC3339Nano, c.At)
		if perr != nil {
			return nil, nil, fmt.Errorf("updated %q is not RFC 3339", c.At)
		}
		at = t
	case typeInt:
		n, perr := strconv.ParseInt(c.At, 10, 64)
		if perr != nil {
			return nil, nil, fmt.Errorf("updated %q is not an integer", c.At)
		}
		at = n
	case typeText:
		at = c.At
	default:
		return nil, nil, fmt.Errorf("unknown at_type %q", c.AtType)
	}
	switch c.IDType {
	case typeInt:
		if n, perr := strconv.ParseInt(c.ID, 10, 64); perr == nil {
			id = n
		} else if u, perr := strconv.ParseUint(c.ID, 10, 64); perr == nil {
			id = u
		} else {
			return nil, nil, fmt.Errorf("id %q is not an integer", c.ID)
		}
	case typeText:
		id = c.ID
	default:
		return nil, nil, fmt.Errorf("unknown id_type %q", c.IDType)
	}
	return at, id, nil
}

// Fetch reads the rows after cur, at most maxRecords of them (and at most
// page_size). Connection failures, timeouts and server shutdowns are
// returned as they are (the runner retries); bad SQL, unknown tables or
// columns, permission and login errors and a bad cursor wrap
// connectors.ErrPermanent.
func (s *Source) Fetch(ctx context.Context, cur string, maxRecords int) (connectors.Batch, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	limit := s.cfg.PageSize
	if maxRecords > 0 && maxRecords < limit {
		limit = maxRecords
	}
	var (
		query = s.firstSQL
		args  []any
		prev  cursor
	)
	if cur != "" {
		if err := json.Unmarshal([]byte(cur), &prev); err != nil {
			return connectors.Batch{}, fmt.Errorf("source %s: bad cursor %q: %w", s.name, cur, connectors.ErrPermanent)
		}
		at, id, err := prev.args()
		if err != nil {
			return connectors.Batch{}, fmt.Errorf("source %s: bad cursor %q: %v: %w", s.name, cur, err, connectors.ErrPermanent)
		}
		query = s.nextSQL
		if s.cfg.Driver == MySQL {
			args = []any{at, at, id}
		} else {
			args = []any{at, id}
		}
	}
	// One row more than asked says whether there is more.
	args = append(args, limit+1)

	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return connectors.Batch{}, s.classify("query", cur, err)
	}
	defer rows.Close()
	if err := s.prepare(rows); err != nil {
		return connectors.Batch{}, err
	}

	now := time.Now()
	batch := connectors.Batch{Records: make([]record.Raw, 0, limit), Next: cur}
	// Payloads and keys of the whole batch share one buffer each: two
	// allocations per batch instead of two per row.
	slab := make([]byte, 0, max(s.rowBytes, 256)*limit)
	keys := make([]byte, 0, 16*limit)
	type span struct{ p0, p1, k0, k1 int }
	spans := make([]span, 0, limit)
	var (
		lastUp  cell // the updated value of the last placeable row
		lastRow = -1
		lastAt  time.Time
	)
	for rows.Next() {
		if len(batch.Records) == limit {
			batch.More = true
			break
		}
		if err := rows.Scan(s.dest...); err != nil {
			return connectors.Batch{}, s.classify("scan", cur, err)
		}
		var sp span
		sp.p0 = len(slab)
		slab = s.appendRow(slab)
		sp.p1 = len(slab)
		raw := record.Raw{Source: s.name, Encoding: "utf-8", FetchedAt: now}

		sp.k0 = len(keys)
		idc, upc := &s.cells[s.idCol], &s.cells[s.upCol]
		var idType string
		keys, idType = idc.appendKey(keys)
		problem := ""
		switch {
		case idType == "":
			problem = fmt.Sprintf("row has no usable %s (%s)", s.cfg.IDColumn, idc.kindName())
		case !upc.cursorable():
			problem = fmt.Sprintf("row %s has no usable %s (%s)", keys[sp.k0:], s.cfg.UpdatedColumn, upc.kindName())
		}
		if problem != "" {
			// Without its key or time a row cannot move the cursor; it
			// still goes on, keyed by content, so normalize rejects it.
			sum := sha256.Sum256(slab[sp.p0:sp.p1])
			keys = append(keys[:sp.k0], "sha256:"...)
			keys = hex.AppendEncode(keys, sum[:8])
			raw.Problem = problem
		} else {
			if upc.kind == kTime {
				at := s.timeOf(upc)
				if lastRow >= 0 && at.Before(lastAt) {
					return connectors.Batch{}, fmt.Errorf("source %s: rows are not in %s order (%s after %s): the query must ORDER BY %s, %s: %w",
						s.name, s.cfg.UpdatedColumn, at.Format(time.RFC3339Nano), lastAt.Format(time.RFC3339Nano),
						s.cfg.UpdatedColumn, s.cfg.IDColumn, connectors.ErrPermanent)
				}
				raw.UpdatedAt, lastAt = at, at
			}
			lastUp.copyFrom(upc)
			lastRow = len(spans)
		}
		sp.k1 = len(keys)
		spans = append(spans, sp)
		batch.Records = append(batch.Records, raw)
	}
	if err := rows.Err(); err != nil {
		return connectors.Batch{}, s.classify("read", cur, err)
	}
	allKeys := string(keys)
	for i, sp := range spans {
		batch.Records[i].Payload = slab[sp.p0:sp.p1:sp.p1]
		batch.Records[i].Key = allKeys[sp.k0:sp.k1]
	}
	if n := len(spans); n > 0 {
		s.rowBytes = (s.rowBytes + len(slab)/n + 1) / 2
	}
	if lastRow >= 0 {
		next := cursor{ID: batch.Records[lastRow].Key, IDType: typeText}
		if s.cells[s.idCol].kind == kInt || s.cells[s.idCol].kind == kUint {
			// The id column's type does not change between rows.
			next.IDType = typeInt
		}
		switch lastUp.kind {
		case kTime:
			next.At, next.AtType = s.timeOf(&lastUp).Format(time.RFC3339Nano), typeTime
		case kInt:
			next.At, next.AtType = strconv.FormatInt(lastUp.i, 10), typeInt
		case kString:
			next.At, next.AtType = lastUp.s, typeText
		case kBytes:
			next.At, next.AtType = string(lastUp.b), typeText
		}
		b, _ := json.Marshal(next)
		batch.Next = string(b)
	}
	return batch, nil
}

// timeOf returns the instant a time cell stands for. A zone-less
// PostgreSQL timestamp arrives as a UTC wall clock: it is time_zone's.
func (s *Source) timeOf(c *cell) time.Time {
	t := c.t
	if s.plan[c.col].naive {
		y, mo, d := t.Date()
		h, mi, sec := t.Clock()
		return time.Date(y, mo, d, h, mi, sec, t.Nanosecond(), s.loc)
	}
	return t.In(s.loc)
}

// prepare (re)builds the column plan when the result's columns change.
func (s *Source) prepare(rows *sql.Rows) error {
	names, err := rows.Columns()
	if err != nil {
		return s.classify("columns", "", err)
	}
	cts, err := rows.ColumnTypes()
	if err != nil {
		return s.classify("columns", "", err)
	}
	types := make([]string, len(cts))
	for i, ct := range cts {
		types[i] = strings.ToUpper(ct.DatabaseTypeName())
	}
	if slices.Equal(names, s.names) && slices.Equal(types, s.types) {
		return nil
	}
	s.plan = make([]column, len(names))
	s.cells = make([]cell, len(names))
	s.dest = make([]any, len(names))
	s.idCol, s.upCol = -1, -1
	idName, upName := resultName(s.cfg.IDColumn), resultName(s.cfg.UpdatedColumn)
	for i, n := range names {
		s.cells[i].col = i
		s.dest[i] = &s.cells[i]
		key := appendJSONString(nil, n)
		s.plan[i].key = append(key, ':')
		switch types[i] {
		case "DATE":
			s.plan[i].date = true
		case "TIMESTAMP":
			s.plan[i].naive = s.cfg.Driver == Postgres
		case "JSON", "JSONB":
			s.plan[i].json = s.cfg.Driver == Postgres
		}
		if s.idCol < 0 && n == idName {
			s.idCol = i
		}
		if s.upCol < 0 && n == upName {
			s.upCol = i
		}
	}
	for i, n := range names {
		if s.idCol < 0 && strings.EqualFold(n, idName) {
			s.idCol = i
		}
		if s.upCol < 0 && strings.EqualFold(n, upName) {
			s.upCol = i
		}
	}
	if s.idCol < 0 || s.upCol < 0 {
		s.names, s.types = nil, nil
		return fmt.Errorf("source %s: the result has no column %q or %q (columns: %s): %w",
			s.name, idName, upName, strings.Join(names, ", "), connectors.ErrPermanent)
	}
	s.names, s.types = names, types
	return nil
}

// resultName is the result column an updated_column/id_column names:
// "s.updated_at" → "updated_at", `"id"` → id.
func resultName(expr string) string {
	if i := strings.LastIndexByte(expr, '.'); i >= 0 {
		expr = expr[i+1:]
	}
	return strings.Trim(strings.TrimSpace(expr), "\"`")
}

// column is how one result column is written into a payload.
type column struct {
	key   []byte // "name":
	date  bool   // a DATE: written as 2006-01-02
	naive bool   // a zone-less PostgreSQL timestamp: a wall clock in time_zone
	json  bool   // PostgreSQL json/jsonb: embedded when valid
}

type cellKind uint8

const (
	kNull cellKind = iota
	kInt
	kUint
	kFloat
	kBool
	kTime
	kString
	kBytes
	kOther
)

// cell is a reusable scan destination. Scan keeps the driver's value
// without boxing or copying, except bytes, copied into a buffer reused from
// row to row (the driver may reuse its own).
type cell struct {
	col  int
	kind cellKind
	i    int64
	u    uint64
	f    float64
	b    []byte
	s    string
	t    time.Time
	o    any
}

// Scan implements sql.Scanner.
func (c *cell) Scan(v any) error {
	switch x := v.(type) {
	case nil:
		c.kind = kNull
	case int64:
		c.kind, c.i = kInt, x
	case int32:
		c.kind, c.i = kInt, int64(x)
	case uint64:
		c.kind, c.u = kUint, x
	case float64:
		c.kind, c.f = kFloat, x
	case float32:
		c.kind, c.f = kFloat, float64(x)
	case bool:
		c.kind, c.i = kBool, 0
		if x {
			c.i = 1
		}
	case time.Time:
		c.kind, c.t = kTime, x
	case string:
		c.kind, c.s = kString, x
	case []byte:
		c.kind, c.b = kBytes, append(c.b[:0], x...)
	default:
		c.kind, c.o = kOther, x
	}
	return nil
}

func (c *cell) kindName() string {
	switch c.kind {
	case kNull:
		return "NULL"
	case kFloat:
		return "a float"
	case kBool:
		return "a boolean"
	case kTime:
		return "a time"
	case kOther:
		return fmt.Sprintf("a %T", c.o)
	}
	return "a number or text"
}

// cursorable reports whether an updated value can go in a cursor.
func (c *cell) cursorable() bool {
	switch c.kind {
	case kTime, kInt, kString, kBytes:
		return true
	}
	return false
}

// copyFrom copies o's value into c, reusing c's byte buffer.
func (c *cell) copyFrom(o *cell) {
	b := append(c.b[:0], o.b...)
	*c = *o
	c.b = b
}

// appendKey appends the cell as a key and says how a cursor binds it: int,
// text, or "" when the cell cannot be a key.
func (c *cell) appendKey(b []byte) ([]byte, string) {
	switch c.kind {
	case kInt:
		return strconv.AppendInt(b, c.i, 10), typeInt
	case kUint:
		return strconv.AppendUint(b, c.u, 10), typeInt
	case kString:
		return append(b, c.s...), typeText
	case kBytes:
		return append(b, c.b...), typeText
	}
	return b, ""
}

// appendRow appends the current row as a JSON object.
func (s *Source) appendRow(b []byte) []byte {
	b = append(b, '{')
	for i := range s.cells {
		if i > 0 {
			b = append(b, ',')
		}
		p := &s.plan[i]
		b = append(b, p.key...)
		c := &s.cells[i]
		switch c.kind {
		case kNull:
			b = append(b, "null"...)
		case kInt:
			b = strconv.AppendInt(b, c.i, 10)
		case kUint:
			b = strconv.AppendUint(b, c.u, 10)
		case kFloat:
			b = appendFloat(b, c.f)
		case kBool:
			b = strconv.AppendBool(b, c.i == 1)
		case kTime:
			b = append(b, '"')
			if p.date {
				b = c.t.AppendFormat(b, time.DateOnly)
			} else {
				b = s.timeOf(c).AppendFormat(b, time.RFC3339Nano)
			}
			b = append(b, '"')
		case kString:
			b = appendJSONString(b, c.s)
		case kBytes:
			switch {
			case p.json && json.Valid(c.b):
				b = append(b, c.b...)
			case utf8.Valid(c.b):
				b = appendJSONString(b, c.b)
			default:
				b = append(b, '"')
				b = base64.StdEncoding.AppendEncode(b, c.b)
				b = append(b, '"')
			}
		default:
			// Not a driver.Value type; no driver here sends one. Keep it visible.
			b = appendJSONString(b, fmt.Sprint(c.o))
		}
	}
	return append(b, '}')
}

// appendFloat writes f as encoding/json does; NaN and ±Inf, which JSON
// cannot hold, as strings.
func appendFloat(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return strconv.AppendQuote(b, strconv.FormatFloat(f, 'g', -1, 64))
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	return strconv.AppendFloat(b, f, format, -1, 64)
}

// appendJSONString appends s quoted as a JSON string, as encoding/json
// writes it (connectors.AppendJSONString); invalid UTF-8 becomes U+FFFD.
func appendJSONString[T string | []byte](b []byte, s T) []byte {
	b, _ = connectors.AppendJSONString(b, s)
	return b
}

// Close closes the connection pool.
func (s *Source) Close(context.Context) error {
	return s.db.Close()
}

// classify wraps err with ErrPermanent when a retry cannot fix it.
func (s *Source) classify(step, cur string, err error) error {
	at := "start"
	if cur != "" {
		at = "cursor " + cur
	}
	if permanent(err) {
		return fmt.Errorf("source %s: %s from %s: %w: %w", s.name, step, at, err, connectors.ErrPermanent)
	}
	return fmt.Errorf("source %s: %s from %s: %w", s.name, step, at, err)
}

// permanent reports whether err is one a retry cannot fix: bad SQL, unknown
// table or column, denied permission or login, a value the column type
// rejects. Everything else — refused or reset connections, timeouts, a
// server shutting down or killing the session, too many connections,
// deadlocks — is transient.
func permanent(err error) bool {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		switch pg.Code[:min(2, len(pg.Code))] {
		case "42", // syntax error or access rule violation: bad SQL, unknown table/column, insufficient privilege
			"28", // invalid authorization: bad login
			"3D", // invalid catalog name: no such database
			"3F", // invalid schema name
			"22", // data exception: a value the column type rejects
			"0A": // feature not supported
			return true
		}
		return false
	}
	var my *mysql.MySQLError
	if errors.As(err, &my) {
		switch my.Number {
		case 1044, 1045, 1698, // access denied (database, login)
			1049,       // unknown database
			1054,       // unknown column
			1052,       // ambiguous column
			1064,       // syntax error
			1109,       // unknown table in a clause
			1142, 1143, // table / column access denied
			1146, // no such table
			1227, // needs a privilege
			1305, // no such function
			1356, // view references a missing table or column
			1292, // incorrect value (a cursor the column cannot compare to)
			4151: // account locked
			return true
		}
		return false
	}
	return false
}
