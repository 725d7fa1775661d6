package sqlsrc_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/panjin-gov/syncd/internal/connectors"
	"github.com/panjin-gov/syncd/internal/connectors/conformance"
	"github.com/panjin-gov/syncd/internal/connectors/sqlsrc"
	"github.com/panjin-gov/syncd/internal/sandbox"
	"github.com/panjin-gov/syncd/internal/testdb"
)

// engine is one database server the connector is tested against.
type engine struct {
	name   string
	driver string
	open   func(testing.TB) (string, *sql.DB)
	// table DDL for the conformance/boundary tables; %s is the table name.
	intTable  string
	textTable string
	truncate  string
	// ts formats a time literal the column accepts.
	ts func(time.Time) string
}

var engines = []engine{
	{
		name: "postgres", driver: sqlsrc.Postgres, open: testdb.Postgres,
		intTable: `CREATE TABLE %s (id bigint PRIMARY KEY, name text, facts text, updated_at timestamptz NOT NULL);
			CREATE INDEX ON %[1]s (updated_at, id)`,
		textTable: `CREATE TABLE %s (id text PRIMARY KEY, name text, facts text, updated_at timestamptz NOT NULL)`,
		truncate:  `TRUNCATE %s`,
		ts:        func(t time.Time) string { return "'" + t.Format(time.RFC3339Nano) + "'" },
	},
	{
		name: "mariadb", driver: sqlsrc.MySQL, open: testdb.MySQL,
		intTable: `CREATE TABLE %s (id BIGINT PRIMARY KEY, name VARCHAR(200), facts TEXT,
			updated_at DATETIME(6) NOT NULL, KEY (updated_at, id))`,
		textTable: `CREATE TABLE %s (id VARCHAR(64) PRIMARY KEY, name VARCHAR(200), facts TEXT, updated_at DATETIME(6) NOT NULL)`,
		truncate:  `TRUNCATE TABLE %s`,
		ts: func(t time.Time) string {
			return "'" + t.In(shanghai).Format("2006-01-02 15:04:05.999999") + "'"
		},
	},
}

var shanghai = time.FixedZone("CST", 8*3600)

func exec(t testing.TB, db *sql.DB, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		for _, one := range strings.Split(s, ";") {
			if strings.TrimSpace(one) != "" {
				testdb.Exec(t, db, one)
			}
		}
	}
}

