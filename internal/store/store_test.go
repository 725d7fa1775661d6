package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/panjin-gov/syncd/internal/record"
	"github.com/panjin-gov/syncd/internal/store"
	"github.com/panjin-gov/syncd/internal/store/storetest"
)

func sampleRecord(id string, version uint64, ingested time.Time) record.Record {
	loc := time.FixedZone("CST", 8*3600)
	return record.Record{
		RecordID: id, Version: version, Kind: record.DisciplinaryAction, Status: record.Active,
		SubjectType: record.CivilServant, SubjectName: "张某", SubjectIDMasked: "211102********1234",
		SubjectIDEnc: []byte{0x01, 0xff, 0x00, 0x80}, RegionCode: "211100",
		DocNo: "盘纪处〔2026〕12号", Category: "记过", FineAmount: 15 * record.AmountScale / 10,
		DecisionDate:   time.Date(2026, 3, 5, 0, 0, 0, 0, loc),
		PublicityUntil: time.Date(2027, 3, 5, 0, 0, 0, 0, loc),
		AuthorityName:  "中共盘锦市纪律检查委员会", SourceSystem: "discipline", SourceKey: "JJ-1",
		SourceUpdatedAt: ingested.Add(-time.Hour), IngestedAt: ingested, ContentHash: "h" + id,
	}
}

func TestMigrateIsIdempotent(t *testing.T) {
	s := storetest.New(t)
	applied, err := s.Migrate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) != 0 {
		t.Fatalf("second migrate applied %v, want nothing", applied)
	}
}

func TestRecordRoundTripAndLatest(t *testing.T) {
	ctx := context.Background()
	s := storetest.New(t)
	now := time.Now().Truncate(time.Second)
	r1 := sampleRecord("aaa", 1, now)
	r2 := sampleRecord("aaa", 2, now)
	r2.Facts = "更正后的事实"
	r2.ContentHash = "h2"
	b := sampleRecord("bbb", 7, now)
	b.PublicityUntil = time.Time{}
	// The same version twice (a re-pull after a crash) must stay one record.
	if err := s.WriteBatch(ctx, &store.Batch{Records: []record.Record{r1, b, b}}); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteBatch(ctx, &store.Batch{Records: []record.Record{r2}}); err != nil {
		t.Fatal(err)
	}
	latest, err := s.LatestVersions(ctx, []string{"aaa", "bbb", "ccc"})
	if err != nil {
		t.Fatal(err)
	}
	if latest["aaa"].Version != 2 || latest["aaa"].ContentHash != "h2" || latest["bbb"].Version != 7 {
		t.Fatalf("latest = %+v", latest)
	}
	if _, ok := latest["ccc"]; ok {
		t.Fatal("unknown id reported")
	}
	got, ok, err := s.Get(ctx, "aaa")
	if err != nil || !ok {
		t.Fatalf("get: %v %v", ok, err)
	}
	if got.Version != 2 || got.Facts != "更正后的事实" || got.FineAmount != r1.FineAmount ||
		got.DocNo != r1.DocNo || string(got.SubjectIDEnc) != string(r1.SubjectIDEnc) {
		t.Fatalf("round trip: %+v", got)
	}
	if y, m, d := got.DecisionDate.Date(); y != 2026 || m != 3 || d != 5 {
		t.Fatalf("decision date = %v", got.DecisionDate)
	}
	if y, m, d := got.PublicityUntil.Date(); y != 2027 || m != 3 || d != 5 {
		t.Fatalf("publicity until = %v", got.PublicityUntil)
	}
	gotB, _, _ := s.Get(ctx, "bbb")
	if !gotB.PublicityUntil.IsZero() {
		t.Fatalf("null publicity_until came back as %v", gotB.PublicityUntil)
	}
	n, err := s.RecordCount(ctx)
	if err != nil || n != 2 {
		t.Fatalf("count = %d, %v", n, err)
	}
}

func TestCursorKeepsLatest(t *testing.T) {
	ctx := context.Background()
	s := storetest.New(t)
	if _, ok, err := s.Cursor(ctx, "src"); err != nil || ok {
		t.Fatalf("fresh cursor ok=%v err=%v", ok, err)
	}
	for _, v := range []string{"one", "two", "three"} {
		if err := s.SaveCursor(ctx, "src", v); err != nil {
			t.Fatal(err)
		}
	}
	v, ok, err := s.Cursor(ctx, "src")
	if err != nil || !ok || v != "three" {
		t.Fatalf("cursor = %q %v %v", v, ok, err)
	}
}

func TestPendingFollowsLedger(t *testing.T) {
	ctx := context.Background()
	s := storetest.New(t)
	now := time.Now().Truncate(time.Second)
	old := now.Add(-48 * time.Hour)
	recs := []record.Record{sampleRecord("r1", 1, now), sampleRecord("r2", 1, now), sampleRecord("r3", 1, now), sampleRecord("r0", 1, old)}
	if err := s.WriteBatch(ctx, &store.Batch{Records: recs}); err != nil {
		t.Fatal(err)
	}
	since := now.Add(-time.Hour)
	p, err := s.Pending(ctx, "prov", since, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(p) != 3 {
		t.Fatalf("pending = %d, want 3 (r0 is before the watermark)", len(p))
	}
	err = s.WriteLedger(ctx, []store.LedgerEntry{
		{Target: "prov", RecordID: "r1", Version: 1, Op: store.OpAdd, Outcome: store.Accepted, AttemptAt: now},
		{Target: "prov", RecordID: "r2", Version: 1, Op: store.OpAdd, Outcome: store.Rejected, Code: "E101", AttemptAt: now},
		{Target: "prov", RecordID: "r3", Version: 1, Op: store.OpAdd, Outcome: store.Failed, AttemptAt: now},
		{Target: "other", RecordID: "r3", Version: 1, Op: store.OpAdd, Outcome: store.Accepted, AttemptAt: now},
	})
	if err != nil {
		t.Fatal(err)
	}
	p, err = s.Pending(ctx, "prov", since, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(p) != 1 || p[0].RecordID != "r3" {
		t.Fatalf("pending after ledger = %+v, want only r3 (failed is retried)", p)
	}
	// A new version of an accepted record is pending again.
	r1v2 := sampleRecord("r1", 2, now)
	if err := s.WriteBatch(ctx, &store.Batch{Records: []record.Record{r1v2}}); err != nil {
		t.Fatal(err)
	}
	p, _ = s.Pending(ctx, "prov", since, 10)
	if len(p) != 2 {
		t.Fatalf("pending after new version = %d, want 2", len(p))
	}
	last, err := s.LastAccepted(ctx, "prov", []string{"r1", "r2"})
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := last["r1"]; !ok || d.Version != 1 || d.Op != store.OpAdd {
		t.Fatalf("last accepted r1 = %+v", last)
	}
	if _, ok := last["r2"]; ok {
		t.Fatal("rejected version reported as accepted")
	}
	sum, err := s.Summary(ctx, "prov", 5)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Accepted != 1 || sum.Rejected != 1 || sum.Failed != 1 || sum.Pending != 3 || len(sum.LastErrors) != 2 {
		t.Fatalf("summary = %+v", sum)
	}
}
