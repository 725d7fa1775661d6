package ingest_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/panjin-gov/syncd/internal/backoff"
	"github.com/panjin-gov/syncd/internal/connectors/filedrop"
	"github.com/panjin-gov/syncd/internal/ingest"
	"github.com/panjin-gov/syncd/internal/normalize"
	"github.com/panjin-gov/syncd/internal/store"
	"github.com/panjin-gov/syncd/internal/store/storetest"
)

// benchRows and benchBatches can be overridden with SYNCD_BENCH_ROWS and
// SYNCD_BENCH_BATCH (comma-separated batch sizes).
func benchEnv(b *testing.B) (rows int, batches []int) {
	rows = 100_000
	if s := os.Getenv("SYNCD_BENCH_ROWS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			b.Fatalf("SYNCD_BENCH_ROWS=%q", s)
		}
		rows = n
	}
	batches = []int{1000, 5000}
	if s := os.Getenv("SYNCD_BENCH_BATCH"); s != "" {
		batches = nil
		for _, f := range bytes.Split([]byte(s), []byte(",")) {
			n, err := strconv.Atoi(string(f))
			if err != nil || n <= 0 {
				b.Fatalf("SYNCD_BENCH_BATCH=%q", s)
			}
			batches = append(batches, n)
		}
	}
	return rows, batches
}

// benchWorkers is Runner.Workers: SYNCD_BENCH_WORKERS, else 0 (GOMAXPROCS).
func benchWorkers(b *testing.B) int {
	s := os.Getenv("SYNCD_BENCH_WORKERS")
	if s == "" {
		return 0
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		b.Fatalf("SYNCD_BENCH_WORKERS=%q", s)
	}
	return n
}

// benchCSV is the file to pull: SYNCD_BENCH_CSV (a copy of it, with rows
// data rows in the same columns), else one written by writeBenchCSV.
func benchCSV(b *testing.B, rows int) (string, int64) {
	path := filepath.Join(b.TempDir(), "penalties.csv")
	if src := os.Getenv("SYNCD_BENCH_CSV"); src != "" {
		data, err := os.ReadFile(src)
		if err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			b.Fatal(err)
		}
		old := time.Now().Add(-time.Hour)
		os.Chtimes(path, old, old)
		return path, int64(len(data))
	}
	return path, writeBenchCSV(b, path, rows)
}

