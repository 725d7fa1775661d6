package normalize

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/panjin-gov/syncd/internal/pii"
	"github.com/panjin-gov/syncd/internal/record"
)

func rawOf(payload string) *record.Raw {
	return &record.Raw{Source: "test", Key: "k1", Payload: []byte(payload), Encoding: "utf-8"}
}

// penaltyMapping is a 2021 双公示 行政处罚 layout.
func penaltyMapping() Mapping {
	return Mapping{
		Kind: "admin_penalty",
		Fields: map[string]string{
			"subject_name": "CF_XDR_MC", "subject_type": "CF_XDR_LB", "subject_uscc": "CF_XDR_SHXYM",
			"subject_id_type": "CF_XDR_ZJLX", "subject_id_number": "CF_XDR_ZJHM", "legal_rep": "CF_FRDB",
			"doc_no": "CF_WSH", "violation_type": "CF_WFXW", "facts": "CF_SY", "legal_basis": "CF_YJ",
			"category": "CF_CFLB", "content": "CF_NR", "fine_amount": "CF_NR_FK", "confiscation_amount": "CF_NR_WFFF",
			"decision_date": "CF_JDRQ", "valid_until": "CF_YXQ", "publicity_until": "CF_GSJZQ",
			"authority_name": "CF_CFJG", "authority_uscc": "CF_CFJGDM", "data_source_unit": "CF_SJLY",
			"data_source_uscc": "CF_SJLYDM", "remark": "BZ", "status": "CF_ZT",
		},
		Constants: map[string]string{"region_code": "211100"},
	}
}

func TestNormalizeGBK(t *testing.T) {
	n, err := New("gbk", penaltyMapping(), testProtector(t))
	if err != nil {
		t.Fatal(err)
	}
	a := panjin(t)
	utf := `{"CF_XDR_MC":"` + a["stz"].name + `","CF_WSH":"盘环罚字〔2026〕7号","CF_JDRQ":"2026-01-09","CF_CFJG":"` + a["hb"].name + `"}`
	gbk, err := simplifiedchinese.GBK.NewEncoder().Bytes([]byte(utf))
	if err != nil {
		t.Fatal(err)
	}
	for _, enc := range []string{"GBK", "gb18030", "GB2312"} {
		raw := &record.Raw{Source: "gbk", Key: "1", Payload: gbk, Encoding: enc}
		rec, rej := n.Normalize(raw, goldenNow)
		if rej != nil {
			t.Fatalf("%s: %+v", enc, rej)
		}
		if rec.SubjectName != a["stz"].name || rec.DocNo != "盘环罚字〔2026〕7号" {
			t.Errorf("%s: decoded %q %q", enc, rec.SubjectName, rec.DocNo)
		}
		if rec.RawHash != raw.Hash() {
			t.Errorf("%s: RawHash is not the hash of the payload as sent", enc)
		}
	}
	// The same bytes declared UTF-8 are not valid UTF-8: rejected, not garbled.
	_, rej := n.Normalize(&record.Raw{Source: "gbk", Key: "2", Payload: gbk, Encoding: "utf-8"}, goldenNow)
	if rej == nil || rej.Reason != ReasonBadPayload {
		t.Fatalf("GBK bytes as UTF-8: %+v", rej)
	}
	_, rej = n.Normalize(&record.Raw{Source: "gbk", Key: "3", Payload: []byte(utf), Encoding: "big5"}, goldenNow)
	if rej == nil || rej.Reason != ReasonBadPayload || !strings.Contains(rej.Message, "big5") {
		t.Fatalf("unsupported encoding: %+v", rej)
	}
}

