package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/panjin-gov/syncd/internal/push"
	"github.com/panjin-gov/syncd/internal/record"
	"github.com/panjin-gov/syncd/internal/sandbox"
	"github.com/panjin-gov/syncd/internal/store"
	"github.com/panjin-gov/syncd/internal/store/storetest"
	"github.com/panjin-gov/syncd/internal/testdb"
)

// The world of `make run`, with the shipped config/syncd.yaml (addresses
// overridden by SYNCD_* variables): four source systems, three platforms.
// After a round, each platform holds exactly the current version of every
// record it should (in scope, published, accepted) and nothing else; after
// every source changes, the corrections reach the platforms as updates
// within one more round.
func TestSandboxWorldEndToEnd(t *testing.T) {
	w := startWorld(t, sandbox.Faults{})
	w.round()
	if n := count(t, w.st, "SELECT uniqExact(source_system) FROM {db}.records"); n != 4 {
		t.Fatalf("records from %d sources, want all 4", n)
	}
	checkPlatforms(t, w.st, w.world, false)

	for i := 1; i <= 2; i++ {
		w.world.Step(w.ctx, i) // a correction or an addition in every source
	}
	w.round()
	checkPlatforms(t, w.st, w.world, true)
}

// The same world with a national platform that fails half its requests,
// cuts a fifth of its answers after applying the batch, and rejects a tenth
// of the records; the discipline source fails half its requests too. After
// enough rounds every platform holds exactly what it should, each version
// applied once (re-sends are recognised by their idempotency key), and the
// rejections are in the ledger with the platform's code.
func TestSandboxWorldWithFaults(t *testing.T) {
	w := startWorld(t, sandbox.Faults{FailRate: 0.5, DropRate: 0.2, RejectRate: 0.1, Seed: 7})
	done := false
	for i := 0; i < 10 && !done; i++ {
		w.tryRound()
		sum, err := w.st.Summary(w.ctx, "national", 5)
		if err != nil {
			t.Fatal(err)
		}
		done = sum.Pending == 0 && sum.Failed == 0 && count(t, w.st, "SELECT uniqExact(source_system) FROM {db}.records") == 4
	}
	if !done {
		t.Fatal("platforms not caught up after 10 rounds")
	}
	checkPlatforms(t, w.st, w.world, false)
	st := w.world.National().Stats()
	if st.Duplicates == 0 || st.Rejected == 0 || st.Failed500 == 0 {
		t.Fatalf("faults did not bite: %+v", st)
	}
	if out := w.syncd("ledger", "national"); !strings.Contains(out, sandbox.NationalCodeSimulated) {
		t.Fatalf("ledger does not show the platform's rejection code:\n%s", out)
	}
}

// world is the sandbox world and syncd pointed at it with the shipped
// config.
type world struct {
	t       *testing.T
	ctx     context.Context
	world   *sandbox.World
	st      *store.Store
	environ []string
}

