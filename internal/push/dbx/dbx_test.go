package dbx_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/panjin-gov/syncd/internal/backoff"
	"github.com/panjin-gov/syncd/internal/push"
	"github.com/panjin-gov/syncd/internal/push/dbx"
	"github.com/panjin-gov/syncd/internal/record"
	"github.com/panjin-gov/syncd/internal/sandbox"
	"github.com/panjin-gov/syncd/internal/store"
	"github.com/panjin-gov/syncd/internal/store/storetest"
	"github.com/panjin-gov/syncd/internal/testdb"
)

type server struct {
	name   string
	driver string
	open   func(testing.TB) (string, *sql.DB)
}

var servers = []server{
	{"PostgreSQL", "postgres", testdb.Postgres},
	{"MariaDB", "mysql", testdb.MySQL},
}

// valid USCCs (GB 32100 check digit) for the records' subjects.
const goodUSCC = "91350100M000100Y43"

func records(n int, at time.Time) []record.Record {
	recs := make([]record.Record, n)
	for i := range recs {
		recs[i] = record.Record{
			RecordID: fmt.Sprintf("rec%03d", i), Version: 1, Kind: record.AdminPenalty, Status: record.Active,
			SubjectType: record.Agency, SubjectName: fmt.Sprintf("盘锦市某局%d", i), SubjectUSCC: goodUSCC,
			DocNo: fmt.Sprintf("盘罚〔2026〕%d号", i), Category: "警告", DecisionDate: at.AddDate(0, -1, 0),
			AuthorityName: "盘锦市市场监督管理局", SourceSystem: "t", SourceKey: fmt.Sprint(i), SourceUpdatedAt: at, IngestedAt: at,
		}
	}
	// Record 7 fails the platform's USCC check: it comes back as 疑问数据.
	recs[7].SubjectUSCC = "91350100M000100Y44"
	return recs
}

func TestFrontDatabaseRoundTrip(t *testing.T) {
	for _, srv := range servers {
		t.Run(srv.name, func(t *testing.T) {
			ctx := context.Background()
			dsn, db := srv.open(t)
			platform, err := sandbox.NewFrontDB(ctx, db, srv.driver)
			if err != nil {
				t.Fatal(err)
			}
			st := storetest.New(t)
			now := time.Now()
			if err := st.InsertRecords(ctx, records(30, now)); err != nil {
				t.Fatal(err)
			}
			tg, err := dbx.New(dbx.Config{Driver: srv.driver, DSNEnv: "X"}, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer tg.Close(ctx)
			layout, err := push.Profile{Base: "liaoning"}.Compile()
			if err != nil {
				t.Fatal(err)
			}
			run := func() push.Stats {
				t.Helper()
				r := &push.Runner{Name: "liaoning", Target: tg, Ledger: st, Layout: layout, BatchSize: 8, SafetyLag: time.Second,
					Retry: backoff.Policy{MaxAttempts: 2, Initial: time.Millisecond, Max: time.Millisecond}, Log: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))}
				s, err := r.Run(ctx)
				if err != nil {
					t.Fatal(err)
				}
				return s
			}

			// First run: every version handed over, none answered yet.
			if s := run(); s.Sent != 30 || s.Accepted != 0 {
				t.Fatalf("first run %+v", s)
			}
			// A second run before the platform answered sends nothing again.
			if s := run(); s.Pushed != 0 || s.Feedback != 0 {
				t.Fatalf("second run resent: %+v", s)
			}
			sum, _ := st.Summary(ctx, "liaoning", 5)
			if sum.Sent != 30 || sum.Pending != 0 || sum.OldestSent.IsZero() {
				t.Fatalf("ledger while awaiting feedback: %+v", sum)
			}
			if n, err := platform.Process(ctx); err != nil || n != 30 {
				t.Fatalf("platform processed %d: %v", n, err)
			}
			if s := run(); s.Feedback != 30 {
				t.Fatalf("feedback run %+v", s)
			}
			sum, _ = st.Summary(ctx, "liaoning", 5)
			if sum.Accepted != 29 || sum.Rejected != 1 || sum.Sent != 0 {
				t.Fatalf("ledger after feedback: %+v", sum)
			}
			if len(sum.LastErrors) != 1 || sum.LastErrors[0].Code != sandbox.FrontCodeBadUSCC || sum.LastErrors[0].RecordID != "rec007" {
				t.Fatalf("rejection not kept with the platform's code: %+v", sum.LastErrors)
			}
			h := platform.Holdings()
			if len(h) != 29 || h["rec003"].Data["xdrmc"] != "盘锦市某局3" || h["rec003"].Data["tyshxydm"] != goodUSCC {
				t.Fatalf("platform holds %d: %+v", len(h), h["rec003"])
			}

			// A correction and a revocation arrive as U and D rows.
			later := now.Add(time.Second)
			corr := records(30, later)
			c3, rv5 := corr[3], corr[5]
			c3.Version, c3.Category = 2, "罚款"
			rv5.Version, rv5.Status = 2, record.Revoked
			if err := st.InsertRecords(ctx, []record.Record{c3, rv5}); err != nil {
				t.Fatal(err)
			}
			if s := run(); s.Sent != 2 {
				t.Fatalf("correction run %+v", s)
			}
			if _, err := platform.Process(ctx); err != nil {
				t.Fatal(err)
			}
			run()
			h = platform.Holdings()
			if h["rec003"].Data["cflb"] != "罚款" || h["rec003"].Version != 2 || h["rec003"].Op != "update" {
				t.Fatalf("correction not applied: %+v", h["rec003"])
			}
			if _, held := h["rec005"]; held || len(h) != 28 {
				t.Fatalf("revocation not withdrawn: %d held", len(h))
			}
			var rows int
			db.QueryRowContext(ctx, "SELECT count(*) FROM xy_sjjh").Scan(&rows)
			if rows != 32 {
				t.Fatalf("front table has %d rows, want 32 (30 adds, 1 update, 1 withdraw)", rows)
			}
		})
	}
}