// The ID number must never appear in clear in a record or a reject message,
// whatever the fault.
func TestNoClearIDNumber(t *testing.T) {
	p := testProtector(t)
	n, err := New("ids", penaltyMapping(), p)
	if err != nil {
		t.Fatal(err)
	}
	id := testID(t, "211102", "19850312", 1)
	base := `"CF_XDR_MC":"孙某","CF_XDR_ZJHM":"` + id + `","CF_WSH":"盘环罚字〔2026〕8号","CF_CFJG":"盘锦市生态环境局"`
	for _, tail := range []string{
		`"CF_JDRQ":"2026-01-09"`,                      // record
		`"CF_JDRQ":"2026-02-30"`,                      // bad_date after the ID field
		`"CF_JDRQ":"2030-01-01"`,                      // future_date
		`"CF_JDRQ":"2026-01-09","CF_NR_FK":"-1"`,      // bad_amount
		`"CF_JDRQ":"2026-01-09","CF_XDR_ZJLX":"身份证X"`, // not an ID card type: no check, still protected
	} {
		rec, rej := n.Normalize(rawOf("{"+base+","+tail+"}"), goldenNow)
		if rej != nil {
			if strings.Contains(rej.Message, id) {
				t.Errorf("reject message holds the clear ID: %s", rej.Message)
			}
			continue
		}
		for _, s := range []string{rec.SubjectIDHash, rec.SubjectIDMasked, string(rec.SubjectIDEnc), rec.ContentHash} {
			if strings.Contains(s, id) {
				t.Errorf("record holds the clear ID")
			}
		}
		if got, err := p.Open(rec.SubjectIDEnc); err != nil || got != id {
			t.Errorf("SubjectIDEnc opens to %q, %v", got, err)
		}
	}
	bad := id[:17] + string("0123456789X"[(strings.IndexByte("0123456789X", id[17])+1)%11])
	_, rej := n.Normalize(rawOf(`{"CF_XDR_MC":"孙某","CF_XDR_ZJHM":" `+bad+` ","CF_WSH":"盘环罚字〔2026〕8号","CF_CFJG":"盘锦市生态环境局","CF_JDRQ":"2026-01-09"}`), goldenNow)
	if rej == nil || rej.Reason != ReasonInvalidIDNumber || strings.Contains(rej.Message, bad) || !strings.Contains(rej.Message, pii.Mask(bad)) {
		t.Fatalf("invalid ID reject: %+v", rej)
	}
}

// pii normalizes ID numbers by itself (it cannot import normalize); the two
// must agree or hashes of the same ID would differ by path.
func TestCleanCodeMatchesPII(t *testing.T) {
	p := testProtector(t)
	for _, s := range []string{"２１１１０２１９８５０３１２００１ｘ", " 211102 19850312 001x\u3000", "\u200b21110219850312001X", "e1234５６７８"} {
		if p.Hash(s) != p.Hash(CleanCode(s)) {
			t.Errorf("pii.Hash(%q) != pii.Hash(CleanCode(%q))", s, s)
		}
		if pii.Mask(s) != pii.Mask(CleanCode(s)) {
			t.Errorf("pii.Mask(%q) != pii.Mask(CleanCode(%q))", s, s)
		}
	}
}

