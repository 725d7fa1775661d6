package filedrop_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/panjin-gov/syncd/internal/connectors"
	"github.com/panjin-gov/syncd/internal/connectors/conformance"
	"github.com/panjin-gov/syncd/internal/connectors/filedrop"
	"github.com/panjin-gov/syncd/internal/record"
)

var seq atomic.Int64

func sum16(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:8])
}

// drop writes content to dir/name the way a bureau's uploader should: a
// temp name, then a rename. The mtime is set in the past so it is settled.
func drop(t *testing.T, dir, name string, content []byte) {
	t.Helper()
	tmp := filepath.Join(dir, name+".part")
	if err := os.WriteFile(tmp, content, 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour).Add(time.Duration(seq.Add(1)) * time.Millisecond)
	if err := os.Chtimes(tmp, old, old); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

func penaltyCSV(n int) []byte {
	var b bytes.Buffer
	b.WriteString("处罚决定书文号,行政相对人名称,罚款金额（万元）\n")
	id := seq.Add(1)
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "盘罚〔2026〕%d-%d号,某某有限公司%d,%d.5\n", id, i, i, i%100)
	}
	return b.Bytes()
}

func open(t *testing.T, dir string) *filedrop.Source {
	t.Helper()
	s, err := filedrop.New("penalties", filedrop.Config{Dir: dir, SettleTime: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	dir := t.TempDir()
	conformance.Run(t, conformance.Harness{
		Reset: func(t *testing.T) {
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
					t.Fatal(err)
				}
			}
		},
		Open: func(t *testing.T) connectors.Source { return open(t, dir) },
		Produce: func(t *testing.T, n int) []string {
			content := penaltyCSV(n)
			drop(t, dir, fmt.Sprintf("penalties-%06d.csv", seq.Add(1)), content)
			sum := sum16(content)
			keys := make([]string, n)
			for i := range keys {
				keys[i] = fmt.Sprintf("%s:%d", sum, i+1)
			}
			return keys
		},
	})
}

// drainAll reads and commits until caught up, as the runner does.
func drainAll(t *testing.T, s *filedrop.Source, cur string, max int) ([]record.Raw, string) {
	t.Helper()
	var out []record.Raw
	for range 100000 {
		b, err := s.Fetch(context.Background(), cur, max)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b.Records...)
		if err := s.Commit(context.Background(), b); err != nil {
			t.Fatal(err)
		}
		if len(b.Records) > 0 || b.Token != nil {
			cur = b.Next
		}
		if !b.More && len(b.Records) == 0 {
			return out, cur
		}
	}
	t.Fatal("never caught up")
	return nil, ""
}

func payload(t *testing.T, r record.Raw) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Payload, &m); err != nil {
		t.Fatalf("payload %s: %v", r.Payload, err)
	}
	return m
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func TestGBKFixture(t *testing.T) {
	for _, enc := range []string{"auto", "gbk", "gb18030"} {
		t.Run(enc, func(t *testing.T) {
			dir := t.TempDir()
			content, err := os.ReadFile("testdata/penalties_gbk.csv")
			if err != nil {
				t.Fatal(err)
			}
			drop(t, dir, "penalties_gbk.csv", content)
			s, err := filedrop.New("p", filedrop.Config{Dir: dir, Encoding: enc})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close(context.Background())
			recs, _ := drainAll(t, s, "", 10)
			if len(recs) != 2 {
				t.Fatalf("%d records", len(recs))
			}
			m := payload(t, recs[0])
			if m["处罚决定书文号"] != "盘环罚〔2026〕12号" || m["行政相对人名称"] != "盘锦市某化工有限公司" || m["罚款金额（万元）"] != "3.5" {
				t.Fatalf("decoded %s", recs[0].Payload)
			}
			if recs[0].Encoding != "utf-8" || recs[0].Problem != "" || recs[0].Key != sum16(content)+":1" {
				t.Fatalf("record %+v", recs[0])
			}
			// Column order is the file's.
			if !strings.HasPrefix(string(recs[1].Payload), `{"处罚决定书文号":"盘市监罚〔2026〕7号"`) {
				t.Fatalf("payload %s", recs[1].Payload)
			}
		})
	}
}

