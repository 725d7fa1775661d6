package main

import (
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/panjin-gov/syncd/internal/normalize"
	"github.com/panjin-gov/syncd/internal/testdb"
)

// killedPull runs `syncd pull SOURCE` with the store-then-kill hook and
// checks it really died by SIGKILL.
func (e *env) killedPull(source string, afterBatch int) {
	e.t.Helper()
	out, err := e.syncd([]string{fmt.Sprintf("SYNCD_TEST_KILL_AFTER_STORE=%d", afterBatch)}, "pull", source)
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		e.t.Fatalf("pull %s was not killed: %v\n%s", source, err, out)
	}
}

// A file-drop pull killed between storing a batch and finishing the file,
// then restarted, stores every row exactly once and finishes the file.
func TestFileDropKillBetweenStoreAndCommit(t *testing.T) {
	dir := t.TempDir()
	const n, batch = 350, 100
	e := newEnvWith(t, nil, batch, fmt.Sprintf(`  penalties:
    type: filedrop
    schedule: "@every 1h"
    batch_size: %d
    filedrop: {dir: %q, pattern: "*.csv", settle_time: 10ms}
    mapping:
      kind: admin_penalty
      fields: {doc_no: wsh, subject_name: mc, decision_date: rq, authority_name: jg, category: lb}`, batch, dir))
	var b strings.Builder
	b.WriteString("wsh,mc,rq,jg,lb\n")
	for i := range n {
		fmt.Fprintf(&b, "盘市监罚〔2026〕%d号,盘锦市某局%d,2026-04-%02d,盘锦市市场监督管理局,警告\n", i+1, i, i%28+1)
	}
	p := filepath.Join(dir, "penalties.csv")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Minute)
	os.Chtimes(p, old, old)

	e.killedPull("penalties", 2)
	if got := e.count("SELECT uniqExact(record_id) FROM {db}.records"); got != 2*batch {
		t.Fatalf("after kill: %d records, want %d", got, 2*batch)
	}
	e.mustSyncd("pull", "penalties")
	if got := e.count("SELECT uniqExact(record_id) FROM {db}.records"); got != n {
		t.Fatalf("records = %d, want %d", got, n)
	}
	if got := e.count("SELECT uniqExact(record_id, version) FROM {db}.record_log"); got != n {
		t.Fatalf("versions written = %d, want %d: re-read rows were stored again", got, n)
	}
	if done, _ := filepath.Glob(filepath.Join(dir, "done", "*penalties.csv")); len(done) != 1 {
		t.Fatalf("file not finished after restart: %v", done)
	}
	// Nothing left to do.
	out := e.mustSyncd("pull", "penalties")
	if !strings.Contains(out, "pulled 0") {
		t.Fatalf("third pull: %s", out)
	}
}