func TestRecordIDStableAcrossSources(t *testing.T) {
	a := panjin(t)
	// Two sources, two layouts, the same decision: one record_id.
	n1, err := New("s1", penaltyMapping(), testProtector(t))
	if err != nil {
		t.Fatal(err)
	}
	n2, err := New("s2", Mapping{
		Kind: "行政处罚",
		Fields: map[string]string{"subject_name": "当事人.名称", "doc_no": "文号", "decision_date": "日期",
			"authority_name": "机关", "authority_uscc": "机关代码"},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r1, rej := n1.Normalize(rawOf(`{"CF_XDR_MC":"`+a["stz"].name+`","CF_WSH":"盘环罚字[2026] 9号","CF_JDRQ":"2026-01-09","CF_CFJG":"`+a["hb"].name+`","CF_CFJGDM":"`+a["hb"].uscc+`"}`), goldenNow)
	if rej != nil {
		t.Fatal(rej.Message)
	}
	r2, rej := n2.Normalize(rawOf(`{"当事人":{"名称":"`+a["stz"].name+`"},"文号":"盘环罚字（２０２６）９号","日期":"20260109","机关":"`+a["hb"].name+`","机关代码":"`+strings.ToLower(a["hb"].uscc)+`"}`), goldenNow.Add(time.Hour))
	if rej != nil {
		t.Fatal(rej.Message)
	}
	if r1.RecordID != r2.RecordID || r1.DocNo != r2.DocNo || !r1.DecisionDate.Equal(r2.DecisionDate) {
		t.Errorf("same decision: record_id %s vs %s, doc_no %s vs %s", r1.RecordID, r2.RecordID, r1.DocNo, r2.DocNo)
	}
}

func TestNormalizeConcurrent(t *testing.T) {
	n, err := New("conc", penaltyMapping(), testProtector(t))
	if err != nil {
		t.Fatal(err)
	}
	payload := benchPayload(t)
	want, rej := n.Normalize(rawOf(string(payload)), goldenNow)
	if rej != nil {
		t.Fatal(rej.Message)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				got, rej := n.Normalize(rawOf(string(payload)), goldenNow)
				if rej != nil || got.ContentHash != want.ContentHash || got.RecordID != want.RecordID {
					t.Error("concurrent Normalize differs")
					return
				}
			}
		})
	}
	wg.Wait()
}

// benchPayload is a realistic ~1 KB 行政处罚 record in the 2021 双公示 layout.
func benchPayload(tb testing.TB) []byte {
	tb.Helper()
	a := panjin(tb)
	p := `{"CF_XDR_MC":"` + a["xx"].name + `","CF_XDR_LB":"法人及非法人组织","CF_XDR_SHXYM":"` + a["xx"].uscc + `",` +
		`"CF_FRDB":"孙某某","CF_WSH":"盘环罚字[2026] 15号","CF_WFXW":"未按规定处置危险废物",` +
		`"CF_SY":"经查，当事人于2025年11月在盘锦市双台子区红旗大街某处机房更换的废铅蓄电池共计12组，未按照国家规定申报登记，` +
		`未交由有资质单位处置，随意堆放于院内露天场所，违反了《中华人民共和国固体废物污染环境防治法》第七十八条的规定。",` +
		`"CF_YJ":"《中华人民共和国固体废物污染环境防治法》第一百一十二条第一款第（二）项","CF_CFLB":"罚款",` +
		`"CF_NR":"责令改正违法行为，处罚款人民币壹拾伍万元整","CF_NR_FK":"15","CF_NR_WFFF":"0",` +
		`"CF_JDRQ":"2026-01-15","CF_YXQ":"2027-01-15","CF_GSJZQ":"2029-01-15",` +
		`"CF_CFJG":"` + a["hb"].name + `","CF_CFJGDM":"` + a["hb"].uscc + `",` +
		`"CF_SJLY":"` + a["hb"].name + `","CF_SJLYDM":"` + a["hb"].uscc + `","CF_ZT":"0","BZ":"已缴纳罚款",` +
		`"SJC":"2026-01-16 09:12:33","DFBM":"211100","ID":"8c9e2f1a-5b4d-4e7a-9c3f-1d2e3f4a5b6c"}`
	return []byte(p)
}