func newSource(t testing.TB, e engine, dsn string, c sqlsrc.Config) *sqlsrc.Source {
	t.Helper()
	c.Driver, c.DSNEnv = e.driver, "SYNCD_TEST_SOURCE_DSN"
	if c.Timeout == 0 {
		c.Timeout = 5 * time.Second
	}
	s, err := sqlsrc.New("hr", c, dsn)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// insertRows inserts ids [from, to) with one timestamp per statement of up
// to 1000 rows, facts about 1.2 KB.
func insertRows(t testing.TB, db *sql.DB, e engine, table string, from, to int64, at func(id int64) time.Time) {
	t.Helper()
	facts := strings.Repeat("事实", 200)
	for lo := from; lo < to; lo += 1000 {
		var b strings.Builder
		fmt.Fprintf(&b, "INSERT INTO %s (id, name, facts, updated_at) VALUES ", table)
		for id := lo; id < min(lo+1000, to); id++ {
			if id > lo {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "(%d, '张某%d', '%s', %s)", id, id, facts, e.ts(at(id)))
		}
		testdb.Exec(t, db, b.String())
	}
}

// failCounter wraps a source and counts failed fetches while armed.
type failCounter struct {
	connectors.Source
	armed *atomic.Bool
	fails *atomic.Int64
	last  *atomic.Value
}

func (f failCounter) Fetch(ctx context.Context, cur string, n int) (connectors.Batch, error) {
	b, err := f.Source.Fetch(ctx, cur, n)
	if err != nil && f.armed.Load() {
		f.fails.Add(1)
		f.last.Store(err.Error())
	}
	return b, err
}

func TestConformancePostgres(t *testing.T) {
	e := engines[0]
	dsn, db := e.open(t)
	exec(t, db, fmt.Sprintf(e.intTable, "sanctions"))
	admin, err := sql.Open("pgx", testdb.PostgresAdmin())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	var dbName string
	if err := db.QueryRow(`SELECT current_database()`).Scan(&dbName); err != nil {
		t.Fatal(err)
	}
	// Disrupt: the database stops accepting connections and every session on
	// it is terminated, as when the source's server restarts.
	disrupt := func(t *testing.T) func() {
		testdb.Exec(t, admin, `ALTER DATABASE "`+dbName+`" ALLOW_CONNECTIONS false`)
		testdb.Exec(t, admin, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
			WHERE datname = '`+dbName+`' AND application_name = 'sqlsrc-under-test'`)
		probe, _ := sql.Open("pgx", dsn)
		defer probe.Close()
		if err := probe.Ping(); err == nil {
			t.Fatal("disruption did not take: a new connection still works")
		}
		return func() { testdb.Exec(t, admin, `ALTER DATABASE "`+dbName+`" ALLOW_CONNECTIONS true`) }
	}
	// Only the connector's sessions are terminated, not the test's own.
	runConformance(t, e, dsn+"&application_name=sqlsrc-under-test", db, disrupt)
}

func TestConformanceMariaDB(t *testing.T) {
	e := engines[1]
	dsn, db := e.open(t)
	exec(t, db, fmt.Sprintf(e.intTable, "sanctions"))
	// The connector logs in as its own account, so the disruption can
	// target it: kill its sessions and let it open none (its connection
	// limit is taken by a blocker), as when the server's connection slots
	// are exhausted after a restart.
	var rb [4]byte
	rand.Read(rb[:])
	user := "sqlsrc_" + hex.EncodeToString(rb[:])
	cfg, _ := mysql.ParseDSN(dsn)
	exec(t, db,
		`CREATE USER '`+user+`'@'127.0.0.1' IDENTIFIED BY 'connector-test'`,
		"GRANT SELECT ON `"+cfg.DBName+"`.* TO '"+user+"'@'127.0.0.1'")
	t.Cleanup(func() { exec(t, db, `DROP USER IF EXISTS '`+user+`'@'127.0.0.1'`) })
	ucfg := cfg.Clone()
	ucfg.User, ucfg.Passwd = user, "connector-test"
	udsn := ucfg.FormatDSN()

	disrupt := func(t *testing.T) func() {
		exec(t, db, `ALTER USER '`+user+`'@'127.0.0.1' WITH MAX_USER_CONNECTIONS 1`)
		rows, err := db.Query(`SELECT id FROM information_schema.processlist WHERE user = ?`, user)
		if err != nil {
			t.Fatal(err)
		}
		var ids []int64
		for rows.Next() {
			var id int64
			rows.Scan(&id)
			ids = append(ids, id)
		}
		rows.Close()
		for _, id := range ids {
			db.Exec(`KILL CONNECTION ` + strconv.FormatInt(id, 10))
		}
		blocker, _ := sql.Open("mysql", udsn)
		blocker.SetMaxOpenConns(1)
		conn, err := blocker.Conn(context.Background())
		if err != nil {
			t.Fatalf("blocker: %v", err)
		}
		probe, _ := sql.Open("mysql", udsn)
		defer probe.Close()
		if err := probe.Ping(); err == nil {
			t.Fatal("disruption did not take: a new connection still works")
		}
		return func() {
			conn.Close()
			blocker.Close()
			exec(t, db, `ALTER USER '`+user+`'@'127.0.0.1' WITH MAX_USER_CONNECTIONS 0`)
		}
	}
	runConformance(t, e, udsn, db, disrupt)
}

func runConformance(t *testing.T, e engine, dsn string, db *sql.DB, disrupt func(*testing.T) func()) {
	var seq atomic.Int64
	var armed atomic.Bool
	var fails atomic.Int64
	var last atomic.Value
	conformance.Run(t, conformance.Harness{
		Reset: func(t *testing.T) { exec(t, db, fmt.Sprintf(e.truncate, "sanctions")) },
		Open: func(t *testing.T) connectors.Source {
			s := newSource(t, e, dsn, sqlsrc.Config{Table: "sanctions", PageSize: 100})
			return failCounter{Source: s, armed: &armed, fails: &fails, last: &last}
		},
		Produce: func(t *testing.T, n int) []string {
			from := seq.Add(int64(n)) - int64(n) + 1
			// Rows of one statement share a timestamp: the keyset tie-break
			// is exercised on every page.
			now := time.Now()
			insertRows(t, db, e, "sanctions", from, from+int64(n), func(int64) time.Time { return now })
			keys := make([]string, n)
			for i := range keys {
				keys[i] = strconv.FormatInt(from+int64(i), 10)
			}
			return keys
		},
		Disrupt: func(t *testing.T) func() {
			restore := disrupt(t)
			armed.Store(true)
			return func() { armed.Store(false); restore() }
		},
		Backlog: 20000,
	})
	if fails.Load() == 0 {
		t.Fatal("no fetch failed while the source was disrupted: the disruption is not real")
	}
	t.Logf("%d fetches failed while the source was down, last: %v", fails.Load(), last.Load())
}

// drainAll reads everything from cur with pages of n and returns the keys in
// delivery order and the final cursor.
func drainAll(t *testing.T, s connectors.Source, cur string, n int) ([]string, string) {
	t.Helper()
	var keys []string
	for i := 0; ; i++ {
		if i > 10000 {
			t.Fatal("no end")
		}
		b, err := s.Fetch(context.Background(), cur, n)
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Records) > n {
			t.Fatalf("%d records for max %d", len(b.Records), n)
		}
		for _, r := range b.Records {
			if r.Problem != "" {
				t.Fatalf("record %s: %s", r.Key, r.Problem)
			}
			keys = append(keys, r.Key)
		}
		cur = b.Next
		if !b.More {
			return keys, cur
		}
	}
}

// Many rows share one timestamp across several page boundaries, with
// neighbours one microsecond either side; integer and text ids (text ids
// sort differently from their numbers: "id-10" < "id-9").
func TestEqualTimestampsAcrossPages(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			dsn, db := e.open(t)
			exec(t, db, fmt.Sprintf(e.intTable, "ints"), fmt.Sprintf(e.textTable, "texts"))
			at := time.Date(2026, 3, 5, 9, 30, 0, 123456000, shanghai)
			before, after := at.Add(-time.Microsecond), at.Add(time.Microsecond)
			stamp := func(id int64) time.Time {
				switch {
				case id%50 == 7:
					return before
				case id%50 == 8:
					return after
				}
				return at
			}
			insertRows(t, db, e, "ints", 1, 251, stamp)
			var want []string
			var b strings.Builder
			b.WriteString("INSERT INTO texts (id, name, facts, updated_at) VALUES ")
			for i := int64(1); i <= 250; i++ {
				if i > 1 {
					b.WriteByte(',')
				}
				fmt.Fprintf(&b, "('id-%d', '王某', '事实', %s)", i, e.ts(stamp(i)))
			}
			testdb.Exec(t, db, b.String())

			for _, table := range []string{"ints", "texts"} {
				t.Run(table, func(t *testing.T) {
					rows, err := db.Query(`SELECT id FROM ` + table + ` ORDER BY updated_at, id`)
					if err != nil {
						t.Fatal(err)
					}
					want = want[:0]
					for rows.Next() {
						var id string
						rows.Scan(&id)
						want = append(want, id)
					}
					rows.Close()
					for _, page := range []int{1, 7, 100, 249, 250, 251} {
						s := newSource(t, e, dsn, sqlsrc.Config{Table: table, PageSize: 1000})
						got, cur := drainAll(t, s, "", page)
						if !slices.Equal(got, want) {
							t.Fatalf("page %d: got %d keys %v…, want %d in (updated_at, id) order %v…",
								page, len(got), got[:min(5, len(got))], len(want), want[:5])
						}
						// Nothing more after the end, and the cursor keeps full precision.
						b, err := s.Fetch(context.Background(), cur, page)
						if err != nil || len(b.Records) != 0 || b.More {
							t.Fatalf("after the end: %d records, more=%v, %v", len(b.Records), b.More, err)
						}
						if !strings.Contains(cur, "09:30:00.123457+08:00") {
							t.Fatalf("cursor %s lost precision", cur)
						}
						s.Close(context.Background())
					}
				})
			}
		})
	}
}

// A row added later with the cursor's own timestamp but a greater id is
// delivered; the cursor's row is not delivered again.
func TestNewRowWithCursorTimestamp(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			dsn, db := e.open(t)
			exec(t, db, fmt.Sprintf(e.intTable, "t"))
			at := time.Date(2026, 3, 5, 9, 30, 0, 1000, shanghai)
			insertRows(t, db, e, "t", 1, 11, func(int64) time.Time { return at })
			s := newSource(t, e, dsn, sqlsrc.Config{Table: "t"})
			defer s.Close(context.Background())
			_, cur := drainAll(t, s, "", 4)
			insertRows(t, db, e, "t", 11, 13, func(int64) time.Time { return at })
			got, _ := drainAll(t, s, cur, 4)
			if !slices.Equal(got, []string{"11", "12"}) {
				t.Fatalf("got %v, want [11 12]", got)
			}
		})
	}
}

func TestPayloadValuesPostgres(t *testing.T) {
	e := engines[0]
	dsn, db := e.open(t)
	exec(t, db, `CREATE TABLE v (
		id text PRIMARY KEY, name text, note text, amount numeric(18,2), ratio float8, big bigint, ok boolean,
		decided date, naive timestamp, updated_at timestamptz NOT NULL, doc jsonb, raw bytea, bad bytea, 单位 text)`)
	testdb.Exec(t, db, `INSERT INTO v VALUES
		('a1', '张某某', E'引号"反斜杠\\换行\n制表\t控制\x01 😀 ＵＳＣＣ１２', 12800.50, 0.25, 9007199254740993, true,
		 '2026-01-02', '2026-01-06 09:12:33.123456', '2026-01-06T09:12:33.654321+08:00',
		 '{"k":["盘锦",1]}', convert_to('盘锦市', 'UTF8'), '\xff00fe', '盘锦市生态环境局'),
		('a2', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '2026-01-07T00:00:00+08:00', NULL, NULL, NULL, NULL)`)
	s := newSource(t, e, dsn, sqlsrc.Config{Table: "v"})
	defer s.Close(context.Background())
	b, err := s.Fetch(context.Background(), "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Records) != 2 || b.More {
		t.Fatalf("%d records, more=%v", len(b.Records), b.More)
	}
	r := b.Records[0]
	var got map[string]any
	dec := json.NewDecoder(strings.NewReader(string(r.Payload)))
	dec.UseNumber()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("payload %s: %v", r.Payload, err)
	}
	want := map[string]any{
		"id": "a1", "name": "张某某", "note": "引号\"反斜杠\\换行\n制表\t控制\x01 😀 ＵＳＣＣ１２",
		"amount": "12800.50", "ratio": json.Number("0.25"), "big": json.Number("9007199254740993"), "ok": true,
		"decided": "2026-01-02", "naive": "2026-01-06T09:12:33.123456+08:00",
		"updated_at": "2026-01-06T09:12:33.654321+08:00",
		"doc":        map[string]any{"k": []any{"盘锦", json.Number("1")}},
		"raw":        "盘锦市", "bad": "/wD+", "单位": "盘锦市生态环境局",
	}
	for k, w := range want {
		if fmt.Sprint(got[k]) != fmt.Sprint(w) {
			t.Errorf("%s = %#v, want %#v", k, got[k], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("payload has %d columns, want %d: %s", len(got), len(want), r.Payload)
	}
	if r.Key != "a1" || r.Encoding != "utf-8" || r.Source != "hr" ||
		!r.UpdatedAt.Equal(time.Date(2026, 1, 6, 9, 12, 33, 654321000, shanghai)) {
		t.Errorf("raw %+v", r)
	}
	var nulls map[string]any
	json.Unmarshal(b.Records[1].Payload, &nulls)
	for k, v := range nulls {
		if k != "id" && k != "updated_at" && v != nil {
			t.Errorf("NULL %s came out as %#v", k, v)
		}
	}
	if len(nulls) != len(want) {
		t.Errorf("NULL row %s", b.Records[1].Payload)
	}
}

func TestPayloadValuesMariaDB(t *testing.T) {
	e := engines[1]
	dsn, db := e.open(t)
	exec(t, db, "CREATE TABLE v (id BIGINT UNSIGNED PRIMARY KEY, name VARCHAR(50), note TEXT, amount DECIMAL(18,2), "+
		"ratio DOUBLE, decided DATE, stamp TIMESTAMP(3) NULL, updated_at DATETIME(6) NOT NULL, raw VARBINARY(20), bad BLOB, `单位` VARCHAR(50))")
	testdb.Exec(t, db, `INSERT INTO v VALUES
		(18446744073709551615, '张某某', '引号"反斜杠\\换行\n 😀 ＵＳＣＣ１２', 12800.50, 0.25, '2026-01-02',
		 '2026-01-06 09:12:33.5', '2026-01-06 09:12:33.654321', '盘锦市', X'ff00fe', '盘锦市生态环境局'),
		(7, NULL, NULL, NULL, NULL, NULL, NULL, '2026-01-07 00:00:00', NULL, NULL, NULL)`)
	s := newSource(t, e, dsn, sqlsrc.Config{Table: "v"})
	defer s.Close(context.Background())
	b, err := s.Fetch(context.Background(), "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Records) != 2 {
		t.Fatalf("%d records", len(b.Records))
	}
	r := b.Records[0]
	var got map[string]any
	dec := json.NewDecoder(strings.NewReader(string(r.Payload)))
	dec.UseNumber()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("payload %s: %v", r.Payload, err)
	}
	want := map[string]any{
		"id": "18446744073709551615", "name": "张某某", "note": "引号\"反斜杠\\换行\n 😀 ＵＳＣＣ１２",
		"amount": "12800.50", "ratio": json.Number("0.25"), "decided": "2026-01-02",
		// TIMESTAMP is an instant: written in the test's UTC session, read in +08:00.
		"stamp": "2026-01-06T17:12:33.5+08:00", "updated_at": "2026-01-06T09:12:33.654321+08:00",
		"raw": "盘锦市", "bad": "/wD+", "单位": "盘锦市生态环境局",
	}
	for k, w := range want {
		if fmt.Sprint(got[k]) != fmt.Sprint(w) {
			t.Errorf("%s = %#v, want %#v", k, got[k], w)
		}
	}
	if r.Key != "18446744073709551615" || !r.UpdatedAt.Equal(time.Date(2026, 1, 6, 9, 12, 33, 654321000, shanghai)) {
		t.Errorf("raw key %q updated %v", r.Key, r.UpdatedAt)
	}
	// A key is not a cursor; the batch's cursor finds nothing after the last row.
	b2, err := s.Fetch(context.Background(), b.Records[0].Key, 10)
	if !errors.Is(err, connectors.ErrPermanent) {
		t.Fatalf("a key is not a cursor: %v %v", b2, err)
	}
	if b, err := s.Fetch(context.Background(), b.Next, 10); err != nil || len(b.Records) != 0 {
		t.Fatalf("after the last row: %d records, %v", len(b.Records), err)
	}
}

// A custom query joins two tables; updated_column and id_column are
// qualified there, the payload carries the joined column.
func TestCustomQuery(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			dsn, db := e.open(t)
			exec(t, db, fmt.Sprintf(e.intTable, "sanctions"),
				`CREATE TABLE employers (id INT PRIMARY KEY, name VARCHAR(100), uscc VARCHAR(18), updated_at VARCHAR(30))`,
				`INSERT INTO employers VALUES (1, '盘锦市生态环境局', '11211100MB0000000X', 'x'), (2, '盘锦市自然资源局', '11211100MB1111111X', 'y')`)
			at := time.Date(2026, 3, 5, 9, 30, 0, 0, shanghai)
			insertRows(t, db, e, "sanctions", 1, 31, func(id int64) time.Time { return at.Add(time.Duration(id%3) * time.Second) })
			q := `SELECT s.id, s.name, s.updated_at, e.name AS employer, e.uscc AS employer_uscc
				FROM sanctions s JOIN employers e ON e.id = 1 + s.id % 2
				WHERE s.id <> 13 AND {{cursor}}
				ORDER BY s.updated_at, s.id LIMIT {{limit}}`
			s := newSource(t, e, dsn, sqlsrc.Config{Query: q, UpdatedColumn: "s.updated_at", IDColumn: "s.id", PageSize: 4})
			defer s.Close(context.Background())
			got, _ := drainAll(t, s, "", 100)
			if len(got) != 29 || slices.Contains(got, "13") {
				t.Fatalf("got %d keys %v", len(got), got)
			}
			b, err := s.Fetch(context.Background(), "", 1)
			if err != nil {
				t.Fatal(err)
			}
			var p map[string]any
			json.Unmarshal(b.Records[0].Payload, &p)
			// The first row is id 3 (3 % 3 == 0: the earliest), joined to employer 1 + 3 % 2.
			if b.Records[0].Key != "3" || p["employer"] != "盘锦市自然资源局" || p["employer_uscc"] != "11211100MB1111111X" || len(p) != 5 {
				t.Fatalf("payload %s", b.Records[0].Payload)
			}

			// A query without ORDER BY is caught, not silently skipping rows.
			noOrder := `SELECT id, updated_at FROM sanctions WHERE {{cursor}} ORDER BY id DESC LIMIT {{limit}}`
			s2 := newSource(t, e, dsn, sqlsrc.Config{Query: noOrder, PageSize: 50})
			defer s2.Close(context.Background())
			if _, err := s2.Fetch(context.Background(), "", 50); !errors.Is(err, connectors.ErrPermanent) {
				t.Fatalf("unordered query: %v", err)
			}
		})
	}
}

// Columns lists what goes in the payload; the id and updated columns are
// added when missing.
func TestColumns(t *testing.T) {
	e := engines[0]
	dsn, db := e.open(t)
	exec(t, db, fmt.Sprintf(e.intTable, "sanctions"))
	insertRows(t, db, e, "sanctions", 1, 3, func(int64) time.Time { return time.Now() })
	s := newSource(t, e, dsn, sqlsrc.Config{Table: "public.sanctions", Columns: []string{"name"}})
	defer s.Close(context.Background())
	b, err := s.Fetch(context.Background(), "", 10)
	if err != nil || len(b.Records) != 2 {
		t.Fatalf("%v %v", b, err)
	}
	var p map[string]any
	json.Unmarshal(b.Records[0].Payload, &p)
	if len(p) != 3 || p["name"] != "张某1" || p["facts"] != nil {
		t.Fatalf("payload %s", b.Records[0].Payload)
	}
}

func TestErrorsAreClassified(t *testing.T) {
	pgDSN, pgDB := testdb.Postgres(t)
	exec(t, pgDB, `CREATE TABLE t (id int PRIMARY KEY, updated_at timestamptz NOT NULL)`,
		`DROP ROLE IF EXISTS sqlsrc_nobody`, `CREATE ROLE sqlsrc_nobody LOGIN PASSWORD 'nobody-test'`)
	t.Cleanup(func() { pgDB.Exec(`DROP OWNED BY sqlsrc_nobody`); pgDB.Exec(`DROP ROLE IF EXISTS sqlsrc_nobody`) })
	myDSN, myDB := testdb.MySQL(t)
	exec(t, myDB, `CREATE TABLE t (id int PRIMARY KEY, updated_at DATETIME NOT NULL)`)
	with := func(dsn string, f func(*mysql.Config)) string {
		c, _ := mysql.ParseDSN(dsn)
		f(c)
		return c.FormatDSN()
	}
	pgAs := func(user, pw string) string {
		return strings.Replace(pgDSN, "syncd:syncd-test@", user+":"+pw+"@", 1)
	}
	cases := []struct {
		name      string
		e         engine
		dsn       string
		cfg       sqlsrc.Config
		cursor    string
		permanent bool
	}{
		{"pg unknown table", engines[0], pgDSN, sqlsrc.Config{Table: "nope"}, "", true},
		{"pg unknown column", engines[0], pgDSN, sqlsrc.Config{Table: "t", UpdatedColumn: "changed"}, "", true},
		{"pg bad SQL", engines[0], pgDSN, sqlsrc.Config{Query: "SELEC * FROM t WHERE {{cursor}} LIMIT {{limit}}"}, "", true},
		{"pg permission denied", engines[0], pgAs("sqlsrc_nobody", "nobody-test"), sqlsrc.Config{Table: "t"}, "", true},
		{"pg wrong password", engines[0], pgAs("syncd", "wrong"), sqlsrc.Config{Table: "t"}, "", true},
		{"pg bad cursor", engines[0], pgDSN, sqlsrc.Config{Table: "t"}, "{not json", true},
		{"pg cursor of another type", engines[0], pgDSN, sqlsrc.Config{Table: "t"}, `{"at":"2026-01-01T00:00:00Z","at_type":"time","id":"x","id_type":"text"}`, true},
		{"pg connection refused", engines[0], strings.Replace(pgDSN, ":15432/", ":1/", 1), sqlsrc.Config{Table: "t"}, "", false},
		{"mysql unknown table", engines[1], myDSN, sqlsrc.Config{Table: "nope"}, "", true},
		{"mysql bad SQL", engines[1], myDSN, sqlsrc.Config{Query: "SELEC * FROM t WHERE {{cursor}} LIMIT {{limit}}"}, "", true},
		{"mysql wrong password", engines[1], with(myDSN, func(c *mysql.Config) { c.Passwd = "wrong" }), sqlsrc.Config{Table: "t"}, "", true},
		{"mysql unknown database", engines[1], with(myDSN, func(c *mysql.Config) { c.DBName = "no_such_db_x" }), sqlsrc.Config{Table: "t"}, "", true},
		{"mysql connection refused", engines[1], with(myDSN, func(c *mysql.Config) { c.Addr = "127.0.0.1:1" }), sqlsrc.Config{Table: "t"}, "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newSource(t, c.e, c.dsn, c.cfg)
			defer s.Close(context.Background())
			_, err := s.Fetch(context.Background(), c.cursor, 10)
			if err == nil {
				t.Fatal("no error")
			}
			if errors.Is(err, connectors.ErrPermanent) != c.permanent {
				t.Fatalf("permanent = %v, want %v: %v", !c.permanent, c.permanent, err)
			}
			if strings.Contains(err.Error(), "syncd-test") || strings.Contains(err.Error(), "nobody-test") {
				t.Fatalf("error shows a password: %v", err)
			}
		})
	}
}

// A fetch that outlives timeout fails transiently.
func TestTimeoutIsTransient(t *testing.T) {
	e := engines[0]
	dsn, db := e.open(t)
	exec(t, db, fmt.Sprintf(e.intTable, "sanctions"))
	q := `SELECT id, updated_at, pg_sleep(2) AS z FROM sanctions WHERE {{cursor}} ORDER BY updated_at, id LIMIT {{limit}}`
	insertRows(t, db, e, "sanctions", 1, 2, func(int64) time.Time { return time.Now() })
	s := newSource(t, e, dsn, sqlsrc.Config{Query: q, Timeout: 200 * time.Millisecond})
	defer s.Close(context.Background())
	start := time.Now()
	_, err := s.Fetch(context.Background(), "", 10)
	if err == nil || errors.Is(err, connectors.ErrPermanent) || time.Since(start) > 1500*time.Millisecond {
		t.Fatalf("after %v: %v", time.Since(start), err)
	}
}

func TestConfigValidate(t *testing.T) {
	good := sqlsrc.Config{Driver: "postgres", DSNEnv: "HR_DSN", Table: "sanctions"}
	cases := []struct {
		name string
		edit func(*sqlsrc.Config)
		want string // the message starts with the key
	}{
		{"no driver", func(c *sqlsrc.Config) { c.Driver = "" }, "driver: required"},
		{"unknown driver", func(c *sqlsrc.Config) { c.Driver = "oracle" }, "driver: \"oracle\""},
		{"no dsn_env", func(c *sqlsrc.Config) { c.DSNEnv = "" }, "dsn_env: required"},
		{"dsn in dsn_env", func(c *sqlsrc.Config) { c.DSNEnv = "postgres://u:p@h/db" }, "dsn_env: "},
		{"no table or query", func(c *sqlsrc.Config) { c.Table = "" }, "table: required"},
		{"table and query", func(c *sqlsrc.Config) { c.Query = "SELECT 1 {{cursor}} {{limit}}" }, "query: set table or query"},
		{"quote in table", func(c *sqlsrc.Config) { c.Table = `a"b` }, "table: "},
		{"empty schema part", func(c *sqlsrc.Config) { c.Table = "hr." }, "table: "},
		{"empty column", func(c *sqlsrc.Config) { c.Columns = []string{"name", ""} }, "columns[1]: empty name"},
		{"backtick id column", func(c *sqlsrc.Config) { c.IDColumn = "i`d" }, "id_column: "},
		{"query without cursor", func(c *sqlsrc.Config) { c.Table, c.Query = "", "SELECT * FROM t LIMIT {{limit}}" }, "query: must hold {{cursor}}"},
		{"query twice limit", func(c *sqlsrc.Config) {
			c.Table, c.Query = "", "SELECT * FROM t WHERE {{cursor}} LIMIT {{limit}} {{limit}}"
		}, "query: must hold {{limit}}"},
		{"limit before cursor", func(c *sqlsrc.Config) {
			c.Table, c.Query = "", "SELECT * FROM (SELECT * FROM t LIMIT {{limit}}) q WHERE {{cursor}}"
		}, "query: {{cursor}} must come before {{limit}}"},
		{"columns with query", func(c *sqlsrc.Config) {
			c.Table, c.Query, c.Columns = "", "SELECT * FROM t WHERE {{cursor}} LIMIT {{limit}}", []string{"a"}
		}, "columns: only with table"},
		{"page size", func(c *sqlsrc.Config) { c.PageSize = 20000 }, "page_size: 20000"},
		{"negative page size", func(c *sqlsrc.Config) { c.PageSize = -1 }, "page_size: -1"},
		{"negative timeout", func(c *sqlsrc.Config) { c.Timeout = -time.Second }, "timeout: "},
		{"bad zone", func(c *sqlsrc.Config) { c.TimeZone = "Mars/Base" }, "time_zone: "},
	}
	ok := good
	ok.SetDefaults()
	if err := ok.Validate(); err != nil {
		t.Fatalf("good config: %v", err)
	}
	if ok.UpdatedColumn != "updated_at" || ok.IDColumn != "id" || ok.PageSize != 500 || ok.Timeout != 30*time.Second || ok.TimeZone != "Asia/Shanghai" {
		t.Fatalf("defaults %+v", ok)
	}
	for _, zone := range []string{"+08:00", "UTC", "Asia/Shanghai"} {
		z := ok
		z.TimeZone = zone
		if err := z.Validate(); err != nil {
			t.Errorf("time_zone %s: %v", zone, err)
		}
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := good
			c.edit(&cfg)
			cfg.SetDefaults()
			if c.name == "negative page size" {
				cfg.PageSize = -1
			}
			err := cfg.Validate()
			if err == nil {
				t.Fatal("validated")
			}
			if !strings.HasPrefix(err.Error(), c.want) {
				t.Fatalf("error %q, want it to start with %q", err, c.want)
			}
			if _, err := sqlsrc.New("x", cfg, "postgres://h/db"); err == nil {
				t.Fatal("New accepted it")
			}
		})
	}
	if _, err := sqlsrc.New("x", good, ""); err == nil || !strings.HasPrefix(err.Error(), "dsn_env: ") {
		t.Fatalf("empty DSN: %v", err)
	}
	if _, err := sqlsrc.New("x", good, "postgres://u:secret-pw@h:notaport/db"); err == nil || strings.Contains(err.Error(), "secret-pw") {
		t.Fatalf("bad DSN: %v", err)
	}
}