func TestUTF8BOM(t *testing.T) {
	dir := t.TempDir()
	drop(t, dir, "bom.csv", append([]byte("\xef\xbb\xbf"), "处罚决定书文号,罚款金额（万元）\r\n甲罚〔2026〕1号,1\r\n"...))
	s := open(t, dir)
	defer s.Close(context.Background())
	recs, _ := drainAll(t, s, "", 10)
	if len(recs) != 1 || payload(t, recs[0])["处罚决定书文号"] != "甲罚〔2026〕1号" {
		t.Fatalf("records %v", recs)
	}
}

func TestBadRowsArePassedOnWithAProblem(t *testing.T) {
	dir := t.TempDir()
	drop(t, dir, "a.jsonl", []byte(`{"处罚决定书文号":"a1"}
["not","an","object"]

{"处罚决定书文号":"a2"}
{truncated
`))
	drop(t, dir, "b.csv", []byte("h1,h2\nx,y\nonly-one\nx,y,z\n\"bad\"quote,1\nlast,row\n"))
	s := open(t, dir)
	defer s.Close(context.Background())
	recs, _ := drainAll(t, s, "", 2)
	var problems, good []string
	for _, r := range recs {
		if r.Problem != "" {
			problems = append(problems, r.Key)
		} else {
			good = append(good, string(r.Payload))
		}
	}
	if len(recs) != 9 || len(problems) != 5 {
		t.Fatalf("%d records, problems %v, good %v", len(recs), problems, good)
	}
	if good[0] != `{"处罚决定书文号":"a1"}` || good[3] != `{"h1":"last","h2":"row"}` {
		t.Fatalf("good %v", good)
	}
	if n := len(names(t, filepath.Join(dir, "done"))); n != 2 {
		t.Fatalf("%d files done, want 2 (a bad row never sticks a file)", n)
	}
}

