package sandbox

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/panjin-gov/syncd/internal/connectors/filedrop"
)

const enfSeedPath = "../../testdata/sandbox/enforcement.csv"

func enfLoad(t *testing.T) *Enforcement {
	t.Helper()
	e, err := LoadEnforcement(enfSeedPath, 7)
	if err != nil {
		t.Fatal(err)
	}
	e.now = func() time.Time { return time.Date(2024, 12, 2, 9, 30, 0, 0, beijing) }
	return e
}

// enfRead reads every row of the drop folder through the filedrop source,
// as syncd does, and returns the decoded rows and the problems reported.
func enfRead(t *testing.T, dir string) (rows []map[string]string, problems []string) {
	t.Helper()
	old := time.Now().Add(-time.Minute)
	ents, _ := os.ReadDir(dir)
	for _, en := range ents {
		if en.Type().IsRegular() {
			os.Chtimes(filepath.Join(dir, en.Name()), old, old)
		}
	}
	src, err := filedrop.New("enforcement", filedrop.Config{Dir: dir, Encoding: "auto", SettleTime: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close(context.Background())
	ctx := context.Background()
	cur := ""
	for range 100 {
		b, err := src.Fetch(ctx, cur, 7)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range b.Records {
			if r.Problem != "" {
				problems = append(problems, r.Problem)
				continue
			}
			var m map[string]string
			if err := json.Unmarshal(r.Payload, &m); err != nil {
				t.Fatalf("payload %s: %v", r.Payload, err)
			}
			rows = append(rows, m)
		}
		if err := src.Commit(ctx, b); err != nil {
			t.Fatal(err)
		}
		cur = b.Next
		if !b.More {
			return rows, problems
		}
	}
	t.Fatal("drop folder never drained")
	return nil, nil
}

func TestEnforcementRoundTrip(t *testing.T) {
	for _, format := range []string{"csv", "xlsx"} {
		t.Run(format, func(t *testing.T) {
			e := enfLoad(t)
			want := e.Pending()
			if len(want) != 40 {
				t.Fatalf("seed has %d rows, want 40", len(want))
			}
			dir := t.TempDir()
			drop := e.DropCSV
			if format == "xlsx" {
				drop = e.DropXLSX
			}
			path, err := drop(dir)
			if err != nil {
				t.Fatal(err)
			}
			if ok, _ := regexp.MatchString(`^XZCF_11211100386693646A_20241202093000_0001\.`+format+`$`, filepath.Base(path)); !ok {
				t.Errorf("file name %s", filepath.Base(path))
			}
			if tmp, _ := filepath.Glob(filepath.Join(dir, "*.tmp")); len(tmp) > 0 {
				t.Errorf("temp files left: %v", tmp)
			}
			if format == "csv" {
				b, _ := os.ReadFile(path)
				if utf8.Valid(b) || !strings.Contains(string(b), "\r\n") {
					t.Error("CSV is not GBK with CRLF line ends")
				}
			}
			got, problems := enfRead(t, dir)
			if len(problems) > 0 {
				t.Fatalf("problems: %v", problems)
			}
			if len(got) != len(want) {
				t.Fatalf("read %d rows, wrote %d", len(got), len(want))
			}
			for i := range want {
				if !reflect.DeepEqual(got[i], want[i]) {
					t.Fatalf("row %d:\n got %v\nwant %v", i, got[i], want[i])
				}
			}
			if p, err := drop(dir); p != "" || err != nil {
				t.Errorf("a drop with nothing pending wrote %q, %v", p, err)
			}
		})
	}
}

func TestEnforcementMalformedRows(t *testing.T) {
	for _, format := range []string{"csv", "xlsx"} {
		t.Run(format, func(t *testing.T) {
			e := enfLoad(t)
			e.SetMalformed(true)
			want := e.Pending()
			dir := t.TempDir()
			drop := e.DropCSV
			if format == "xlsx" {
				drop = e.DropXLSX
			}
			if _, err := drop(dir); err != nil {
				t.Fatal(err)
			}
			got, problems := enfRead(t, dir)
			if len(problems) != MalformedRows {
				t.Fatalf("%d problems, want %d: %v", len(problems), MalformedRows, problems)
			}
			if len(got) != len(want) {
				t.Fatalf("read %d good rows, want %d: the reader did not go on past the malformed ones", len(got), len(want))
			}
		})
	}
}

func TestEnforcementCorrectionTrickle(t *testing.T) {
	e := enfLoad(t)
	dir := t.TempDir()
	if _, err := e.DropCSV(dir); err != nil {
		t.Fatal(err)
	}
	before := map[string]map[string]string{}
	for _, r := range e.rowsByDocNo() {
		before[r[enfColDocNo]] = r
	}
	doc1, doc2 := e.Correct(), e.Correct()
	pend := e.Pending()
	wantN := 2
	if doc1 == doc2 {
		wantN = 1
	}
	if len(pend) != wantN {
		t.Fatalf("%d rows pending after corrections of %s and %s", len(pend), doc1, doc2)
	}
	for _, r := range pend {
		if !strings.HasPrefix(r[enfColRemark], "更正") || reflect.DeepEqual(r, before[r[enfColDocNo]]) {
			t.Errorf("correction of %s does not show: %v", r[enfColDocNo], r)
		}
	}
	path, err := e.DropXLSX(dir)
	if err != nil || path == "" {
		t.Fatalf("drop after correction: %q, %v", path, err)
	}
	got, problems := enfRead(t, dir)
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	// The first drop was read before: only seed rows plus the corrections.
	if len(got) != 40+wantN || !reflect.DeepEqual(got[40:], pend) {
		t.Fatalf("read %d rows; tail %v, want %v", len(got), got[min(40, len(got)):], pend)
	}
}

// rowsByDocNo returns the held rows as maps.
func (e *Enforcement) rowsByDocNo() []map[string]string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []map[string]string
	for _, r := range e.rows {
		m := map[string]string{}
		for i, h := range e.header {
			m[h] = r[i]
		}
		out = append(out, m)
	}
	return out
}

// The seed's flaws are the documented ones and no others.
func TestEnforcementSeed(t *testing.T) {
	e := enfLoad(t)
	fold := func(s string) string {
		return strings.Map(func(r rune) rune {
			if r >= '！' && r <= '～' {
				return r - 0xFEE0
			}
			return r
		}, s)
	}
	badCode := map[string]bool{"盘环罚[2024]4号": true, "盘综执罚〔2024〕23号": true, "盘综执罚〔2024〕21号": true}
	fullWidth := map[string]bool{"盘市监处罚(2024)5号": true, "盘市监处罚〔2024〕15号": true, "盘应急罚〔2024〕7号": true, "盘应急罚〔2024〕3号": true}
	docs := map[string]int{}
	for _, r := range e.rowsByDocNo() {
		doc := r[enfColDocNo]
		docs[doc]++
		if r["行政区划代码"] == "" || !strings.HasPrefix(r["行政区划代码"], "2111") {
			t.Errorf("%s: region %q", doc, r["行政区划代码"])
		}
		codes := []string{r["统一社会信用代码"], r["处罚机关统一社会信用代码"], r["数据来源单位统一社会信用代码"]}
		wide := false
		for i, c := range codes {
			if fold(c) != c {
				wide = true
			}
			if valid := validUSCC(fold(c)); valid == (i == 0 && badCode[doc]) {
				t.Errorf("%s: code %s valid=%v", doc, c, valid)
			}
		}
		if fold(r[enfColFine]) != r[enfColFine] {
			wide = true
		}
		if wide != fullWidth[doc] {
			t.Errorf("%s: full-width=%v", doc, wide)
		}
		if (r["处罚决定日期"] == "") != (doc == "盘综执罚〔2024〕26号") {
			t.Errorf("%s: decision date %q", doc, r["处罚决定日期"])
		}
		if r["行政相对人类别"] != "法人及非法人组织" {
			t.Errorf("%s: 行政相对人类别 %q", doc, r["行政相对人类别"])
		}
	}
	for doc, n := range docs {
		if n != 1 && doc != "盘综执罚〔2024〕19号" {
			t.Errorf("%s appears %d times", doc, n)
		}
	}
	if docs["盘综执罚〔2024〕19号"] != 2 || docs["盘环罚[2026]12号"] != 1 {
		t.Error("the correction or the other system's duplicate is missing")
	}
}