// An SQL pull (PostgreSQL, and MariaDB) killed between storing a batch and
// saving its (updated_at, id) cursor, then restarted, stores every row
// exactly once, rows sharing one timestamp across batch boundaries included.
func TestSQLKillBetweenStoreAndCursor(t *testing.T) {
	for _, srv := range []struct {
		name, driver string
		open         func(testing.TB) (string, *sql.DB)
	}{{"PostgreSQL", "postgres", testdb.Postgres}, {"MariaDB", "mysql", testdb.MySQL}} {
		t.Run(srv.name, func(t *testing.T) {
			const n, batch = 350, 100
			dsn, db := srv.open(t)
			testdb.Exec(t, db, `CREATE TABLE sanctions (id BIGINT PRIMARY KEY, updated_at TIMESTAMP NOT NULL,
				name VARCHAR(50), employer VARCHAR(100), doc_no VARCHAR(50), sanction VARCHAR(20), decided DATE)`)
			ph := func(i int) string {
				if srv.driver == "mysql" {
					return "?"
				}
				return fmt.Sprintf("$%d", i)
			}
			ins := fmt.Sprintf("INSERT INTO sanctions VALUES (%s, %s, %s, %s, %s, %s, %s)", ph(1), ph(2), ph(3), ph(4), ph(5), ph(6), ph(7))
			base := time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)
			for i := range n {
				// 7 rows per timestamp: batches of 100 split tie groups.
				if _, err := db.Exec(ins, i+1, base.Add(time.Duration(i/7)*time.Second), fmt.Sprintf("公务员%d", i),
					"盘锦市某局", fmt.Sprintf("盘人社处〔2026〕%d号", i+1), "警告", "2026-05-20"); err != nil {
					t.Fatal(err)
				}
			}
			e := newEnvWith(t, nil, batch, fmt.Sprintf(`  hr:
    type: sql
    schedule: "@every 1h"
    batch_size: %d
    sql: {driver: %s, dsn_env: E2E_SQL_DSN, table: sanctions, page_size: %d}
    mapping:
      kind: disciplinary_action
      fields: {doc_no: doc_no, subject_name: name, category: sanction, decision_date: decided, authority_name: employer}
      constants: {subject_type: civil_servant}`, batch, srv.driver, batch))
			e.environ = append(e.environ, "E2E_SQL_DSN="+dsn)

			e.killedPull("hr", 2)
			if got := e.count("SELECT uniqExact(record_id) FROM {db}.records"); got != 2*batch {
				t.Fatalf("after kill: %d records, want %d", got, 2*batch)
			}
			out := e.mustSyncd("pull", "hr")
			if got := e.count("SELECT uniqExact(record_id) FROM {db}.records"); got != n {
				t.Fatalf("records = %d, want %d\n%s", got, n, out)
			}
			if got := e.count("SELECT uniqExact(record_id, version) FROM {db}.record_log"); got != n {
				t.Fatalf("versions written = %d, want %d: re-read rows were stored again", got, n)
			}
			if got := e.count("SELECT count() FROM {db}.rejects"); got != 0 {
				t.Fatalf("%d rejects", got)
			}
		})
	}
}

// One decision reported by two systems, one naming the issuing authority
// and the other giving only its code, is one record once the shared
// authorities directory links the two.
func TestAuthoritiesDirectoryJoinsSources(t *testing.T) {
	body := "11211100MB0001234"
	c, _ := normalize.USCCCheckChar(body)
	code := body + string(c)
	items := cleanItems(1) // names the authority 中共盘锦市纪律检查委员会, no code
	dir := t.TempDir()
	e := newEnvWith(t, items, 10, fmt.Sprintf(`  hr:
    type: filedrop
    schedule: "@every 1h"
    filedrop: {dir: %q, pattern: "*.csv", settle_time: 1ms}
    mapping:
      kind: disciplinary_action
      fields: {doc_no: wh, subject_name: xm, category: cf, decision_date: rq, authority_uscc: jgdm}
      constants: {subject_type: civil_servant}`, dir))
	e.addTargets(fmt.Sprintf("authorities:\n  - {name: 中共盘锦市纪律检查委员会, uscc: %s, aliases: [盘锦市纪委]}\n", code))
	csv := "wh,xm,cf,rq,jgdm\n盘纪处[2026]1000号,测试人员0,警告,2026-03-05," + code + "\n"
	if err := os.WriteFile(filepath.Join(dir, "a.csv"), []byte(csv), 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	e.mustSyncd("pull", "discipline")
	e.mustSyncd("pull", "hr")
	if n := e.count("SELECT uniqExact(record_id) FROM {db}.records"); n != 1 {
		t.Fatalf("%d records for one decision from two sources", n)
	}
	if n := e.count("SELECT count() FROM {db}.records WHERE authority_uscc = '" + code + "' AND authority_name = '中共盘锦市纪律检查委员会'"); n == 0 {
		t.Fatal("the directory did not complete the authority's name and code")
	}
}
