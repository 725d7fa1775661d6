package ingest

import (
	"testing"
	"time"

	"github.com/panjin-gov/syncd/internal/record"
	"github.com/panjin-gov/syncd/internal/store"
)

func TestVersion(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	ms := uint64(t0.UnixMilli())
	cases := []struct {
		name    string
		prev    store.Latest
		seen    bool
		rec     record.Record
		version uint64
		verdict Verdict
	}{
		{"new with source time", store.Latest{}, false, record.Record{ContentHash: "a", SourceUpdatedAt: t0}, ms, NewVersion},
		{"new without source time", store.Latest{}, false, record.Record{ContentHash: "a"}, 1, NewVersion},
		{"identical re-send", store.Latest{Version: ms, ContentHash: "a", SourceUpdatedAt: t0}, true, record.Record{ContentHash: "a", SourceUpdatedAt: t0.Add(time.Hour)}, 0, Duplicate},
		{"older than stored", store.Latest{Version: ms, ContentHash: "a", SourceUpdatedAt: t0}, true, record.Record{ContentHash: "b", SourceUpdatedAt: t0.Add(-time.Second)}, 0, StaleVersion},
		{"correction", store.Latest{Version: ms, ContentHash: "a", SourceUpdatedAt: t0}, true, record.Record{ContentHash: "b", SourceUpdatedAt: t0.Add(time.Second)}, ms + 1000, NewVersion},
		{"same time, new content", store.Latest{Version: ms, ContentHash: "a", SourceUpdatedAt: t0}, true, record.Record{ContentHash: "b", SourceUpdatedAt: t0}, ms + 1, NewVersion},
		{"after housekeeping bumped version", store.Latest{Version: ms + 5000, ContentHash: "a", SourceUpdatedAt: t0}, true, record.Record{ContentHash: "b", SourceUpdatedAt: t0.Add(time.Second)}, ms + 5001, NewVersion},
	}
	for _, c := range cases {
		v, verdict := Version(c.prev, c.seen, &c.rec)
		if v != c.version || verdict != c.verdict {
			t.Errorf("%s: got v%d verdict %d, want v%d verdict %d", c.name, v, verdict, c.version, c.verdict)
		}
	}
}