func startWorld(t *testing.T, faults sandbox.Faults) *world {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	secret := randomKey()
	hrDB, liaoningDB := testdb.Name(t), testdb.Name(t)
	dataDir := t.TempDir()
	sw, err := sandbox.StartWorld(ctx, sandbox.WorldConfig{
		DataDir: dataDir, DisciplineSeed: "../../testdata/sandbox/discipline.jsonl",
		CourtSeed: "../../testdata/sandbox/court.jsonl", HRSeed: "../../testdata/sandbox/hr.jsonl",
		EnforcementSeed: "../../testdata/sandbox/enforcement.csv",
		PostgresAdmin:   testdb.PostgresAdmin(), MySQLAdmin: testdb.MySQLAdmin(),
		HRDatabase: hrDB, LiaoningDB: liaoningDB, NationalKey: "syncd-panjin", NationalSecret: secret,
		Faults: faults,
	}, zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel)))
	t.Cleanup(func() { dropWorldDatabases(t, hrDB, liaoningDB) })
	if err != nil {
		sw.Close()
		t.Fatal(err)
	}
	t.Cleanup(sw.Close)
	srv := httptest.NewServer(sw.Handler())
	t.Cleanup(srv.Close)
	var wg sync.WaitGroup
	bgCtx, stopBG := context.WithCancel(ctx)
	t.Cleanup(func() { stopBG(); wg.Wait() })
	sw.Background(bgCtx, &wg, 0) // platforms pick up; no timed trickle

	st := storetest.New(t)
	pgURL := strings.Replace(testdb.PostgresAdmin(), "/postgres?", "/"+hrDB+"?", 1)
	return &world{t: t, ctx: ctx, world: sw, st: st, environ: append(os.Environ(),
		"SYNCD_CLICKHOUSE_ADDR="+storetest.Addr(), "SYNCD_CLICKHOUSE_DATABASE="+st.Database(),
		"SYNCD_ADMIN_LISTEN=", "SYNCD_LOG_FORMAT=json",
		"SYNCD_PII_HASH_KEY="+randomKey(), "SYNCD_PII_ENC_KEY="+randomKey(), "SYNCD_NATIONAL_APP_SECRET="+secret,
		"SYNCD_SOURCES_DISCIPLINE_HTTP_URL="+srv.URL+"/discipline/api/v1/decisions",
		"SYNCD_SOURCES_COURT_KAFKA_BROKERS="+sw.Court().Addr(),
		"SYNCD_SOURCES_ENFORCEMENT_FILEDROP_DIR="+sw.DropDir(),
		"SYNCD_SOURCES_ENFORCEMENT_FILEDROP_SETTLE_TIME=1ms",
		"SYNCD_TARGETS_NATIONAL_HTTP_URL="+srv.URL+"/national/api/v1/report",
		"SYNCD_TARGETS_NATIONAL_RETRY_INITIAL=10ms", "SYNCD_TARGETS_NATIONAL_RETRY_MAX=50ms",
		"SYNCD_SOURCES_DISCIPLINE_RETRY_INITIAL=10ms", "SYNCD_SOURCES_DISCIPLINE_RETRY_MAX=50ms",
		"SYNCD_TARGETS_EXCHANGE_FILE_DIR="+dataDir+"/exchange",
		"SYNCD_HR_DSN="+pgURL,
		"SYNCD_LIAONING_DSN="+mysqlDSN(t, liaoningDB),
	)}
}

