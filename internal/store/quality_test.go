package store_test

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/panjin-gov/syncd/internal/record"
	"github.com/panjin-gov/syncd/internal/store"
	"github.com/panjin-gov/syncd/internal/store/storetest"
)

func TestWorkingDaysBetween(t *testing.T) {
	d := func(s string) time.Time { v, _ := time.Parse("2006-01-02", s); return v }
	cases := []struct {
		from, to string
		want     int
	}{
		{"2026-11-23", "2026-11-23", 0}, // Monday, same day
		{"2026-11-23", "2026-11-24", 1},
		{"2026-11-27", "2026-11-30", 1},   // Friday → Monday
		{"2026-11-27", "2026-11-29", 0},   // Friday → Sunday
		{"2026-11-23", "2026-12-02", 7},   // Monday → next Wednesday
		{"2026-11-23", "2026-12-03", 8},   // one day late
		{"2026-11-28", "2026-12-09", 8},   // Saturday start
		{"2026-11-23", "2027-11-22", 260}, // 52 weeks
		{"2026-11-24", "2026-11-23", 0},
	}
	for _, c := range cases {
		if got := store.WorkingDaysBetween(d(c.from), d(c.to)); got != c.want {
			t.Errorf("%s → %s: %d, want %d", c.from, c.to, got, c.want)
		}
	}
}

func TestQualityFigures(t *testing.T) {
	st := storetest.New(t)
	ctx := context.Background()
	cst := time.FixedZone("CST", 8*3600)
	decided := time.Date(2026, 11, 2, 0, 0, 0, 0, cst) // a Monday
	full := func(i int, unit string, ingested time.Time) record.Record {
		return record.Record{
			RecordID: fmt.Sprintf("q%d", i), Version: 1, Kind: record.AdminPenalty, Status: record.Active,
			SubjectType: record.Agency, SubjectName: "盘锦市某局", SubjectUSCC: "11211100MB0000000X",
			DocNo: fmt.Sprintf("盘罚〔2026〕%d号", i), ViolationType: "v", Facts: "f", LegalBasis: "b", Category: "警告",
			Content: "c", DecisionDate: decided, AuthorityName: "a", AuthorityUSCC: "11211100MB0000001X",
			DataSourceUnit: unit, RegionCode: "211100", PublicityUntil: decided.AddDate(1, 0, 0),
			SourceSystem: "enforcement", SourceKey: fmt.Sprint(i), SourceUpdatedAt: ingested, IngestedAt: ingested,
		}
	}
	var recs []record.Record
	// Unit A: 4 complete records, 3 stored within 7 working days.
	for i := 0; i < 4; i++ {
		at := decided.AddDate(0, 0, 3)
		if i == 3 {
			at = decided.AddDate(0, 0, 20)
		}
		recs = append(recs, full(i, "盘锦市市场监督管理局", at))
	}
	// Unit B: 2 records missing facts and content (12/14 complete), on time.
	for i := 4; i < 6; i++ {
		r := full(i, "盘锦市生态环境局", decided.AddDate(0, 0, 1))
		r.Facts, r.Content = "", ""
		recs = append(recs, r)
	}
	if err := st.InsertRecords(ctx, recs); err != nil {
		t.Fatal(err)
	}
	// A correction of q0 later: first-stored time must stay the first one.
	corr := full(0, "盘锦市市场监督管理局", decided.AddDate(0, 1, 0))
	corr.Version = 2
	if err := st.InsertRecords(ctx, []record.Record{corr}); err != nil {
		t.Fatal(err)
	}
	// Two rejected keys, one of which was later stored (source key "5").
	rej := []record.Reject{
		{Source: "enforcement", SourceKey: "bad1", Field: "doc_no", Reason: "missing_field", RejectedAt: time.Now()},
		{Source: "enforcement", SourceKey: "5", Field: "decision_date", Reason: "bad_date", RejectedAt: time.Now()},
	}
	if err := st.WriteBatch(ctx, &store.Batch{Rejects: rej}); err != nil {
		t.Fatal(err)
	}

	q, err := st.Quality(ctx, decided.AddDate(0, -1, 0))
	if err != nil {
		t.Fatal(err)
	}
	if len(q.Sources) != 1 || q.Sources[0].Keys != 7 || q.Sources[0].Stored != 6 || q.Sources[0].Rejected != 1 {
		t.Fatalf("source quality %+v", q.Sources)
	}
	if math.Abs(q.Sources[0].ValidRate-6.0/7) > 1e-9 {
		t.Fatalf("valid rate %v", q.Sources[0].ValidRate)
	}
	if len(q.Units) != 2 {
		t.Fatalf("units %+v", q.Units)
	}
	for _, u := range q.Units {
		switch u.Unit {
		case "盘锦市市场监督管理局":
			if u.Records != 4 || u.Timely != 3 || math.Abs(u.Completeness-1) > 1e-9 {
				t.Errorf("unit A %+v", u)
			}
		case "盘锦市生态环境局":
			if u.Records != 2 || u.Timely != 2 || math.Abs(u.Completeness-12.0/14) > 1e-9 {
				t.Errorf("unit B %+v", u)
			}
		default:
			t.Errorf("unexpected unit %+v", u)
		}
	}
	// A window after the decisions holds nothing.
	if q, err := st.Quality(ctx, decided.AddDate(0, 0, 1)); err != nil || len(q.Units) != 0 {
		t.Fatalf("later window: %+v %v", q.Units, err)
	}
}

func TestWarningsAndUnpublishedRoundTrip(t *testing.T) {
	st := storetest.New(t)
	ctx := context.Background()
	now := time.Now()
	recs := []record.Record{
		{RecordID: "w1", Version: 1, Kind: record.AdminPenalty, Status: record.Active, SubjectType: record.Agency,
			Severity: "轻微", Unpublished: true, Warnings: []string{"publicity_too_long:publicity_until", "authority_mismatch:authority_uscc"},
			DecisionDate: now, IngestedAt: now, SourceUpdatedAt: now},
		{RecordID: "w2", Version: 1, Kind: record.AdminPenalty, Status: record.Active, SubjectType: record.Agency,
			DecisionDate: now, IngestedAt: now, SourceUpdatedAt: now},
	}
	if err := st.InsertRecords(ctx, recs); err != nil {
		t.Fatal(err)
	}
	got, err := st.Current(ctx, []string{"w1", "w2"})
	if err != nil || len(got) != 2 {
		t.Fatalf("%d records: %v", len(got), err)
	}
	for _, r := range got {
		switch r.RecordID {
		case "w1":
			if !r.Unpublished || len(r.Warnings) != 2 || r.Warnings[1] != "authority_mismatch:authority_uscc" {
				t.Errorf("w1 read back as %v %v", r.Unpublished, r.Warnings)
			}
		case "w2":
			if r.Unpublished || r.Warnings != nil {
				t.Errorf("w2 read back as %v %v", r.Unpublished, r.Warnings)
			}
		}
	}
}