func TestXLSX(t *testing.T) {
	dir := t.TempDir()
	f := excelize.NewFile()
	sheet := f.GetSheetName(0)
	rows := [][]any{
		{"处罚决定书文号", "行政相对人名称", "罚款金额（万元）"},
		{"盘环罚〔2026〕1号", "某公司", 2.5},
		{"盘环罚〔2026〕2号", "某个体户"}, // trailing cell left empty
	}
	for i, r := range rows {
		cell, _ := excelize.CoordinatesToCellName(1, i+1)
		if err := f.SetSheetRow(sheet, cell, &r); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := f.Write(&buf); err != nil {
		t.Fatal(err)
	}
	drop(t, dir, "penalties.xlsx", buf.Bytes())
	s := open(t, dir)
	defer s.Close(context.Background())
	recs, _ := drainAll(t, s, "", 10)
	if len(recs) != 2 {
		t.Fatalf("%d records", len(recs))
	}
	if m := payload(t, recs[0]); m["罚款金额（万元）"] != "2.5" || m["行政相对人名称"] != "某公司" {
		t.Fatalf("row 1 %s", recs[0].Payload)
	}
	if m := payload(t, recs[1]); m["罚款金额（万元）"] != "" || recs[1].Problem != "" {
		t.Fatalf("row 2 %s %q", recs[1].Payload, recs[1].Problem)
	}
}

func TestHalfWrittenFileWaits(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "growing.csv"), []byte("h1,h2\nx,"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, ".hidden.csv"), []byte("h\n1\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "upload.csv.tmp"), []byte("h\n1\n"), 0o644)
	s, err := filedrop.New("p", filedrop.Config{Dir: dir, SettleTime: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Fetch(context.Background(), "", 10)
	if err != nil || len(b.Records) != 0 || b.More {
		t.Fatalf("unsettled file read: %d records, more %v, %v", len(b.Records), b.More, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "growing.csv")); err != nil {
		t.Fatalf("unsettled file claimed: %v", err)
	}
	s.Close(context.Background())

	// Finished and settled: read whole.
	os.WriteFile(filepath.Join(dir, "growing.csv"), []byte("h1,h2\nx,y\n"), 0o644)
	old := time.Now().Add(-2 * time.Hour)
	os.Chtimes(filepath.Join(dir, "growing.csv"), old, old)
	os.Chtimes(filepath.Join(dir, ".hidden.csv"), old, old)
	os.Chtimes(filepath.Join(dir, "upload.csv.tmp"), old, old)
	s, _ = filedrop.New("p", filedrop.Config{Dir: dir, SettleTime: time.Hour})
	defer s.Close(context.Background())
	recs, _ := drainAll(t, s, "", 10)
	if len(recs) != 1 || string(recs[0].Payload) != `{"h1":"x","h2":"y"}` {
		t.Fatalf("records %v", recs)
	}
	if _, err := os.Stat(filepath.Join(dir, ".hidden.csv")); err != nil {
		t.Fatal("hidden file claimed")
	}
}

func TestRedroppedFileIsNotIngestedTwice(t *testing.T) {
	dir := t.TempDir()
	content := penaltyCSV(5)
	drop(t, dir, "monday.csv", content)
	s := open(t, dir)
	recs, _ := drainAll(t, s, "", 3)
	s.Close(context.Background())
	if len(recs) != 5 {
		t.Fatalf("%d records", len(recs))
	}
	// Same bytes, another name, another process.
	drop(t, dir, "monday-resent.csv", content)
	s = open(t, dir)
	defer s.Close(context.Background())
	recs, _ = drainAll(t, s, "", 3)
	if len(recs) != 0 || s.Duplicates() != 1 {
		t.Fatalf("re-dropped file gave %d records, %d duplicates", len(recs), s.Duplicates())
	}
	done := names(t, filepath.Join(dir, "done"))
	if len(done) != 2 || !strings.Contains(strings.Join(done, " "), sum16(content)) {
		t.Fatalf("done/ holds %v", done)
	}
	if left := names(t, filepath.Join(dir, "processing")); len(left) != 0 {
		t.Fatalf("processing/ holds %v", left)
	}
}

func TestUnreadableFilesGoToFailed(t *testing.T) {
	dir := t.TempDir()
	drop(t, dir, "broken.xlsx", []byte("this is not a zip"))
	drop(t, dir, "empty.csv", nil)
	drop(t, dir, "notes.docx", []byte("x"))
	drop(t, dir, "good.csv", []byte("h\n1\n"))
	s := open(t, dir)
	defer s.Close(context.Background())
	recs, _ := drainAll(t, s, "", 10)
	if len(recs) != 1 {
		t.Fatalf("%d records", len(recs))
	}
	for name, why := range map[string]string{"broken.xlsx": "XLSX", "empty.csv": "no header", "notes.docx": "unsupported"} {
		reason, err := os.ReadFile(filepath.Join(dir, "failed", name+".reason.txt"))
		if err != nil || !strings.Contains(string(reason), why) {
			t.Errorf("%s: reason %q, %v", name, reason, err)
		}
		if _, err := os.Stat(filepath.Join(dir, "failed", name)); err != nil {
			t.Errorf("%s not in failed/: %v", name, err)
		}
	}
}

// A process killed mid-file leaves it in processing/; the next one resumes
// at the saved cursor, and re-reads everything if the cursor is for another
// file.
func TestResumeMidFile(t *testing.T) {
	dir := t.TempDir()
	content := penaltyCSV(25)
	drop(t, dir, "big.csv", content)
	s := open(t, dir)
	b, err := s.Fetch(context.Background(), "", 10)
	if err != nil || len(b.Records) != 10 {
		t.Fatalf("%d, %v", len(b.Records), err)
	}
	saved := b.Next
	if want := fmt.Sprintf(`{"file":"%s","row":10}`, sum16(content)); saved != want {
		t.Fatalf("cursor %s, want %s", saved, want)
	}
	if _, err := s.Fetch(context.Background(), saved, 10); err != nil { // never stored
		t.Fatal(err)
	}
	s.Close(context.Background()) // kill

	s = open(t, dir)
	recs, _ := drainAll(t, s, saved, 10)
	s.Close(context.Background())
	if len(recs) != 15 || recs[0].Key != sum16(content)+":11" || recs[14].Key != sum16(content)+":25" {
		t.Fatalf("resumed %d records from %s", len(recs), recs[0].Key)
	}

	// A cursor for some other file: the file is read from the start.
	content2 := penaltyCSV(4)
	drop(t, dir, "next.csv", content2)
	s = open(t, dir)
	if _, err := s.Fetch(context.Background(), "", 2); err != nil {
		t.Fatal(err)
	}
	s.Close(context.Background())
	s = open(t, dir)
	defer s.Close(context.Background())
	recs, _ = drainAll(t, s, `{"file":"0000000000000000","row":3}`, 10)
	if len(recs) != 4 || recs[0].Key != sum16(content2)+":1" {
		t.Fatalf("%d records", len(recs))
	}
}

// The runner asks again from an older cursor when a batch failed to store.
func TestRefetchFromOlderCursor(t *testing.T) {
	dir := t.TempDir()
	content := penaltyCSV(7)
	drop(t, dir, "f.csv", content)
	s := open(t, dir)
	defer s.Close(context.Background())
	b1, _ := s.Fetch(context.Background(), "", 3)
	b2, _ := s.Fetch(context.Background(), b1.Next, 3)
	again, err := s.Fetch(context.Background(), b1.Next, 3)
	if err != nil || again.Records[0].Key != b2.Records[0].Key {
		t.Fatalf("refetch gave %v, %v", again.Records, err)
	}
}

func TestLargeCSVHeapIsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("large file")
	}
	dir := t.TempDir()
	const n = 100000
	content := penaltyCSV(n)
	drop(t, dir, "large.csv", content)
	content = nil
	s := open(t, dir)
	defer s.Close(context.Background())
	runtime.GC()
	var base, m runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak uint64
	cur, total := "", 0
	for i := 0; ; i++ {
		b, err := s.Fetch(context.Background(), cur, 500)
		if err != nil {
			t.Fatal(err)
		}
		total += len(b.Records)
		s.Commit(context.Background(), b)
		cur = b.Next
		if i%20 == 0 {
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapInuse)
		}
		if !b.More {
			break
		}
	}
	if total != n {
		t.Fatalf("read %d of %d", total, n)
	}
	if growth := int64(peak) - int64(base.HeapInuse); growth > 16<<20 {
		t.Fatalf("heap grew %d MiB reading a %d-row file", growth>>20, n)
	}
}