// run runs syncd with the shipped config and returns its output and error.
func (w *world) run(args ...string) (string, error) {
	w.t.Helper()
	cmdCtx, cancel := context.WithTimeout(w.ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(cmdCtx, syncdBin, append([]string{"--config", "../../config/syncd.yaml"}, args...)...)
	cmd.Env = w.environ
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func (w *world) syncd(args ...string) string {
	w.t.Helper()
	out, err := w.run(args...)
	if err != nil {
		w.t.Fatalf("syncd %v: %v\n%s", args, err, out)
	}
	return out
}

// round pulls every source and pushes to every platform once, then lets
// the provincial platform answer and collects its feedback.
func (w *world) round() {
	w.t.Helper()
	time.Sleep(20 * time.Millisecond) // let dropped files settle
	w.syncd("run", "--once")
	if _, err := w.world.Liaoning().Process(w.ctx); err != nil {
		w.t.Fatal(err)
	}
	w.syncd("push", "liaoning")
}

// tryRound is round for a faulty world: jobs may fail and are run again
// next round.
func (w *world) tryRound() {
	w.t.Helper()
	time.Sleep(20 * time.Millisecond)
	w.run("run", "--once")
	if _, err := w.world.Liaoning().Process(w.ctx); err != nil {
		w.t.Fatal(err)
	}
	w.run("push", "liaoning")
}

// checkPlatforms compares what each platform holds with what the store and
// the ledger say it should hold.
func checkPlatforms(t *testing.T, st *store.Store, world *sandbox.World, wantUpdates bool) {
	t.Helper()
	ctx := context.Background()
	type current struct {
		version     uint64
		kind        record.Kind
		status      record.Status
		unpublished bool
	}
	cur := map[string]current{}
	rows, err := st.Conn().Query(ctx, "SELECT record_id, max(version), toString(argMax(kind, version)), "+
		"toString(argMax(status, version)), argMax(unpublished, version) FROM `"+st.Database()+"`.records GROUP BY record_id")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id, kind, status string
		var c current
		var unpub uint8
		if err := rows.Scan(&id, &c.version, &kind, &status, &unpub); err != nil {
			t.Fatal(err)
		}
		c.kind, c.status, c.unpublished = record.Kind(kind), record.Status(status), unpub != 0
		cur[id] = c
	}
	rows.Close()

	platforms := []struct {
		name     string
		holdings map[string]sandbox.Holding
		kinds    map[record.Kind]bool
	}{
		{"national", world.National().Holdings(), nil},
		{"liaoning", world.Liaoning().Holdings(), nil},
		{"exchange", world.Exchange().Holdings(), map[record.Kind]bool{record.AdminPenalty: true}},
	}
	for _, p := range platforms {
		sum, err := st.Summary(ctx, p.name, 20)
		if err != nil {
			t.Fatal(err)
		}
		if sum.Pending != 0 || sum.Sent != 0 || sum.Failed != 0 {
			t.Errorf("%s: unfinished versions: %+v", p.name, sum)
		}
		outcome := latestOutcomes(t, st, p.name)
		want := 0
		for id, c := range cur {
			should := c.status.Published() && !c.unpublished && (p.kinds == nil || p.kinds[c.kind])
			h, held := p.holdings[id]
			o := outcome[push.Key(id, c.version)]
			switch {
			case should && o == store.Accepted:
				want++
				if !held || h.Version != c.version {
					t.Errorf("%s: record %s: holds version %d (held %v), current is %d", p.name, id, h.Version, held, c.version)
				}
			case should && o == store.Rejected:
				if held && h.Version == c.version {
					t.Errorf("%s: record %s v%d rejected by the platform but held", p.name, id, c.version)
				}
			case should:
				t.Errorf("%s: record %s v%d should be delivered; ledger outcome %q", p.name, id, c.version, o)
			case held:
				t.Errorf("%s: holds record %s (status %s, kind %s, unpublished %v) it should not", p.name, id, c.status, c.kind, c.unpublished)
			}
		}
		for id := range p.holdings {
			if _, ok := cur[id]; !ok {
				t.Errorf("%s: holds %s, which is not in the store", p.name, id)
			}
		}
		if len(p.holdings) != want || want == 0 {
			t.Errorf("%s: holds %d records, %d expected", p.name, len(p.holdings), want)
		}
		if wantUpdates && p.kinds == nil {
			updates := 0
			for _, h := range p.holdings {
				if h.Op == "update" {
					updates++
				}
			}
			if updates == 0 {
				t.Errorf("%s: no correction arrived as an update", p.name)
			}
		}
		t.Logf("%s holds %d (accepted %d, rejected %d, skipped %d)", p.name, len(p.holdings), sum.Accepted, sum.Rejected, sum.Skipped)
	}
}

// latestOutcomes is the latest ledger outcome per record version.
func latestOutcomes(t *testing.T, st *store.Store, target string) map[string]store.Outcome {
	t.Helper()
	rows, err := st.Conn().Query(context.Background(), "SELECT record_id, version, toString(argMax(outcome, "+
		"toUInt64(attempt_at) * 4 + multiIf(outcome = 'sent', 0, outcome = 'failed', 1, 2))) FROM `"+st.Database()+
		"`.push_ledger WHERE target = ? GROUP BY record_id, version", target)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]store.Outcome{}
	for rows.Next() {
		var id, o string
		var v uint64
		if err := rows.Scan(&id, &v, &o); err != nil {
			t.Fatal(err)
		}
		out[push.Key(id, v)] = store.Outcome(o)
	}
	return out
}

// count runs a count() query over st's database ({db} in q).
func count(t *testing.T, st *store.Store, q string) uint64 {
	t.Helper()
	var n uint64
	if err := st.Conn().QueryRow(context.Background(), strings.ReplaceAll(q, "{db}", "`"+st.Database()+"`")).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func randomKey() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

func mysqlDSN(t *testing.T, db string) string {
	t.Helper()
	admin := testdb.MySQLAdmin()
	i := strings.Index(admin, ")/")
	if i < 0 {
		t.Fatalf("unexpected MySQL admin DSN form")
	}
	return admin[:i+2] + db + "?parseTime=true"
}

func dropWorldDatabases(t *testing.T, pg, my string) {
	if db, err := sql.Open("pgx", testdb.PostgresAdmin()); err == nil {
		db.Exec(`DROP DATABASE IF EXISTS "` + pg + `" WITH (FORCE)`)
		db.Close()
	}
	if db, err := sql.Open("mysql", testdb.MySQLAdmin()); err == nil {
		db.Exec("DROP DATABASE IF EXISTS `" + my + "`")
		db.Close()
	}
}