// writeBenchCSV writes rows 行政处罚 rows of about 730 bytes each, like a
// bureau's monthly export.
func writeBenchCSV(b *testing.B, path string, rows int) int64 {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	w.WriteString("wsh,mc,rq,jg,lb,ss,yj,nr,fk\n")
	facts := "经查，该单位在2026年度专项检查中存在未按规定履行公示义务、未及时更新信用信息等问题，违反了相关管理规定，造成一定不良影响。"
	facts = facts + facts + facts
	for i := range rows {
		fmt.Fprintf(w, "盘市监罚〔2026〕%d号,盘锦市某局%d,2025-%02d-%02d,盘锦市市场监督管理局,罚款,%s,《中华人民共和国行政处罚法》第二十八条,\"处罚款人民币%d元,责令改正\",%d.%d\n",
			i+1, i, i%12+1, i%28+1, facts, (i%100+1)*1000, i%100, i%10)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	info, _ := f.Stat()
	f.Close()
	old := time.Now().Add(-time.Hour)
	os.Chtimes(path, old, old)
	return info.Size()
}

// discardStore stores nothing: it measures what the runner itself costs.
type discardStore struct{}

func (discardStore) WriteBatch(context.Context, *store.Batch) error { return nil }
func (discardStore) LatestVersions(context.Context, []string) (map[string]store.Latest, error) {
	return map[string]store.Latest{}, nil
}
func (discardStore) Cursor(context.Context, string) (string, bool, error) { return "", false, nil }
func (discardStore) SaveCursor(context.Context, string, string) error     { return nil }

// BenchmarkIngestFileNoStore is BenchmarkIngestFile with a store that keeps
// nothing: the rate of fetch, normalize and versioning alone, the ceiling
// the runner puts on ingest whatever the database.
func BenchmarkIngestFileNoStore(b *testing.B) {
	rows, batches := benchEnv(b)
	master, size := benchCSV(b, rows)
	norm := benchNormalizer(b)
	for _, bs := range batches {
		b.Run(fmt.Sprintf("batch=%d", bs), func(b *testing.B) {
			ctx := context.Background()
			b.SetBytes(size)
			var took time.Duration
			for range b.N {
				b.StopTimer()
				drop := b.TempDir()
				if err := os.Link(master, filepath.Join(drop, "penalties.csv")); err != nil {
					b.Fatal(err)
				}
				src, err := filedrop.New("penalties", filedrop.Config{Dir: drop, Pattern: "*.csv", SettleTime: time.Millisecond})
				if err != nil {
					b.Fatal(err)
				}
				r := &ingest.Runner{Name: "penalties", Source: src, Normalizer: norm, Store: discardStore{},
					BatchSize: bs, Workers: benchWorkers(b), Retry: backoff.Policy{MaxAttempts: 1}, Log: zap.NewNop()}
				b.StartTimer()
				start := time.Now()
				stats, err := r.Run(ctx)
				took += time.Since(start)
				b.StopTimer()
				src.Close(ctx)
				if err != nil || stats.Stored != rows {
					b.Fatalf("stored %d of %d rows: %v", stats.Stored, rows, err)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(rows)*float64(b.N)/took.Seconds(), "rows/s")
		})
	}
}

func benchNormalizer(b *testing.B) *normalize.Normalizer {
	m := normalize.Mapping{
		Kind: "admin_penalty",
		Fields: map[string]string{"doc_no": "wsh", "subject_name": "mc", "decision_date": "rq", "authority_name": "jg",
			"category": "lb", "facts": "ss", "legal_basis": "yj", "content": "nr", "fine_amount": "fk"},
		Constants: map[string]string{"subject_type": "agency", "region_code": "211100"},
	}
	norm, err := normalize.New("penalties", m, nil)
	if err != nil {
		b.Fatal(err)
	}
	return norm
}

// timedStore measures how long the runner waits on each store call.
type timedStore struct {
	ingest.Store
	write, latest, cursor time.Duration
}

func (t *timedStore) WriteBatch(ctx context.Context, b *store.Batch) error {
	start := time.Now()
	err := t.Store.WriteBatch(ctx, b)
	t.write += time.Since(start)
	return err
}

func (t *timedStore) LatestVersions(ctx context.Context, ids []string) (map[string]store.Latest, error) {
	start := time.Now()
	m, err := t.Store.LatestVersions(ctx, ids)
	t.latest += time.Since(start)
	return m, err
}

func (t *timedStore) SaveCursor(ctx context.Context, name, value string) error {
	start := time.Now()
	err := t.Store.SaveCursor(ctx, name, value)
	t.cursor += time.Since(start)
	return err
}

// BenchmarkIngestFile pulls a generated CSV through the filedrop connector,
// the normalizer and the real ClickHouse store (a fresh database per
// iteration), and compares its rate with clickhouse-client inserting the
// same stored records in Native format into a copy of the records table, in
// the same run: x-native against one block (DESIGN.md §6: ingest ≥ 0.7 ×
// Native), x-native-batched against blocks of the batch size (the records
// table alone, with as many parts as the ingest makes). write-s, latest-s
// and cursor-s are the time the runner waited on the store.
//
//	go test -run '^$' -bench IngestFile -benchtime 1x ./internal/ingest/
func BenchmarkIngestFile(b *testing.B) {
	rows, batches := benchEnv(b)
	master, size := benchCSV(b, rows)
	b.Logf("%d rows, %.1f MB", rows, float64(size)/1e6)
	for _, bs := range batches {
		b.Run(fmt.Sprintf("batch=%d", bs), func(b *testing.B) { benchIngest(b, master, size, rows, bs) })
	}
}

func benchIngest(b *testing.B, master string, size int64, rows, batchSize int) {
	norm := benchNormalizer(b)
	ctx := context.Background()
	var last *store.Store
	var ingestTime, write, latest, cursor time.Duration
	b.SetBytes(size)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		st := storetest.New(b)
		last = st
		drop := b.TempDir()
		if err := os.Link(master, filepath.Join(drop, "penalties.csv")); err != nil {
			b.Fatal(err)
		}
		src, err := filedrop.New("penalties", filedrop.Config{Dir: drop, Pattern: "*.csv", SettleTime: time.Millisecond})
		if err != nil {
			b.Fatal(err)
		}
		waitNoMerges(b, st)
		ts := &timedStore{Store: st}
		r := &ingest.Runner{Name: "penalties", Source: src, Normalizer: norm, Store: ts,
			BatchSize: batchSize, Workers: benchWorkers(b), Retry: backoff.Policy{MaxAttempts: 1}, Log: zap.NewNop()}
		b.StartTimer()
		start := time.Now()
		stats, err := r.Run(ctx)
		ingestTime += time.Since(start)
		b.StopTimer()
		src.Close(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if stats.Stored != rows {
			b.Fatalf("stored %d of %d rows (%+v)", stats.Stored, rows, stats)
		}
		write, latest, cursor = write+ts.write, latest+ts.latest, cursor+ts.cursor
		b.StartTimer()
	}
	b.StopTimer()
	n := float64(b.N)
	rate := float64(rows) * n / ingestTime.Seconds()
	b.ReportMetric(rate, "rows/s")
	b.ReportMetric(write.Seconds()/n, "write-s/op")
	b.ReportMetric(latest.Seconds()/n, "latest-s/op")
	b.ReportMetric(cursor.Seconds()/n, "cursor-s/op")
	if native, batched, ok := nativeRates(b, last, rows, batchSize); ok {
		b.ReportMetric(native, "native-rows/s")
		b.ReportMetric(rate/native, "x-native")
		b.ReportMetric(rate/batched, "x-native-batched")
	}
}

// waitNoMerges waits (up to 20 s) for the server to finish background
// merges left by earlier runs, which would otherwise compete for the CPU.
func waitNoMerges(b *testing.B, st *store.Store) {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		var n uint64
		if err := st.Conn().QueryRow(context.Background(), "SELECT count() FROM system.merges").Scan(&n); err != nil {
			b.Fatal(err)
		}
		if n == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// nativeRates are the rows/s of clickhouse-client inserting the records
// the last iteration stored, exported in Native format, into empty copies of
// the records table, each the median of three inserts: single as one block
// (one part, the DESIGN.md §6 baseline), batched in blocks of batchSize
// without squashing (one part per block, as many parts as the ingest makes
// in records). ok is false without clickhouse-client.
func nativeRates(b *testing.B, st *store.Store, rows, batchSize int) (single, batched float64, ok bool) {
	client, err := exec.LookPath("clickhouse-client")
	if err != nil {
		b.Logf("no clickhouse-client on PATH: Native baseline not measured")
		return 0, 0, false
	}
	host, port, err := net.SplitHostPort(storetest.Addr())
	if err != nil {
		b.Fatal(err)
	}
	run := func(stdin, stdout *os.File, query string, settings ...string) {
		args := append([]string{"--host", host, "--port", port}, settings...)
		cmd := exec.Command(client, append(args, "--query", query)...)
		cmd.Stdin, cmd.Stdout = stdin, stdout
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			b.Fatalf("clickhouse-client %q: %v: %s", query, err, stderr.String())
		}
	}
	db := "`" + st.Database() + "`"
	export := func(name string, settings ...string) string {
		file := filepath.Join(b.TempDir(), name)
		out, err := os.Create(file)
		if err != nil {
			b.Fatal(err)
		}
		run(nil, out, "SELECT * FROM "+db+".records FORMAT Native", settings...)
		out.Close()
		return file
	}
	oneBlock := export("records.native")
	blocks := export("records-batched.native", "--max_block_size="+strconv.Itoa(batchSize))
	// Copies are dropped only at the end: deleting a part's files right
	// before an insert slows the next file creations on ext4.
	var tables []string
	defer func() {
		for _, t := range tables {
			run(nil, nil, "DROP TABLE "+t)
		}
	}()
	measure := func(what, file string, settings ...string) float64 {
		var took []time.Duration
		for range 3 {
			table := fmt.Sprintf("%s.native_copy_%d", db, len(tables))
			tables = append(tables, table)
			run(nil, nil, "CREATE TABLE "+table+" AS "+db+".records")
			waitNoMerges(b, st)
			in, err := os.Open(file)
			if err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			run(in, nil, "INSERT INTO "+table+" FORMAT Native", settings...)
			took = append(took, time.Since(start))
			in.Close()
		}
		var parts uint64
		if err := st.Conn().QueryRow(context.Background(), "SELECT count() FROM system.parts WHERE database = ? AND table = ?",
			st.Database(), strings.TrimPrefix(tables[len(tables)-1], db+".")).Scan(&parts); err != nil {
			b.Fatal(err)
		}
		slices.Sort(took)
		b.Logf("clickhouse-client Native insert of %d rows %s (%d parts): %v (median of %v)", rows, what, parts, took[1], took)
		return float64(rows) / took[1].Seconds()
	}
	single = measure("as one block", oneBlock)
	batched = measure(fmt.Sprintf("in blocks of %d", batchSize), blocks,
		"--min_insert_block_size_rows=0", "--min_insert_block_size_bytes=0")
	return single, batched, true
}
