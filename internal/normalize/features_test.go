package normalize

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/panjin-gov/syncd/internal/record"
)

// Two sources report one decision, one with the authority's code and one
// with only a name its directory knows as an alias: one record_id.
func TestRecordIDAuthorityDirectory(t *testing.T) {
	a := panjin(t)
	dir := []Authority{{Name: a["hb"].name, USCC: a["hb"].uscc, Aliases: []string{"盘锦市环保局"}}}
	withCode, err := New("s1", Mapping{Profile: ProfileCF2021}, testProtector(t), WithAuthorities(dir))
	if err != nil {
		t.Fatal(err)
	}
	nameOnly, err := New("s2", Mapping{Kind: "行政处罚", Fields: map[string]string{
		"subject_name": "当事人", "doc_no": "文号", "decision_date": "日期", "authority_name": "机关"}}, nil, WithAuthorities(dir))
	if err != nil {
		t.Fatal(err)
	}
	r1, rej := withCode.Normalize(rawOf(`{"CF_XDR_MC":"`+a["stz"].name+`","CF_WSH":"盘环罚字[2026] 9号","CF_JDRQ":"2026-01-09","CF_CFJG":"`+a["hb"].name+`","CF_CFJGDM":"`+a["hb"].uscc+`"}`), goldenNow)
	if rej != nil {
		t.Fatal(rej.Message)
	}
	r2, rej := nameOnly.Normalize(rawOf(`{"当事人":"`+a["stz"].name+`","文号":"盘环罚字（２０２６）９号","日期":"2026-01-09","机关":"盘锦市环保局"}`), goldenNow)
	if rej != nil {
		t.Fatal(rej.Message)
	}
	if r1.RecordID != r2.RecordID || r2.AuthorityUSCC != a["hb"].uscc {
		t.Errorf("record_id %s vs %s, resolved code %q", r1.RecordID, r2.RecordID, r2.AuthorityUSCC)
	}
	// Without the directory the name-only source gives another record_id:
	// the case the directory is for.
	bare, err := New("s2", Mapping{Kind: "行政处罚", Fields: map[string]string{
		"subject_name": "当事人", "doc_no": "文号", "decision_date": "日期", "authority_name": "机关"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r3, _ := bare.Normalize(rawOf(`{"当事人":"x","文号":"盘环罚字〔2026〕9号","日期":"2026-01-09","机关":"盘锦市环保局"}`), goldenNow)
	if r3.RecordID == r1.RecordID {
		t.Error("without a directory a name-only authority gave the code's record_id")
	}
}

func TestSharedDirectoryConflicts(t *testing.T) {
	hb := panjin(t)["hb"]
	m := Mapping{Kind: "admin_penalty", Fields: map[string]string{"subject_name": "a", "doc_no": "b", "decision_date": "c", "authority_name": "d"},
		Authorities: []Authority{{Name: hb.name, USCC: "11211100MB1558129B"}}}
	_, err := New("x", m, nil, WithAuthorities([]Authority{{Name: hb.name, USCC: hb.uscc}}))
	if err == nil || !strings.Contains(err.Error(), "is also an entry for") {
		t.Fatalf("conflicting directories: %v", err)
	}
	if err := (Authorities{{Name: hb.name, USCC: hb.uscc}, {Name: "", USCC: "1"}}).Validate(); err == nil {
		t.Fatal("Authorities.Validate accepted an entry without a name")
	}
}

// WithClock decides expiry; the ingest time still bounds the decision date.
func TestWithClockExpiry(t *testing.T) {
	m := Mapping{Kind: "admin_penalty", Fields: map[string]string{"subject_name": "a", "doc_no": "b", "decision_date": "c", "authority_name": "d"}}
	payload := `{"a":"盘锦市双台子区人民政府","b":"盘环罚字〔2026〕1号","c":"2026-01-05","d":"盘锦市生态环境局"}`
	for _, c := range []struct {
		clock time.Time
		want  record.Status
	}{
		{time.Date(2027, 1, 5, 23, 0, 0, 0, shanghai), record.Active}, // the last day of 一般 (1 year)
		{time.Date(2027, 1, 6, 0, 0, 0, 0, shanghai), record.Expired},
	} {
		n, err := New("clock", m, nil, WithClock(func() time.Time { return c.clock }))
		if err != nil {
			t.Fatal(err)
		}
		rec, rej := n.Normalize(rawOf(payload), goldenNow)
		if rej != nil {
			t.Fatal(rej.Message)
		}
		if rec.Status != c.want || rec.IngestedAt != goldenNow {
			t.Errorf("clock %s: status %s, want %s", c.clock, rec.Status, c.want)
		}
	}
}

func TestNormalizeIntoReusesResult(t *testing.T) {
	m := Mapping{Kind: "admin_penalty", Fields: map[string]string{"subject_name": "a", "subject_uscc": "u", "doc_no": "b", "decision_date": "c", "authority_name": "d"},
		Rules: map[string]string{"Subject_USCC": "WARN"}} // viper lower-cases keys; values are case-insensitive too
	n, err := New("into", m, nil)
	if err != nil {
		t.Fatal(err)
	}
	var res Result
	n.NormalizeInto(rawOf(`{"a":"x","u":"11211102001263451B","b":"1","c":"2026-01-05","d":"y"}`), goldenNow, &res)
	if res.Reject != nil || len(res.Warnings) != 1 || res.WarningCodes()[0] != "invalid_uscc:subject_uscc" {
		t.Fatalf("warn: %+v", res)
	}
	n.NormalizeInto(rawOf(`{"a":"x","b":"1","c":"2026-01-05","d":"y"}`), goldenNow, &res)
	if res.Reject != nil || len(res.Warnings) != 0 {
		t.Fatalf("second payload kept the first's warnings: %+v", res.Warnings)
	}
	n.NormalizeInto(rawOf(`[]`), goldenNow, &res)
	if res.Reject == nil || res.Record.RecordID != "" {
		t.Fatalf("reject: %+v", res)
	}
}

func TestPeriodAdd(t *testing.T) {
	d := func(y, m, dd int) time.Time { return time.Date(y, time.Month(m), dd, 0, 0, 0, 0, shanghai) }
	for _, c := range []struct {
		p        string
		from, to time.Time
	}{
		{"1y", d(2024, 2, 29), d(2025, 2, 28)},
		{"3m", d(2025, 11, 30), d(2026, 2, 28)},
		{"3个月", d(2026, 1, 15), d(2026, 4, 15)},
		{"3年", d(2026, 1, 15), d(2029, 1, 15)},
		{"90d", d(2026, 2, 10), d(2026, 5, 11)},
	} {
		p, err := parsePeriod(c.p)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.add(c.from); !got.Equal(c.to) {
			t.Errorf("%s + %s = %s, want %s", c.from.Format(time.DateOnly), c.p, got.Format(time.DateOnly), c.to.Format(time.DateOnly))
		}
	}
	for _, bad := range []string{"", "3", "y", "3w", "1000y"} {
		if _, err := parsePeriod(bad); err == nil {
			t.Errorf("parsePeriod(%q) accepted", bad)
		}
	}
}

// Every reason code is shown by a golden case, and every configurable rule
// both rejects and warns in one.
func TestGoldenCoverage(t *testing.T) {
	rejected, warned := map[string]bool{}, map[string]bool{}
	files, _ := filepath.Glob(goldenDir + "/*/expected.jsonl")
	for _, file := range files {
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var gl goldenLine
			if err := json.Unmarshal(sc.Bytes(), &gl); err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			if gl.Reject != nil {
				rejected[gl.Reject.Reason+":"+gl.Reject.Field] = true
				rejected[gl.Reject.Reason] = true
			}
			for _, w := range gl.Warnings {
				warned[w.Code()] = true
				warned[w.Reason] = true
			}
		}
		f.Close()
	}
	for _, r := range Reasons() {
		if !rejected[r] && !warned[r] {
			t.Errorf("reason %s: no golden case", r)
		}
	}
	ruleCase := map[string]string{
		RuleSubjectUSCC: "invalid_uscc:subject_uscc", RuleAuthorityUSCC: "invalid_uscc:authority_uscc",
		RuleDataSourceUSCC: "invalid_uscc:data_source_uscc", RuleSubjectIDNumber: "invalid_id_number:subject_id_number",
		RuleRegionCode: "bad_value:region_code", RuleFutureDate: "future_date:decision_date",
		RuleDateOrder: "date_order", RulePublicityTooLong: "publicity_too_long:publicity_until",
		RuleUnknownAuthority: "unknown_authority", RuleAuthorityMismatch: "authority_mismatch:authority_uscc",
		RuleCategory: "unknown_category:category", RuleIDType: "unknown_id_type:subject_id_type",
	}
	for name := range Rules() {
		c, ok := ruleCase[name]
		if !ok {
			t.Errorf("rule %s: no expected case listed here", name)
			continue
		}
		if !rejected[c] {
			t.Errorf("rule %s: no golden case rejects (%s)", name, c)
		}
		if !warned[c] && name != RuleAuthorityUSCC && name != RuleDataSourceUSCC {
			t.Errorf("rule %s: no golden case warns (%s)", name, c)
		}
	}
	if !slices.Contains(Profiles(), ProfileCF2021) || !slices.Contains(Profiles(), ProfileCF2016) {
		t.Error("profiles missing")
	}
}

// textIsCleanValid and textIsClean must agree with CleanText itself.
func TestTextIsCleanAgrees(t *testing.T) {
	for _, s := range []string{"", "a", " a", "a ", "a  b", "a b", "盘锦市\u3000生态", "盘锦\u00a0市", "x\u200by", "\ufeffx",
		"\ufffd", "a\u2028b", "\u1680", "\u2060", "名称\u0085", "\u00a9", "😀 ok", "tab\there", "\x7f", "ｆｕｌｌ"} {
		want := CleanText(s) == s
		if got := textIsCleanValid(s); got != want {
			t.Errorf("textIsCleanValid(%q) = %v, CleanText changes it: %v", s, got, !want)
		}
		if got := textIsClean(s); got != want {
			t.Errorf("textIsClean(%q) = %v, CleanText changes it: %v", s, got, !want)
		}
	}
	for _, s := range []string{"\xff", "a\xe4\xb8", "\xed\xa0\x80", "\xc0\xaf"} {
		if textIsClean(s) {
			t.Errorf("textIsClean(%q): invalid UTF-8 taken as clean", s)
		}
	}
}
