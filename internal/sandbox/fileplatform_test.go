package sandbox

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm3"
	"golang.org/x/text/encoding/simplifiedchinese"
)

// fpLineOf renders one JSONL line of a batch.
func fpLineOf(key, op string, data map[string]any) string {
	m := map[string]any{"key": key, "op": op}
	for k, v := range data {
		m[k] = v
	}
	b, _ := json.Marshal(m)
	return string(b) + "\n"
}

// fpDrop writes a batch file and its manifest the way a reporter would;
// edit, when set, changes the manifest before it is written.
func fpDrop(t *testing.T, dir, name, format, enc string, body string, count int, edit func(map[string]any)) {
	t.Helper()
	raw := []byte(body)
	if enc == "gbk" {
		var err error
		if raw, err = simplifiedchinese.GBK.NewEncoder().Bytes(raw); err != nil {
			t.Fatal(err)
		}
	}
	file := name + "." + format
	if err := os.WriteFile(filepath.Join(dir, file), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	s, s3 := sha256.Sum256(raw), sm3.Sum(raw)
	m := map[string]any{"batch_id": name, "file": file, "record_count": count, "byte_size": len(raw),
		"sha256": hex.EncodeToString(s[:]), "sm3": hex.EncodeToString(s3[:]), "created_at": time.Now(), "format": format, "encoding": enc}
	if edit != nil {
		edit(m)
	}
	b, _ := json.Marshal(m)
	if err := os.WriteFile(filepath.Join(dir, name+fpManifestSuffix), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// fpReceiptOf reads the receipt of batch name, failing the test when absent.
func fpReceiptOf(t *testing.T, dir, name string) fpReceiptFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "receipts", name+fpReceiptSuffix))
	if err != nil {
		t.Fatal(err)
	}
	var r fpReceiptFile
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func fpScan(t *testing.T, p *FilePlatform, want int) {
	t.Helper()
	n, err := p.Scan(context.Background())
	if err != nil || n != want {
		t.Fatalf("scan read %d batches (%v), want %d", n, err, want)
	}
}

func fpCodes(r fpReceiptFile) string {
	var out []string
	for _, rc := range r.Receipts {
		c := rc.Code
		if rc.Status == StatusAccepted {
			c = "ok"
		}
		out = append(out, rc.Key+"="+c)
	}
	return strings.Join(out, " ")
}

func TestFilePlatformAppliesAndAnswers(t *testing.T) {
	dir := t.TempDir()
	p := NewFilePlatform(dir, "")
	body := fpLineOf("r1:1", "add", goodData()) +
		fpLineOf("r2:1", "add", with("CF_XDR_SHXYM", "91350100M000100Y44")) +
		fpLineOf("r3:1", "add", with("CF_JDRQ", "2026-02-30")) +
		fpLineOf("r4:x", "add", goodData()) +
		"not json\n" +
		fpLineOf("r5:1", "add", goodData())
	fpDrop(t, dir, "b1", "jsonl", "utf-8", body, 6, nil)
	// Leftovers a reporter's crash could leave: never read.
	os.WriteFile(filepath.Join(dir, ".b0.jsonl.tmp"), []byte("half"), 0o644)
	os.WriteFile(filepath.Join(dir, "b2.jsonl"), []byte(fpLineOf("r9:1", "add", goodData())), 0o644)
	os.WriteFile(filepath.Join(dir, ".b2.manifest.json.tmp"), []byte("{"), 0o644)
	fpScan(t, p, 1)
	r := fpReceiptOf(t, dir, "b1")
	if got, want := fpCodes(r), "r1:1=ok r2:1=E103 r3:1=E102 r4:x=E105 r5:1=ok"; got != want || r.BatchID != "b1" {
		t.Fatalf("receipt %s, want %s", got, want)
	}
	if st := p.Stats(); st.Unreadable != 1 || st.Records.Accepted != 2 || st.Records.Rejected != 2 {
		t.Errorf("stats %+v", st)
	}
	if _, err := os.Stat(filepath.Join(dir, FileProcessedDir, "b1.jsonl")); err != nil {
		t.Error("batch not moved to processed/")
	}

	// GBK CSV: an update, a withdraw, a duplicate key, a stale version.
	h := "op,key,CF_WSH,CF_XDR_MC,CF_XDR_LB,CF_JDRQ,CF_CFJG,CF_XDR_SHXYM\n"
	row := func(op, key string) string {
		return op + "," + key + ",盘综执罚〔2024〕11号,盘锦市教育局,法人及非法人组织,2024-03-05,盘锦市综合行政执法局,\n"
	}
	fpDrop(t, dir, "b3", "csv", "gbk", h+row("update", "r1:2")+row("withdraw", "r5:2")+row("add", "r1:1")+row("update", "r1:0"), 4, nil)
	fpScan(t, p, 1)
	if got, want := fpCodes(fpReceiptOf(t, dir, "b3")), "r1:2=ok r5:2=ok r1:1=ok r1:0=E201"; got != want {
		t.Fatalf("receipt %s, want %s", got, want)
	}
	hold := p.Holdings()
	if len(hold) != 1 || hold["r1"].Version != 2 || hold["r1"].Data["CF_XDR_MC"] != "盘锦市教育局" {
		t.Fatalf("holdings %+v", hold)
	}
	if _, ok := hold["r1"].Data["CF_XDR_SHXYM"]; ok {
		t.Error("an empty CSV cell became a field")
	}
	if st := p.Stats(); st.Records.Duplicates != 1 || st.Records.Withdrawn != 1 {
		t.Errorf("stats %+v", st)
	}
	fpScan(t, p, 0)
}

func TestFilePlatformChecksManifest(t *testing.T) {
	body := fpLineOf("r1:1", "add", goodData()) + fpLineOf("r2:1", "add", goodData())
	for _, c := range []struct {
		name string
		edit func(map[string]any)
		in   string
	}{
		{"count", func(m map[string]any) { m["record_count"] = 3 }, "记录数"},
		{"size", func(m map[string]any) { m["byte_size"] = 1 }, "字节数"},
		{"sha256", func(m map[string]any) { m["sha256"] = strings.Repeat("0", 64) }, "SHA-256"},
		{"sm3", func(m map[string]any) { m["sm3"] = strings.Repeat("ab", 32) }, "SM3"},
	} {
		dir := t.TempDir()
		p := NewFilePlatform(dir, "")
		fpDrop(t, dir, "b1", "jsonl", "utf-8", body, 2, c.edit)
		fpScan(t, p, 1)
		r := fpReceiptOf(t, dir, "b1")
		if got := fpCodes(r); got != "r1:1=E301 r2:1=E301" || !strings.Contains(r.Receipts[0].Message, c.in) {
			t.Errorf("%s: receipt %s %+v", c.name, got, r.Receipts)
		}
		if len(p.Holdings()) != 0 || p.Stats().Mismatched != 1 {
			t.Errorf("%s: a mismatched batch was applied", c.name)
		}
	}
}

func TestFilePlatformCorruptManifest(t *testing.T) {
	for _, mode := range []string{"", CorruptReject, CorruptIgnore, CorruptDiscard} {
		dir := t.TempDir()
		p := NewFilePlatform(dir, "")
		p.SetFaults(FileFaults{CorruptManifest: mode})
		os.WriteFile(filepath.Join(dir, "b1.jsonl"), []byte(fpLineOf("r1:1", "add", goodData())), 0o644)
		os.WriteFile(filepath.Join(dir, "b1.manifest.json"), []byte(`{"batch_id":"b1",`), 0o644)
		fpDrop(t, dir, "b2", "jsonl", "utf-8", fpLineOf("r2:1", "add", goodData()), 1, func(m map[string]any) { m["file"] = "../b2.jsonl" })
		_, err := p.Scan(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		p.Scan(context.Background())
		_, rerr := os.Stat(filepath.Join(dir, "receipts", "b1"+fpReceiptSuffix))
		_, inBad := os.Stat(filepath.Join(dir, FileBadDir, "b1.manifest.json"))
		switch mode {
		case "", CorruptReject:
			r := fpReceiptOf(t, dir, "b1")
			if r.Error == nil || r.Error.Code != CodeBadManifest || len(r.Receipts) != 0 || inBad != nil {
				t.Errorf("%q: receipt %+v", mode, r)
			}
		case CorruptIgnore:
			if rerr == nil || inBad == nil {
				t.Errorf("%q: answered or moved", mode)
			}
		case CorruptDiscard:
			if rerr == nil || inBad != nil {
				t.Errorf("%q: answered or not moved", mode)
			}
		}
		if st := p.Stats(); st.Corrupt != 2 || len(p.Holdings()) != 0 {
			t.Errorf("%q: stats %+v", mode, st)
		}
	}
	if err := (FileFaults{CorruptManifest: "explode"}).Validate(); err == nil {
		t.Error("unknown mode accepted")
	}
}

func TestFilePlatformFaults(t *testing.T) {
	dir := t.TempDir()
	p := NewFilePlatform(dir, "")
	p.SetFaults(FileFaults{Delay: time.Hour})
	fpDrop(t, dir, "b1", "jsonl", "utf-8", fpLineOf("r1:1", "add", goodData()), 1, nil)
	fpScan(t, p, 1)
	if _, err := os.Stat(filepath.Join(dir, "receipts", "b1"+fpReceiptSuffix)); err == nil || p.PendingReceipts() != 1 {
		t.Fatal("receipt written before its delay")
	}
	if err := p.flush(time.Now().Add(2 * time.Hour)); err != nil || p.PendingReceipts() != 0 {
		t.Fatal(err)
	}
	fpReceiptOf(t, dir, "b1")

	p.SetFaults(FileFaults{DropRate: 1})
	fpDrop(t, dir, "b2", "jsonl", "utf-8", fpLineOf("r2:1", "add", goodData()), 1, nil)
	fpScan(t, p, 1)
	if _, err := os.Stat(filepath.Join(dir, "receipts", "b2"+fpReceiptSuffix)); err == nil || len(p.Holdings()) != 2 || p.Stats().Dropped != 1 {
		t.Fatal("dropped batch answered or not applied")
	}

	p.SetFaults(FileFaults{RejectRate: 0.5, Seed: 3})
	var body strings.Builder
	for i := range 40 {
		body.WriteString(fpLineOf(fmt.Sprintf("s%d:1", i), "add", goodData()))
	}
	fpDrop(t, dir, "b3", "jsonl", "utf-8", body.String(), 40, nil)
	fpScan(t, p, 1)
	n := strings.Count(fpCodes(fpReceiptOf(t, dir, "b3")), "E900")
	if n < 8 || n > 32 {
		t.Errorf("%d of 40 rejected at rate 0.5", n)
	}
	if f := p.Faults(); f.RejectRate != 0.5 || f.Seed != 3 {
		t.Errorf("faults %+v", f)
	}
}