func TestConfigValidate(t *testing.T) {
	cases := map[string]filedrop.Config{
		"dir: required": {},
		"pattern:":      {Dir: "x", Pattern: "[a"},
		"encoding:":     {Dir: "x", Encoding: "big5"},
		"settle_time: ": {Dir: "x", SettleTime: -time.Second},
	}
	for want, c := range cases {
		c.SetDefaults()
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%+v: err %v, want %q", c, err, want)
		}
	}
	ok := filedrop.Config{Dir: "x"}
	ok.SetDefaults()
	if err := ok.Validate(); err != nil || ok.Pattern != "*" || ok.Encoding != "auto" || ok.SettleTime != 2*time.Second {
		t.Fatalf("defaults %+v, %v", ok, err)
	}
}

// FuzzDrop feeds arbitrary bytes as each file type: the source never
// errors or sticks, and every payload is JSON.
func FuzzDrop(f *testing.F) {
	gbk, _ := os.ReadFile("testdata/penalties_gbk.csv")
	f.Add(gbk)
	f.Add([]byte("a,b\n1,2\n\"x\n"))
	f.Add([]byte("{\"a\":1}\n[1]\nnull\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		for _, name := range []string{"f.csv", "f.jsonl"} {
			drop(t, dir, name, data)
		}
		s := open(t, dir)
		defer s.Close(context.Background())
		recs, _ := drainAll(t, s, "", 7)
		for _, r := range recs {
			if !json.Valid(r.Payload) {
				t.Fatalf("payload %q is not JSON", r.Payload)
			}
		}
		if left := names(t, filepath.Join(dir, "processing")); len(left) != 0 {
			t.Fatalf("stuck in processing/: %v", left)
		}
	})
}