func BenchmarkNormalize(b *testing.B) {
	n, err := New("bench", penaltyMapping(), testProtector(b))
	if err != nil {
		b.Fatal(err)
	}
	raw := &record.Raw{Source: "bench", Key: "1", Payload: benchPayload(b), Encoding: "utf-8"}
	if _, rej := n.Normalize(raw, goldenNow); rej != nil {
		b.Fatal(rej.Message)
	}
	b.SetBytes(int64(len(raw.Payload)))
	b.ReportAllocs()
	for b.Loop() {
		if _, rej := n.Normalize(raw, goldenNow); rej != nil {
			b.Fatal(rej.Message)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkNormalizeWithID adds a person's ID number: HMAC and AES-GCM.
func BenchmarkNormalizeWithID(b *testing.B) {
	n, err := New("bench", penaltyMapping(), testProtector(b))
	if err != nil {
		b.Fatal(err)
	}
	payload := bytes.Replace(benchPayload(b), []byte(`"CF_FRDB"`),
		[]byte(`"CF_XDR_ZJLX":"身份证","CF_XDR_ZJHM":"`+testID(b, "211102", "19850312", 1)+`","CF_FRDB"`), 1)
	raw := &record.Raw{Source: "bench", Key: "1", Payload: payload, Encoding: "utf-8"}
	if _, rej := n.Normalize(raw, goldenNow); rej != nil {
		b.Fatal(rej.Message)
	}
	b.SetBytes(int64(len(raw.Payload)))
	b.ReportAllocs()
	for b.Loop() {
		if _, rej := n.Normalize(raw, goldenNow); rej != nil {
			b.Fatal(rej.Message)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// FuzzNormalize feeds arbitrary payloads: Normalize must not panic, must
// return exactly one of record and reject, and never put the ID in clear in
// a reject message.
func FuzzNormalize(f *testing.F) {
	f.Add(benchPayload(f))
	f.Add([]byte(`{"CF_XDR_MC":"孙某","CF_XDR_ZJHM":"211102198503120018","CF_WSH":"x","CF_JDRQ":"2026-01-01","CF_CFJG":"y"}`))
	f.Add([]byte(`{"CF_XDR_MC":{"a":1},"CF_WSH":[1]}`))
	f.Add([]byte(`not json`))
	n, err := New("fuzz", penaltyMapping(), testProtector(f))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		raw := &record.Raw{Source: "fuzz", Key: "k", Payload: payload}
		rec, rej := n.Normalize(raw, goldenNow)
		if rej == nil {
			if rec.RecordID == "" || rec.ContentHash != rec.ComputeContentHash() || !rec.Kind.Valid() ||
				!rec.Status.Valid() || !rec.SubjectType.Valid() || rec.DecisionDate.IsZero() {
				t.Fatalf("bad record from %q: %+v", payload, rec)
			}
			return
		}
		if rej.Reason == "" || rej.RawHash != raw.Hash() || !bytes.Equal(rej.Payload, payload) {
			t.Fatalf("bad reject: %+v", rej)
		}
		for _, id := range clearIDs(payload) {
			if ValidIDNumber(id) && strings.Contains(rej.Message, id) {
				t.Fatalf("reject message holds a clear ID: %s", rej.Message)
			}
		}
	})
}

func TestValueMapsBeatPlaceholders(t *testing.T) {
	m := Mapping{
		Kind: "admin_penalty",
		Fields: map[string]string{"subject_name": "mc", "doc_no": "wh", "decision_date": "rq",
			"authority_name": "jg", "status": "zt", "remark": "bz"},
		ValueMaps: map[string]map[string]string{"status": {"/": "revoked"}, "remark": {"见附件": ""}},
		Constants: map[string]string{"remark": "无备注"},
	}
	n, err := New("vm", m, nil)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ zt, bz, status, remark string }{
		{"/", "见附件", "revoked", "无备注"}, // mapped placeholder; mapped to "" falls back to the constant
		{"-", "-", "active", "无备注"},    // unmapped placeholders are no value
		{"", "现场检查", "active", "现场检查"},
	}
	for _, c := range cases {
		rec, rej := n.Normalize(rawOf(`{"mc":"盘锦市双台子区人民政府","wh":"盘环罚字〔2026〕1号","rq":"2026-01-05","jg":"盘锦市生态环境局","zt":"`+c.zt+`","bz":"`+c.bz+`"}`), goldenNow)
		if rej != nil {
			t.Fatalf("%+v: %s", c, rej.Message)
		}
		if string(rec.Status) != c.status || rec.Remark != c.remark {
			t.Errorf("%+v: status %q remark %q", c, rec.Status, rec.Remark)
		}
	}
}
