package normalize

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

// testTrie reads a few paths into fixed fields, for scanner tests.
func testTrie() *pathTrie {
	t := newPathTrie()
	t.add("CF_WSH", fDocNo)
	t.add("案件.当事人.姓名", fSubjectName)
	t.add("a.b", fFacts)
	t.add("amount", fFineAmount)
	t.add("list", fRemark)
	t.add("meta.type", fViolationType)
	t.add("Meta.Note", fLegalRep)
	return t
}

func scanText(t *testing.T, payload string) (map[field]string, error) {
	t.Helper()
	var vals [numFields]jsonValue
	if err := scanObject([]byte(payload), testTrie(), &vals); err != nil {
		return nil, err
	}
	out := map[field]string{}
	for f := range numFields {
		if vals[f].kind == jsonObject || vals[f].kind == jsonArray {
			out[f] = string(rune(vals[f].kind))
			continue
		}
		if s, ok := vals[f].text(); ok {
			out[f] = s
		}
	}
	return out, nil
}

func TestScanObject(t *testing.T) {
	cases := []struct {
		payload string
		want    map[field]string
	}{
		{`{"CF_WSH":"盘环罚字〔2026〕3号"}`, map[field]string{fDocNo: "盘环罚字〔2026〕3号"}},
		{`{"cf_wsh":"lower"}`, map[field]string{fDocNo: "lower"}},
		{`{"CF_WSH":"exact","cf_wsh":"fold"}`, map[field]string{fDocNo: "exact"}},
		{`{"cf_wsh":"fold","CF_WSH":"exact"}`, map[field]string{fDocNo: "exact"}},
		{`{"CF_WSH":"one","CF_WSH":"two"}`, map[field]string{fDocNo: "two"}},
		{`{"案件":{"编号":1,"当事人":{"姓名":"张某某","x":[1,{"姓名":"no"}]}}}`, map[field]string{fSubjectName: "张某某"}},
		{`{"a.b":"literal dotted key"}`, map[field]string{fFacts: "literal dotted key"}},
		{`{"a":{"b":"nested"}}`, map[field]string{fFacts: "nested"}},
		{`{"a":"not an object"}`, map[field]string{}},
		{`{"amount":12.50e1}`, map[field]string{fFineAmount: "12.50e1"}},
		{`{"amount":null}`, map[field]string{}},
		{`{"amount":true}`, map[field]string{fFineAmount: "true"}},
		{`{"list":[1,2]}`, map[field]string{fRemark: "["}},
		{`{"list":{"x":1}}`, map[field]string{fRemark: "{"}},
		{`{"CF_WSH":"a\"b\\c\/d\n\u76d8\ud83d\ude00\ud800x"}`, map[field]string{fDocNo: "a\"b\\c/d\n盘😀\ufffdx"}},
		{`{"CF_\u0057SH":"escaped key"}`, map[field]string{fDocNo: "escaped key"}},
		{" \r\n\t{ } ", map[field]string{}},
		{`{"META":{"TYPE":"t","NOTE":"n"}}`, map[field]string{fViolationType: "t", fLegalRep: "n"}},
		{`{"Meta":{"type":"t","Note":"n"}}`, map[field]string{fViolationType: "t", fLegalRep: "n"}},
		{`{"Meta":{"Note":"exact"},"META":{"NOTE":"fold"}}`, map[field]string{fLegalRep: "exact"}},
	}
	for _, c := range cases {
		got, err := scanText(t, c.payload)
		if err != nil {
			t.Errorf("scan %s: %v", c.payload, err)
			continue
		}
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("scan %s = %v, want %v", c.payload, got, c.want)
		}
	}
	bad := []string{
		``, ` `, `[]`, `"x"`, `1`, `null`, `{`, `}`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{"a":1 "b":2}`,
		`{"a":01}`, `{"a":1.}`, `{"a":.1}`, `{"a":-}`, `{"a":1e}`, `{"a":tru}`, `{"a":nul}`,
		`{"a":"x\q"}`, `{"a":"\u12"}`, "{\"a\":\"\x01\"}", `{"a":"x}`, `{} {}`, `{}x`, `{"a":[1,]}`,
		`{"a":[1 2]}`, `{a:1}`, `{'a':1}`, `{"a":+1}`, `{"a":NaN}`,
		strings.Repeat(`{"a":`, maxDepth+1) + "1" + strings.Repeat("}", maxDepth+1),
	}
	for _, p := range bad {
		if _, err := scanText(t, p); err == nil {
			t.Errorf("scan %q: no error", p)
		}
	}
}

