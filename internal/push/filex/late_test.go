package filex_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/panjin-gov/syncd/internal/backoff"
	"github.com/panjin-gov/syncd/internal/push"
	"github.com/panjin-gov/syncd/internal/push/filex"
	"github.com/panjin-gov/syncd/internal/record"
	"github.com/panjin-gov/syncd/internal/sandbox"
	"github.com/panjin-gov/syncd/internal/store/storetest"
)

// A platform that answers after Send stopped waiting: the versions are
// handed over as sent, nothing is written twice, and the late receipts are
// read on the next run and turn into accepted and rejected outcomes.
func TestLateReceiptsArriveAsFeedback(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p := sandboxPlatform(t, dir, sandbox.FileFaults{Delay: 300 * time.Millisecond})
	st := storetest.New(t)
	now := time.Now()
	var recs []record.Record
	for i := range 7 {
		recs = append(recs, record.Record{RecordID: fmt.Sprintf("late%d", i), Version: 1, Kind: record.AdminPenalty,
			Status: record.Active, SubjectType: record.Agency, SubjectName: "盘锦市某局", DocNo: fmt.Sprintf("盘罚〔2026〕%d号", i),
			DecisionDate: now.AddDate(0, -1, 0), AuthorityName: "盘锦市综合行政执法局", SourceSystem: "t", SourceKey: fmt.Sprint(i),
			SourceUpdatedAt: now, IngestedAt: now})
	}
	recs[3].SubjectName = "" // the platform rejects a record without 行政相对人名称
	if err := st.InsertRecords(ctx, recs); err != nil {
		t.Fatal(err)
	}
	tg := newTarget(t, filex.Config{Dir: dir, ReceiptTimeout: 30 * time.Millisecond})
	layout, _ := push.Profile{}.Compile()
	run := func() push.Stats {
		t.Helper()
		r := &push.Runner{Name: "exchange", Target: tg, Ledger: st, Layout: layout, BatchSize: 5, SafetyLag: time.Second,
			Retry: backoff.Policy{MaxAttempts: 1, Initial: time.Millisecond, Max: time.Millisecond}, Log: zap.NewNop()}
		s, err := r.Run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if s := run(); s.Sent != 7 || s.Accepted != 0 {
		t.Fatalf("first run %+v", s)
	}
	// The platform answers ~300 ms a batch later; runs until then resend
	// nothing and read what has come.
	feedback := 0
	for deadline := time.Now().Add(15 * time.Second); feedback < 7; {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of 7 receipts read", feedback)
		}
		time.Sleep(100 * time.Millisecond)
		s := run()
		if s.Pushed != 0 {
			t.Fatalf("a version was sent again while awaiting its receipt: %+v", s)
		}
		feedback += s.Feedback
	}
	sum, _ := st.Summary(ctx, "exchange", 5)
	if sum.Accepted != 6 || sum.Rejected != 1 || sum.Sent != 0 || sum.Pending != 0 {
		t.Fatalf("ledger %+v", sum)
	}
	if st := p.Stats(); st.Records.Duplicates != 0 || st.Records.Received != 7 {
		t.Fatalf("platform saw re-sends: %+v", st)
	}
	// A third run reads nothing again (the receipts are archived).
	if s := run(); s.Feedback != 0 {
		t.Fatalf("receipts read twice: %+v", s)
	}
}
