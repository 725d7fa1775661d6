package publicity_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/panjin-gov/syncd/internal/publicity"
	"github.com/panjin-gov/syncd/internal/record"
	"github.com/panjin-gov/syncd/internal/store/storetest"
)

func TestExpireWritesExpiredVersionsOnce(t *testing.T) {
	ctx := context.Background()
	s := storetest.New(t)
	loc := time.FixedZone("CST", 8*3600)
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, loc)
	mk := func(id string, status record.Status, until time.Time) record.Record {
		r := record.Record{RecordID: id, Version: 5, Kind: record.AdminPenalty, Status: status, SubjectName: "盘锦市某局",
			DocNo: id, AuthorityName: "盘锦市生态环境局", DecisionDate: time.Date(2025, 1, 2, 0, 0, 0, 0, loc),
			PublicityUntil: until, IngestedAt: now.Add(-time.Hour)}
		r.ContentHash = r.ComputeContentHash()
		return r
	}
	yesterday := time.Date(2026, 11, 26, 0, 0, 0, 0, loc)
	today := time.Date(2026, 11, 27, 0, 0, 0, 0, loc)
	recs := []record.Record{
		mk("past", record.Active, yesterday),
		mk("today", record.Active, today), // still published on its last day
		mk("revoked", record.Revoked, yesterday),
		mk("open", record.Active, time.Time{}),
	}
	// A record whose older version was past but whose current version was extended.
	ext := mk("extended", record.Active, yesterday)
	ext2 := mk("extended", record.Active, today.AddDate(1, 0, 0))
	ext2.Version = 6
	recs = append(recs, ext, ext2)
	if err := s.InsertRecords(ctx, recs); err != nil {
		t.Fatal(err)
	}
	n, err := publicity.Expire(ctx, s, now, loc, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("expired %d, want 1 (only 'past')", n)
	}
	got, ok, err := s.Get(ctx, "past")
	if err != nil || !ok || got.Status != record.Expired || got.Version != 6 {
		t.Fatalf("past = %+v %v %v", got, ok, err)
	}
	// Running again finds nothing: the expired version is current.
	if n, err := publicity.Expire(ctx, s, now, loc, zaptest.NewLogger(t)); err != nil || n != 0 {
		t.Fatalf("second run expired %d, %v", n, err)
	}
}