// A batch re-sent after a crash between commit and ledger write is not
// inserted twice.
func TestResentBatchIsNotDuplicated(t *testing.T) {
	for _, srv := range servers {
		t.Run(srv.name, func(t *testing.T) {
			ctx := context.Background()
			dsn, db := srv.open(t)
			if _, err := sandbox.NewFrontDB(ctx, db, srv.driver); err != nil {
				t.Fatal(err)
			}
			tg, err := dbx.New(dbx.Config{Driver: srv.driver, DSNEnv: "X"}, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer tg.Close(ctx)
			items := []push.Item{
				{Key: "a:1", Op: store.OpAdd, Data: map[string]any{"xdrmc": "甲", "jdswh": "1"}},
				{Key: "b:1", Op: store.OpAdd, Data: map[string]any{"xdrmc": "乙", "jdswh": "2"}},
			}
			for i := 0; i < 2; i++ {
				rs, err := tg.Send(ctx, "batch-1", items)
				if err != nil {
					t.Fatal(err)
				}
				if len(rs) != 2 || !rs[0].Pending {
					t.Fatalf("receipts %+v", rs)
				}
			}
			var n int
			db.QueryRowContext(ctx, "SELECT count(*) FROM xy_sjjh").Scan(&n)
			if n != 2 {
				t.Fatalf("%d rows after a re-sent batch, want 2", n)
			}
		})
	}
}

func TestMissingTableIsPermanentAndUnreachableIsTransient(t *testing.T) {
	ctx := context.Background()
	dsn, _ := testdb.Postgres(t)
	tg, err := dbx.New(dbx.Config{Driver: "postgres", DSNEnv: "X", Table: "no_such_table"}, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close(ctx)
	items := []push.Item{{Key: "a:1", Op: store.OpAdd, Data: map[string]any{"xdrmc": "甲"}}}
	if _, err := tg.Send(ctx, "b", items); err == nil || !errorsIs(err, push.ErrPermanent) {
		t.Fatalf("missing table: %v", err)
	}
	down, err := dbx.New(dbx.Config{Driver: "postgres", DSNEnv: "X", Timeout: time.Second}, "postgres://u:p@127.0.0.1:1/x?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	defer down.Close(ctx)
	if _, err := down.Send(ctx, "b", items); err == nil || errorsIs(err, push.ErrPermanent) {
		t.Fatalf("unreachable database should be a transient error: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	c := dbx.Config{Driver: "oracle", Table: "x; drop table y", OpValues: map[string]string{"delete": "D"}}
	c.SetDefaults()
	err := c.Validate()
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, want := range []string{`driver: "oracle"`, "dsn_env: required", `table: "x; drop table y"`, "op_values.delete"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err, want)
		}
	}
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }

// A platform that clears its front table once it has read the rows still
// has its feedback recorded: the op comes from the ledger.
func TestFeedbackAfterFrontRowsAreCleared(t *testing.T) {
	ctx := context.Background()
	dsn, db := testdb.Postgres(t)
	platform, err := sandbox.NewFrontDB(ctx, db, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	st := storetest.New(t)
	if err := st.InsertRecords(ctx, records(12, time.Now())); err != nil {
		t.Fatal(err)
	}
	tg, err := dbx.New(dbx.Config{Driver: "postgres", DSNEnv: "X"}, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close(ctx)
	layout, _ := push.Profile{Base: "liaoning"}.Compile()
	r := func() *push.Runner {
		return &push.Runner{Name: "liaoning", Target: tg, Ledger: st, Layout: layout, BatchSize: 5, SafetyLag: time.Second,
			Retry: backoff.Policy{MaxAttempts: 1, Initial: time.Millisecond, Max: time.Millisecond}, Log: zap.NewNop()}
	}
	if s, err := r().Run(ctx); err != nil || s.Sent != 12 {
		t.Fatalf("send: %+v %v", s, err)
	}
	if _, err := platform.Process(ctx); err != nil {
		t.Fatal(err)
	}
	testdb.Exec(t, db, "DELETE FROM xy_sjjh")
	s, err := r().Run(ctx)
	if err != nil || s.Feedback != 12 {
		t.Fatalf("feedback run: %+v %v", s, err)
	}
	sum, _ := st.Summary(ctx, "liaoning", 5)
	if sum.Accepted != 11 || sum.Rejected != 1 || sum.Sent != 0 {
		t.Fatalf("ledger %+v", sum)
	}
}