func TestScanObjectNoAllocs(t *testing.T) {
	payload := []byte(`{"CF_WSH":"盘环罚字〔2026〕3号","skip":{"x":[1,2,"三"]},"cf_xdr_mc":"盘锦市生态环境局","案件":{"当事人":{"姓名":"张某某"}}}`)
	root := testTrie()
	var vals [numFields]jsonValue
	if n := testing.AllocsPerRun(100, func() { _ = scanObject(payload, root, &vals) }); n != 0 {
		t.Errorf("scanObject allocates %v times", n)
	}
}

// FuzzScanObject checks the scanner against encoding/json: the same payloads
// are valid objects, and the values found at the test paths are the same.
func FuzzScanObject(f *testing.F) {
	for _, s := range []string{
		`{"CF_WSH":"盘环罚字〔2026〕3号","amount":1.5}`,
		`{"案件":{"当事人":{"姓名":"张某某"}},"a.b":"x","a":{"b":"y"}}`,
		`{"CF_WSH":"\ud83d\ude00\u00e9\ud800"}`, `{"list":[1,{"a":null},"x"],"amount":-0.5e-3}`,
		`[]`, `{"a":01}`, `{"a":1}x`, `{"cf_wsh":"x","CF_WSH":"y"}`,
		"{\"a\":\"\xe4\xb8\"}", "{\"\xed\xa0\x80\":1}", "{\"a\":\"\xf0\x9f\x98\x80\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var vals [numFields]jsonValue
		err := scanObject(data, testTrie(), &vals)
		if !utf8.Valid(data) {
			if err == nil {
				t.Fatalf("scanObject(%q) accepted invalid UTF-8", data)
			}
			return
		}

		var obj map[string]any
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		stdErr := dec.Decode(&obj)
		if stdErr == nil && obj == nil {
			stdErr = fmt.Errorf("null")
		}
		if stdErr == nil && dec.InputOffset() != int64(len(bytes.TrimRight(data, " \t\r\n"))) {
			stdErr = fmt.Errorf("trailing data")
		}
		if stdErr == nil && !json.Valid(data) {
			stdErr = fmt.Errorf("invalid")
		}
		if err == errTooDeep {
			return
		}
		if (err == nil) != (stdErr == nil) {
			t.Fatalf("scanObject(%q) err = %v, encoding/json err = %v", data, err, stdErr)
		}
		if err != nil {
			return
		}
		// Exact top-level key: last occurrence wins in both.
		want, ok := obj["CF_WSH"]
		if ok && !hasFoldDup(obj, "CF_WSH") {
			got, gotOK := vals[fDocNo].text()
			if s, isStr := want.(string); isStr && (!gotOK || got != s) {
				t.Fatalf("CF_WSH: scanner %q, encoding/json %q", got, s)
			}
			if n, isNum := want.(json.Number); isNum && got != string(n) {
				t.Fatalf("CF_WSH: scanner %q, encoding/json %q", got, n)
			}
		}
	})
}

// hasFoldDup reports whether obj has another key equal to key under ASCII
// case folding (then the scanner's preference differs from encoding/json's).
func hasFoldDup(obj map[string]any, key string) bool {
	for k := range obj {
		if k != key && strings.EqualFold(k, key) {
			return true
		}
	}
	return false
}