// BenchmarkFetch drains 20,000 rows of about 1.2 KB from PostgreSQL in
// pages of 500 and reports rows/s.
func BenchmarkFetch(b *testing.B) {
	e := engines[0]
	dsn, db := e.open(b)
	exec(b, db, fmt.Sprintf(e.intTable, "sanctions"))
	const n = 20000
	base := time.Now()
	insertRows(b, db, e, "sanctions", 1, n+1, func(id int64) time.Time { return base.Add(time.Duration(id/7) * time.Millisecond) })
	exec(b, db, `VACUUM ANALYZE sanctions`)
	s := newSource(b, e, dsn, sqlsrc.Config{Table: "sanctions", PageSize: 500})
	defer s.Close(context.Background())
	ctx := context.Background()
	rows, bytes := 0, 0
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		cur := ""
		for {
			bt, err := s.Fetch(ctx, cur, 500)
			if err != nil {
				b.Fatal(err)
			}
			rows += len(bt.Records)
			for i := range bt.Records {
				bytes += len(bt.Records[i].Payload)
			}
			cur = bt.Next
			if !bt.More {
				break
			}
		}
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(bytes)/float64(max(rows, 1)), "B/row")
}

// The sandbox's 人社 HR system read end to end: zone-less Beijing timestamps,
// the seed's shared timestamp, then a trickle of additions and corrections.
func TestHRSandbox(t *testing.T) {
	dsn, db := testdb.Postgres(t)
	ctx := context.Background()
	hr := sandbox.NewHR(db, 7)
	if err := hr.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := hr.Seed(ctx, "../../../testdata/sandbox/hr.jsonl"); err != nil {
		t.Fatal(err)
	}
	s := newSource(t, engines[0], dsn, sqlsrc.Config{Table: "civil_servant_sanctions", PageSize: 7})
	defer s.Close(ctx)
	keys, cur := drainAll(t, s, "", 7)
	if len(keys) != 30 || keys[0] != "1001" || keys[len(keys)-1] != "1030" {
		t.Fatalf("%d keys %v", len(keys), keys)
	}
	i := slices.Index(keys, "1012")
	if i < 0 || keys[i+1] != "1013" {
		t.Fatalf("1012, 1013 (one timestamp) not in id order: %v", keys)
	}
	b, err := s.Fetch(ctx, "", 1)
	if err != nil {
		t.Fatal(err)
	}
	var p map[string]any
	json.Unmarshal(b.Records[0].Payload, &p)
	if p["updated_at"] != "2026-01-10T14:57:52+08:00" || p["decision_date"] != "2026-01-05" || p["name"] != "赵某某" ||
		!b.Records[0].UpdatedAt.Equal(time.Date(2026, 1, 10, 14, 57, 52, 0, shanghai)) {
		t.Fatalf("first row %s, updated %v", b.Records[0].Payload, b.Records[0].UpdatedAt)
	}
	added, _ := hr.Add(ctx)
	corrected, _ := hr.Correct(ctx)
	got, _ := drainAll(t, s, cur, 7)
	want := []string{strconv.FormatInt(added, 10), strconv.FormatInt(corrected, 10)}
	if !slices.Equal(got, want) {
		t.Fatalf("after the trickle got %v, want %v", got, want)
	}
}

// Unsigned ids beyond int64 sharing one timestamp page one by one.
func TestUnsignedBigIDsMariaDB(t *testing.T) {
	e := engines[1]
	dsn, db := e.open(t)
	exec(t, db, `CREATE TABLE u (id BIGINT UNSIGNED PRIMARY KEY, updated_at DATETIME(6) NOT NULL)`,
		`INSERT INTO u VALUES (9223372036854775807, '2026-01-01 00:00:00'), (9223372036854775808, '2026-01-01 00:00:00'),
			(18446744073709551614, '2026-01-01 00:00:00'), (18446744073709551615, '2026-01-01 00:00:00'), (3, '2026-01-01 00:00:00')`)
	s := newSource(t, e, dsn, sqlsrc.Config{Table: "u"})
	defer s.Close(context.Background())
	got, _ := drainAll(t, s, "", 1)
	want := []string{"3", "9223372036854775807", "9223372036854775808", "18446744073709551614", "18446744073709551615"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}
