package filex_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/emmansun/gmsm/sm3"
	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/panjin-gov/syncd/internal/push"
	"github.com/panjin-gov/syncd/internal/push/filex"
	"github.com/panjin-gov/syncd/internal/record"
	"github.com/panjin-gov/syncd/internal/store"
)

func item(id string, v uint64, op store.Op, data map[string]any) push.Item {
	return push.Item{Key: push.Key(id, v), Op: op, Record: &record.Record{RecordID: id, Version: v}, Data: data}
}

func data(doc, name string) map[string]any {
	return map[string]any{
		"CF_WSH": doc, "CF_XDR_MC": name, "CF_XDR_LB": "法人及非法人组织", "CF_JDRQ": "2024-03-05",
		"CF_CFJG": "盘锦市综合行政执法局", "CF_NR_FK": "3.5", "BZ": `含"引号",和逗号`,
	}
}

func newTarget(t *testing.T, cfg filex.Config) *filex.Target {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	if cfg.ReceiptTimeout == 0 {
		cfg.ReceiptTimeout = 5 * time.Second
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 5 * time.Millisecond
	}
	tg, err := filex.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

// seenBatch is what the test platform read of one batch.
type seenBatch struct {
	manifest filex.Manifest
	raw      []byte              // the batch file's bytes
	lines    []map[string]string // decoded lines, values as text
}

// platform acts as the receiving platform in a goroutine: it waits for
// manifests in dir, checks the batch file against them independently, and
// writes the receipt answer(batch) returns. It stops with the test.
func platform(t *testing.T, dir, receipts string, answer func(seenBatch) any) chan seenBatch {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	seen := make(chan seenBatch, 16)
	done := map[string]bool{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			ms, _ := filepath.Glob(filepath.Join(dir, "*"+filex.ManifestSuffix))
			for _, mp := range ms {
				if done[mp] {
					continue
				}
				done[mp] = true
				b, err := os.ReadFile(mp)
				if err != nil {
					t.Errorf("read manifest: %v", err)
					continue
				}
				var sb seenBatch
				if err := json.Unmarshal(b, &sb.manifest); err != nil {
					t.Errorf("manifest %s: %v", b, err)
					continue
				}
				sb.raw, err = os.ReadFile(filepath.Join(dir, sb.manifest.File))
				if err != nil {
					t.Errorf("batch file named by the manifest: %v", err)
					continue
				}
				sb.lines = decode(t, sb.raw, sb.manifest.Format, sb.manifest.Encoding)
				seen <- sb
				body, _ := json.Marshal(answer(sb))
				name := strings.TrimSuffix(filepath.Base(mp), filex.ManifestSuffix) + filex.ReceiptSuffix
				os.MkdirAll(receipts, 0o755)
				os.WriteFile(filepath.Join(receipts, "."+name), body, 0o644)
				os.Rename(filepath.Join(receipts, "."+name), filepath.Join(receipts, name))
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	return seen
}

// decode reads a batch file as the platform would, values as text.
func decode(t *testing.T, raw []byte, format, enc string) []map[string]string {
	t.Helper()
	text := raw
	if enc == filex.EncodingGBK {
		var err error
		if text, err = simplifiedchinese.GBK.NewDecoder().Bytes(raw); err != nil {
			t.Fatalf("not GBK: %v", err)
		}
	}
	var out []map[string]string
	if format == filex.FormatCSV {
		rows, err := csv.NewReader(bytes.NewReader(text)).ReadAll()
		if err != nil {
			t.Fatalf("CSV: %v", err)
		}
		for _, r := range rows[1:] {
			m := map[string]string{}
			for i, h := range rows[0] {
				if r[i] != "" {
					m[h] = r[i]
				}
			}
			out = append(out, m)
		}
		return out
	}
	for _, ln := range bytes.Split(bytes.TrimSuffix(text, []byte("\n")), []byte("\n")) {
		var m map[string]string
		if err := json.Unmarshal(ln, &m); err != nil {
			t.Fatalf("JSONL line %s: %v", ln, err)
		}
		out = append(out, m)
	}
	return out
}

type wireReceipt struct {
	Key     string `json:"key"`
	Status  string `json:"status"`
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

func acceptAll(sb seenBatch) any {
	var rs []wireReceipt
	for _, l := range sb.lines {
		rs = append(rs, wireReceipt{Key: l["key"], Status: "accepted"})
	}
	return map[string]any{"batch_id": sb.manifest.BatchID, "receipts": rs}
}

func TestJSONLBatchManifestAndChecksums(t *testing.T) {
	dir := t.TempDir()
	tg := newTarget(t, filex.Config{Dir: dir, FilePrefix: "PJ211100_"})
	seen := platform(t, dir, filepath.Join(dir, "receipts"), acceptAll)
	items := []push.Item{
		item("r1", 1, store.OpAdd, data("盘综执罚〔2024〕11号", "盘锦市兴隆台区住房和城乡建设局")),
		item("r2", 4, store.OpUpdate, data("盘环罚[2024]4号", "盘锦市大洼区水利局")),
		item("r3", 2, store.OpWithdraw, nil),
	}
	rs, err := tg.Send(context.Background(), "20260101T101010-ab12", items)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 3 {
		t.Fatalf("receipts %+v", rs)
	}
	for _, r := range rs {
		if !r.Accepted {
			t.Errorf("receipt %+v", r)
		}
	}
	sb := <-seen
	m := sb.manifest
	if m.BatchID != "20260101T101010-ab12" || m.File != "PJ211100_20260101T101010-ab12.jsonl" || m.RecordCount != 3 ||
		m.Format != "jsonl" || m.Encoding != "utf-8" || time.Since(m.CreatedAt) > time.Minute {
		t.Errorf("manifest %+v", m)
	}
	// Checksums of the bytes on disk, computed here, not by the target.
	disk, err := os.ReadFile(filepath.Join(dir, m.File))
	if err != nil {
		t.Fatal(err)
	}
	s256, s3 := sha256.Sum256(disk), sm3.Sum(disk)
	if m.ByteSize != int64(len(disk)) || m.SHA256 != hex.EncodeToString(s256[:]) || m.SM3 != hex.EncodeToString(s3[:]) {
		t.Errorf("manifest sums %d %s %s, file %d %x %x", m.ByteSize, m.SHA256, m.SM3, len(disk), s256, s3)
	}
	first := `{"op":"add","key":"r1:1","BZ":"含\"引号\",和逗号","CF_CFJG":"盘锦市综合行政执法局","CF_JDRQ":"2024-03-05","CF_NR_FK":"3.5","CF_WSH":"盘综执罚〔2024〕11号","CF_XDR_LB":"法人及非法人组织","CF_XDR_MC":"盘锦市兴隆台区住房和城乡建设局"}`
	if got, _, _ := strings.Cut(string(disk), "\n"); got != first {
		t.Errorf("first line\n got %s\nwant %s", got, first)
	}
	if sb.lines[2]["op"] != "withdraw" || len(sb.lines[2]) != 2 {
		t.Errorf("withdraw line %v", sb.lines[2])
	}
	// The receipt was read and archived.
	if _, err := os.Stat(filepath.Join(dir, "receipts", "done", "PJ211100_20260101T101010-ab12.receipt.json")); err != nil {
		t.Error(err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "receipts", "*.json")); len(left) > 0 {
		t.Errorf("receipts left: %v", left)
	}
	if tmp, _ := filepath.Glob(filepath.Join(dir, ".*")); len(tmp) > 0 {
		t.Errorf("temp files left: %v", tmp)
	}
}

func TestCSVGBKRoundTripAndHalfRejected(t *testing.T) {
	dir, rdir := t.TempDir(), t.TempDir()
	cols := []string{"CF_WSH", "CF_XDR_MC", "CF_NR_FK", "BZ"}
	tg := newTarget(t, filex.Config{Dir: dir, ReceiptsDir: rdir, Format: "csv", Encoding: "GBK", Columns: cols})
	seen := platform(t, dir, rdir, func(sb seenBatch) any {
		var rs []wireReceipt
		for i, l := range sb.lines {
			if i%2 == 1 {
				rs = append(rs, wireReceipt{Key: l["key"], Status: "rejected", Code: "E103", Message: "统一社会信用代码校验失败"})
			} else {
				rs = append(rs, wireReceipt{Key: l["key"], Status: "accepted"})
			}
		}
		return map[string]any{"receipts": rs}
	})
	var items []push.Item
	for i, name := range []string{"盘锦市教育局", "盘山县交通运输局", "盘锦市双台子区人民政府", "盘锦某米业有限公司"} {
		items = append(items, item(string(rune('a'+i)), 1, store.OpAdd, data("盘综执罚〔2024〕1"+string(rune('0'+i))+"号", name)))
	}
	emoji := item("z", 1, store.OpAdd, data("盘综执罚〔2024〕99号", "盘锦某餐饮😀有限公司"))
	items = append(items[:2], append([]push.Item{emoji}, items[2:]...)...)

	rs, err := tg.Send(context.Background(), "b-gbk", items)
	if err != nil {
		t.Fatal(err)
	}
	byKey := map[string]push.Receipt{}
	for _, r := range rs {
		byKey[r.Key] = r
	}
	if len(rs) != 5 || byKey["z:1"].Code != filex.CodeLocalEncoding || byKey["z:1"].Accepted {
		t.Fatalf("receipts %+v", rs)
	}
	accepted := 0
	for _, k := range []string{"a:1", "b:1", "c:1", "d:1"} {
		if byKey[k].Accepted {
			accepted++
		} else if byKey[k].Code != "E103" || byKey[k].Message != "统一社会信用代码校验失败" {
			t.Errorf("%s: %+v", k, byKey[k])
		}
	}
	if accepted != 2 {
		t.Errorf("%d accepted, want 2", accepted)
	}
	sb := <-seen
	if utf8.Valid(sb.raw) {
		t.Error("batch file is valid UTF-8, want GBK")
	}
	if sb.manifest.RecordCount != 4 || sb.manifest.Encoding != "gbk" || strings.Join(sb.manifest.Columns, ",") != strings.Join(cols, ",") {
		t.Errorf("manifest %+v", sb.manifest)
	}
	header, _, _ := strings.Cut(string(sb.raw), "\n")
	if header != "op,key,CF_WSH,CF_XDR_MC,CF_NR_FK,BZ" {
		t.Errorf("header %q", header)
	}
	want := map[string]string{"op": "add", "key": "c:1", "CF_WSH": "盘综执罚〔2024〕12号", "CF_XDR_MC": "盘锦市双台子区人民政府", "CF_NR_FK": "3.5", "BZ": `含"引号",和逗号`}
	if got := sb.lines[2]; len(got) != len(want) {
		t.Errorf("line 3 %v, want %v", got, want)
	} else {
		for k, v := range want {
			if got[k] != v {
				t.Errorf("line 3 %s = %q, want %q", k, got[k], v)
			}
		}
	}
}

func TestTimeoutThenIdempotentResend(t *testing.T) {
	dir := t.TempDir()
	tg := newTarget(t, filex.Config{Dir: dir, LateReceipts: filex.LateRetry, ReceiptTimeout: 60 * time.Millisecond})
	items := []push.Item{item("r1", 1, store.OpAdd, data("盘综执罚〔2024〕11号", "盘锦市教育局")), item("r2", 1, store.OpAdd, data("盘综执罚〔2024〕12号", "盘山县交通运输局"))}
	_, err := tg.Send(context.Background(), "b1", items)
	if !errors.Is(err, filex.ErrNoReceipt) || errors.Is(err, push.ErrPermanent) {
		t.Fatalf("want a transient no-receipt error, got %v", err)
	}
	mpath, bpath := filepath.Join(dir, "b1.manifest.json"), filepath.Join(dir, "b1.jsonl")
	m1, err1 := os.Stat(mpath)
	b1, err2 := os.Stat(bpath)
	if err1 != nil || err2 != nil {
		t.Fatal("batch not left in place after the timeout", err1, err2)
	}

	// Again, still nobody answers: nothing is rewritten.
	if _, err := tg.Send(context.Background(), "b1", items); !errors.Is(err, filex.ErrNoReceipt) {
		t.Fatal(err)
	}
	m2, _ := os.Stat(mpath)
	b2, _ := os.Stat(bpath)
	if !os.SameFile(m1, m2) || !os.SameFile(b1, b2) || !m1.ModTime().Equal(m2.ModTime()) {
		t.Error("re-send rewrote a complete batch")
	}

	// The platform answers late; the next re-send takes the receipt.
	os.MkdirAll(filepath.Join(dir, "receipts"), 0o755)
	os.WriteFile(filepath.Join(dir, "receipts", "b1.receipt.json"),
		[]byte(`{"batch_id":"b1","receipts":[{"key":"r1:1","status":"accepted"},{"key":"r2:1","status":"rejected","code":"E101","message":"缺少必填字段"}]}`), 0o644)
	for range 2 { // the second time from receipts/done
		rs, err := tg.Send(context.Background(), "b1", items)
		if err != nil || len(rs) != 2 || !rs[0].Accepted || rs[1].Accepted || rs[1].Code != "E101" {
			t.Fatalf("receipts %+v, %v", rs, err)
		}
		if _, err := os.Stat(filepath.Join(dir, "receipts", "done", "b1.receipt.json")); err != nil {
			t.Fatal(err)
		}
	}

	// A cancelled context ends the wait with the context's error.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := tg.Send(ctx, "b2", items); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

func TestPermanentAndRefused(t *testing.T) {
	dir := t.TempDir()
	tg := newTarget(t, filex.Config{Dir: dir, ReceiptTimeout: 30 * time.Millisecond})
	items := []push.Item{item("r1", 1, store.OpAdd, data("盘综执罚〔2024〕11号", "盘锦市教育局"))}
	for _, id := range []string{"../x", ".hidden", "a/b", ""} {
		if _, err := tg.Send(context.Background(), id, items); !errors.Is(err, push.ErrPermanent) {
			t.Errorf("batch id %q: %v", id, err)
		}
	}
	tg.Send(context.Background(), "b1", items)
	other := []push.Item{item("r1", 2, store.OpUpdate, data("盘综执罚〔2024〕11号", "盘锦市教育局"))}
	if _, err := tg.Send(context.Background(), "b1", other); !errors.Is(err, push.ErrPermanent) {
		t.Errorf("same batch id, other content: %v", err)
	}

	os.MkdirAll(filepath.Join(dir, "receipts"), 0o755)
	os.WriteFile(filepath.Join(dir, "receipts", "b1.receipt.json"), []byte(`{"receipts":[],"error":{"code":"E300","message":"清单文件无法读取"}}`), 0o644)
	_, err := tg.Send(context.Background(), "b1", items)
	if !errors.Is(err, filex.ErrRefused) || errors.Is(err, push.ErrPermanent) || !strings.Contains(err.Error(), "E300") {
		t.Errorf("refused batch: %v", err)
	}

	// A field named like the batch file's own columns is rejected here.
	bad := []push.Item{item("r9", 1, store.OpAdd, map[string]any{"key": "x"})}
	rs, err := tg.Send(context.Background(), "b9", bad)
	if err != nil || len(rs) != 1 || rs[0].Code != filex.CodeLocalLayout {
		t.Errorf("layout clash: %+v, %v", rs, err)
	}
}

func TestReceiptFieldNames(t *testing.T) {
	dir := t.TempDir()
	tg := newTarget(t, filex.Config{Dir: dir, Receipt: filex.ReceiptShape{
		ReceiptShape: push.ReceiptShape{ItemsPath: "result.data", KeyField: "ywbh", StatusField: "zt", CodeField: "cwdm",
			MessageField: "cwxx", AcceptedValues: []string{"1", "成功"}},
		BatchIDField: "pch",
	}})
	platform(t, dir, filepath.Join(dir, "receipts"), func(sb seenBatch) any {
		return map[string]any{"pch": sb.manifest.BatchID, "result": map[string]any{"data": []map[string]any{
			{"ywbh": sb.lines[0]["key"], "zt": 1},
			{"ywbh": sb.lines[1]["key"], "zt": "成功"},
			{"ywbh": sb.lines[2]["key"], "zt": 0, "cwdm": "未关联数据", "cwxx": "未找到主体"},
		}}}
	})
	items := []push.Item{item("a", 1, store.OpAdd, data("1", "x")), item("b", 1, store.OpAdd, data("2", "y")), item("c", 1, store.OpAdd, data("3", "z"))}
	rs, err := tg.Send(context.Background(), "b1", items)
	if err != nil || len(rs) != 3 || !rs[0].Accepted || !rs[1].Accepted || rs[2].Accepted || rs[2].Code != "未关联数据" {
		t.Fatalf("%+v %v", rs, err)
	}
}

func TestConfig(t *testing.T) {
	var c filex.Config
	c.Dir = "/x"
	c.SetDefaults()
	if c.ReceiptsDir != "/x/receipts" || c.Format != "jsonl" || c.Encoding != "utf-8" || c.ReceiptTimeout != 2*time.Minute ||
		c.PollInterval != time.Second || c.Receipt.ItemsPath != "receipts" || c.Receipt.AcceptedValues[0] != "accepted" {
		t.Errorf("defaults %+v", c)
	}
	for _, tc := range []struct {
		mod  func(*filex.Config)
		want string
	}{
		{func(c *filex.Config) { c.Dir = "" }, "dir: required"},
		{func(c *filex.Config) { c.Format = "xml" }, `format: "xml" not one of jsonl, csv`},
		{func(c *filex.Config) { c.Encoding = "big5" }, `encoding: "big5" not one of utf-8, gbk, gb18030`},
		{func(c *filex.Config) { c.Columns = []string{"A", "key"} }, `columns[1]: "key" is the batch file's own column`},
		{func(c *filex.Config) { c.Columns = []string{"A", "A"} }, `columns[1]: "A" appears twice`},
		{func(c *filex.Config) { c.FilePrefix = "../" }, `file_prefix: "../" must be`},
		{func(c *filex.Config) { c.ReceiptTimeout = -1 }, "receipt_timeout: must be positive"},
		{func(c *filex.Config) { c.PollInterval = -1 }, "poll_interval: must be positive"},
		{func(c *filex.Config) { c.Receipt.ItemsPath = "a..b" }, `receipt.items_path: "a..b" has an empty segment`},
	} {
		c := filex.Config{Dir: "/x"}
		c.SetDefaults()
		tc.mod(&c)
		err := c.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("got %v, want %q", err, tc.want)
		}
	}
}

// Rendering, hashing and syncing a 1000-item batch: the receipt is there
// already, so Send writes the temp file and stops.
func BenchmarkRender1000(b *testing.B) {
	for _, c := range []struct{ format, enc string }{{"jsonl", "utf-8"}, {"csv", "gbk"}} {
		b.Run(c.format+"-"+c.enc, func(b *testing.B) {
			dir := b.TempDir()
			tg, err := filex.New(filex.Config{Dir: dir, Format: c.format, Encoding: c.enc})
			if err != nil {
				b.Fatal(err)
			}
			items := make([]push.Item, 1000)
			for i := range items {
				items[i] = item("r"+strings.Repeat("0", 30)+string(rune('a'+i%26)), uint64(i), store.OpAdd, data("盘综执罚〔2024〕11号", "盘锦市兴隆台区住房和城乡建设局"))
			}
			os.MkdirAll(filepath.Join(dir, "receipts"), 0o755)
			os.WriteFile(filepath.Join(dir, "receipts", "b1.receipt.json"), []byte(`{"receipts":[]}`), 0o644)
			b.ResetTimer()
			for range b.N {
				if _, err := tg.Send(context.Background(), "b1", items); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
