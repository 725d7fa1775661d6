package ingest_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/panjin-gov/syncd/internal/backoff"
	"github.com/panjin-gov/syncd/internal/connectors/filedrop"
	"github.com/panjin-gov/syncd/internal/ingest"
	"github.com/panjin-gov/syncd/internal/normalize"
	"github.com/panjin-gov/syncd/internal/store/storetest"
)

// A source of large payloads gets batches bounded by BatchBytes, not by
// BatchSize alone, and every row is still stored once.
func TestBatchBytesBoundsLargePayloads(t *testing.T) {
	dir := t.TempDir()
	facts := strings.Repeat("违反工作纪律，造成不良影响。", 700) // ~20 KB
	var b strings.Builder
	b.WriteString("wh,mc,rq,jg,ss\n")
	const rows = 200
	for i := range rows {
		fmt.Fprintf(&b, "盘罚〔2026〕%d号,盘锦市某局%d,2026-03-01,盘锦市市场监督管理局,%s\n", i+1, i, facts)
	}
	path := filepath.Join(dir, "big.csv")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Minute)
	os.Chtimes(path, old, old)
	src, err := filedrop.New("big", filedrop.Config{Dir: dir, Pattern: "*.csv", SettleTime: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close(context.Background())
	norm, err := normalize.New("big", normalize.Mapping{Kind: "admin_penalty", Fields: map[string]string{
		"doc_no": "wh", "subject_name": "mc", "decision_date": "rq", "authority_name": "jg", "facts": "ss"},
		Constants: map[string]string{"subject_type": "agency"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	st := storetest.New(t)
	r := &ingest.Runner{Name: "big", Source: src, Normalizer: norm, Store: st, BatchSize: 1000, BatchBytes: 200 << 10,
		Retry: backoff.Policy{MaxAttempts: 2, Initial: time.Millisecond, Max: time.Millisecond}, Log: zap.NewNop()}
	stats, err := r.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// 200 rows of ~20 KB against 200 KB: a probe batch of 100, then about 10 rows a batch.
	if stats.Stored != rows || stats.Batches < 8 {
		t.Fatalf("%+v: want %d stored in at least 8 batches", stats, rows)
	}
	if n, _ := st.RecordCount(context.Background()); n != rows {
		t.Fatalf("%d records stored", n)
	}
}
