package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/panjin-gov/syncd/internal/httpauth"
)

const (
	natTestKey    = "pj-syncd"
	natTestSecret = "national-secret"
)

func natTestEnv(k string) string {
	return map[string]string{"NAT_SECRET": natTestSecret, "WRONG": "not-the-secret"}[k]
}

// natClient is a signing client built by httpauth, as syncd builds its own.
func natClient(t *testing.T, alg, secretEnv string, timeout time.Duration) *http.Client {
	t.Helper()
	c, err := httpauth.Client(httpauth.Config{Timeout: timeout, Auth: httpauth.Auth{
		Type: "appkey", AppKey: natTestKey, AppSecretEnv: secretEnv, Algorithm: alg,
	}}, natTestEnv)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func natGood() map[string]any {
	return map[string]any{
		"CF_WSH":       "盘环罚〔2026〕7号",
		"CF_XDR_MC":    "盘锦市某建设工程有限公司",
		"CF_XDR_LB":    "法人及非法人组织",
		"CF_XDR_SHXYM": "91350100M000100Y43",
		"CF_CFLB":      "罚款",
		"CF_NR_FK":     "0.5",
		"CF_JDRQ":      "2026-03-05",
		"CF_GSJZQ":     "2027-03-05",
		"CF_CFJG":      "盘锦市生态环境局",
		"CF_CFJGDM":    "914403001922038216",
		"CF_SJLY":      "盘锦市生态环境局",
		"CF_SJLYDM":    "91110108795101314G",
	}
}

func natWith(kv ...any) map[string]any {
	d := natGood()
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(d, kv[i].(string))
			continue
		}
		d[kv[i].(string)] = kv[i+1]
	}
	return d
}

func natPost(t *testing.T, c *http.Client, url string, body []byte, asXML bool) (int, []byte, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if asXML {
		req.Header.Set("Content-Type", "application/xml; charset=utf-8")
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// natSend posts a JSON batch and returns the results; it fails unless 200.
func natSend(t *testing.T, c *http.Client, base string, recs ...PushRecord) []natResult {
	t.Helper()
	body, _ := json.Marshal(Batch{BatchID: "nb-1", Records: recs})
	status, b, err := natPost(t, c, base+"/api/v1/report", body, false)
	if err != nil || status != http.StatusOK {
		t.Fatalf("status %d, %v: %s", status, err, b)
	}
	var a natAnswer
	if err := json.Unmarshal(b, &a); err != nil || a.Code != NationalCodeOK || a.Data == nil || len(a.Data.Results) != len(recs) {
		t.Fatalf("answer %s (%v)", b, err)
	}
	return a.Data.Results
}

func newTestNational(t *testing.T, opts ...NationalOption) (*National, string) {
	n := NewNational(natTestKey, natTestSecret, opts...)
	return n, startServer(t, n.Handler()).URL
}

func TestNationalRequiresAValidSignature(t *testing.T) {
	n, url := newTestNational(t, NationalSM3())
	body, _ := json.Marshal(Batch{BatchID: "b", Records: []PushRecord{rec("r1", 1, "add", natGood())}})
	for name, c := range map[string]*http.Client{
		"unsigned":                       http.DefaultClient,
		"wrong secret":                   natClient(t, "hmac-sm3", "WRONG", 5*time.Second),
		"hmac-sha256 to an SM3 platform": natClient(t, "hmac-sha256", "NAT_SECRET", 5*time.Second),
	} {
		status, b, err := natPost(t, c, url+"/api/v1/report", body, false)
		if err != nil || status != http.StatusUnauthorized || !strings.Contains(string(b), "4010") {
			t.Errorf("%s: status %d, %v: %s", name, status, err, b)
		}
	}
	// A captured request replayed as is.
	req, _ := http.NewRequest(http.MethodPost, url+"/api/v1/report", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if err := (httpauth.Signer{AppKey: natTestKey, Secret: natTestSecret, Algorithm: "hmac-sm3"}).Sign(req, body); err != nil {
		t.Fatal(err)
	}
	for i, want := range []int{http.StatusOK, http.StatusUnauthorized} {
		req.Body = io.NopCloser(bytes.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("send %d of one signed request: status %d, want %d", i+1, resp.StatusCode, want)
		}
	}
	// A request signed ten minutes ago.
	old, _ := http.NewRequest(http.MethodPost, url+"/api/v1/report", bytes.NewReader(body))
	(httpauth.Signer{AppKey: natTestKey, Secret: natTestSecret, Algorithm: "hmac-sm3",
		Now: func() time.Time { return time.Now().Add(-10 * time.Minute) }}).Sign(old, body)
	if resp, err := http.DefaultClient.Do(old); err != nil {
		t.Fatal(err)
	} else if resp.Body.Close(); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("stale request: %s", resp.Status)
	}
	if st := n.Stats(); st.Unauthorized != 5 || st.Accepted != 1 || len(n.Holdings()) != 1 {
		t.Errorf("stats %+v", st)
	}
	// The right client gets through.
	if rs := natSend(t, natClient(t, "hmac-sm3", "NAT_SECRET", 5*time.Second), url, rec("r2", 1, "add", natGood())); rs[0].ZT != "1" {
		t.Errorf("signed with SM3: %+v", rs[0])
	}
}

func TestNationalReceipts(t *testing.T) {
	n, url := newTestNational(t, NationalMaxLen(map[string]int{"CF_XDR_MC": 20}))
	c := natClient(t, "", "NAT_SECRET", 5*time.Second)
	natSend(t, c, url, rec("r-held", 5, "add", natGood()))
	cases := []struct {
		name string
		rec  PushRecord
		code string // "" = accepted
		msg  string
	}{
		{"complete legal person", rec("r-ok", 1, "add", natGood()), "", ""},
		{"natural person", rec("r-person", 1, "add", natWith("CF_XDR_SHXYM", nil, "CF_XDR_LB", "自然人",
			"CF_XDR_ZJLX", "身份证", "CF_XDR_ZJHM", "11010519491231002X")), "", ""},
		{"number amount", rec("r-num", 1, "add", natWith("CF_NR_FK", json.Number("12.345678"))), "", ""},
		{"missing", rec("r-miss", 1, "add", natWith("CF_WSH", nil, "CF_CFLB", " ")), NationalCodeMissingField, "CF_WSH, CF_CFLB"},
		{"legal person without USCC", rec("r-nouscc", 1, "add", natWith("CF_XDR_SHXYM", nil)), NationalCodeMissingField, "CF_XDR_SHXYM"},
		{"person without ID", rec("r-noid", 1, "add", natWith("CF_XDR_SHXYM", nil, "CF_XDR_LB", "自然人")), NationalCodeMissingField, "CF_XDR_ZJHM"},
		{"bad category", rec("r-cat", 1, "add", natWith("CF_XDR_LB", "机关")), NationalCodeBadCategory, ""},
		{"bad date", rec("r-date", 1, "add", natWith("CF_JDRQ", "2026/03/05")), NationalCodeBadDate, "CF_JDRQ"},
		{"impossible date", rec("r-date2", 1, "add", natWith("CF_YXQ", "2026-02-30")), NationalCodeBadDate, "CF_YXQ"},
		{"publicity before decision", rec("r-date3", 1, "add", natWith("CF_GSJZQ", "2025-01-01")), NationalCodeBadDate, "CF_GSJZQ"},
		{"subject USCC check", rec("r-uscc", 1, "add", natWith("CF_XDR_SHXYM", "91350100M000100Y44")), NationalCodeBadUSCC, "CF_XDR_SHXYM"},
		{"authority USCC check", rec("r-uscc2", 1, "add", natWith("CF_CFJGDM", "91350211M0000XUF46")), NationalCodeBadUSCC, "CF_CFJGDM"},
		{"ID check digit", rec("r-id", 1, "add", natWith("CF_XDR_SHXYM", nil, "CF_XDR_LB", "自然人", "CF_XDR_ZJHM", "110105194912310021")), NationalCodeBadIDNo, ""},
		{"amount", rec("r-amt", 1, "add", natWith("CF_NR_FK", "-1")), NationalCodeBadAmount, "CF_NR_FK"},
		{"amount decimals", rec("r-amt2", 1, "add", natWith("CF_NR_WFFF", "1.1234567")), NationalCodeBadAmount, "CF_NR_WFFF"},
		{"too long", rec("r-long", 1, "add", natWith("CF_XDR_MC", strings.Repeat("长", 21))), NationalCodeTooLong, "CF_XDR_MC"},
		{"not text", rec("r-obj", 1, "add", natWith("CF_NR", map[string]any{"a": 1})), NationalCodeMissingField, "CF_NR"},
		{"bad op", rec("r-op", 1, "upsert", natGood()), NationalCodeBadOp, ""},
		{"bad key", PushRecord{Key: "r-key:2", Op: "add", RecordID: "r-key", Version: 1, Data: natGood()}, NationalCodeBadKey, "r-key:1"},
		{"stale", rec("r-held", 4, "update", natGood()), NationalCodeStale, "5"},
		{"duplicate", rec("r-held", 5, "add", natGood()), "", "重复数据"},
	}
	recs := make([]PushRecord, len(cases))
	for i, c := range cases {
		recs[i] = c.rec
	}
	for i, r := range natSend(t, c, url, recs...) {
		cs := cases[i]
		if r.YWID != cs.rec.Key {
			t.Fatalf("result %d is for %q", i, r.YWID)
		}
		if cs.code == "" && (r.ZT != "1" || r.CWDM != NationalCodeOK) || cs.code != "" && (r.ZT != "0" || r.CWDM != cs.code) {
			t.Errorf("%s: %+v, want code %q", cs.name, r, cs.code)
		}
		if !strings.Contains(r.CWXX, cs.msg) {
			t.Errorf("%s: message %q lacks %q", cs.name, r.CWXX, cs.msg)
		}
	}
	h := n.Holdings()
	if len(h) != 4 || h["r-held"].Version != 5 || h["r-num"].Data["CF_NR_FK"] != json.Number("12.345678") {
		t.Errorf("holdings %v", h)
	}
	// Withdraw removes the holding; withdrawing again is a duplicate.
	rs := natSend(t, c, url, rec("r-ok", 2, "withdraw", nil), rec("r-ok", 2, "withdraw", nil), rec("r-none", 1, "withdraw", nil))
	if rs[0].ZT != "1" || !strings.Contains(rs[1].CWXX, "重复") || !strings.Contains(rs[2].CWXX, "不存在") {
		t.Errorf("withdraws %+v", rs)
	}
	if _, held := n.Holdings()["r-ok"]; held {
		t.Error("withdrawn record still held")
	}
	st := n.Stats()
	if st.Received != st.Accepted+st.Rejected+st.Duplicates || st.Withdrawn != 1 || st.Duplicates != 2 {
		t.Errorf("stats %+v", st)
	}
}

func TestNationalUSCCWarnOnly(t *testing.T) {
	n, url := newTestNational(t, NationalUSCCWarnOnly(), NationalRequired("CF_WSH"))
	c := natClient(t, "", "NAT_SECRET", 5*time.Second)
	rs := natSend(t, c, url, rec("r-early", 1, "add", map[string]any{"CF_WSH": "x", "CF_XDR_LB": "法人及非法人组织", "CF_XDR_SHXYM": "91350211M0000XUF46"}))
	if rs[0].ZT != "1" || !strings.Contains(rs[0].CWXX, "仅提示") || n.Stats().Warnings != 1 {
		t.Fatalf("%+v %+v", rs[0], n.Stats())
	}
}

// The XML envelope of httpjson's format: xml, answered in XML.
func TestNationalXML(t *testing.T) {
	n, url := newTestNational(t)
	c := natClient(t, "hmac-sha256", "NAT_SECRET", 5*time.Second)
	var b strings.Builder
	b.WriteString(xml.Header + `<batch id="xb-1"><record op="add" key="x1:1" record_id="x1" version="1">`)
	for k, v := range natGood() {
		b.WriteString("<" + k + ">" + v.(string) + "</" + k + ">")
	}
	b.WriteString(`</record><record op="add" key="x2:1" record_id="x2" version="1"><CF_WSH>盘&amp;1</CF_WSH></record>`)
	b.WriteString(`<record op="withdraw" key="x3:2" record_id="x3" version="2"></record></batch>`)
	status, body, err := natPost(t, c, url+"/api/v1/report", []byte(b.String()), true)
	if err != nil || status != http.StatusOK || !strings.HasPrefix(string(body), "<?xml") {
		t.Fatalf("status %d, %v: %s", status, err, body)
	}
	var a struct {
		Code    string      `xml:"code"`
		BatchID string      `xml:"data>batch_id"`
		Results []natResult `xml:"data>results>result"`
	}
	if err := xml.Unmarshal(body, &a); err != nil {
		t.Fatal(err)
	}
	if a.Code != "0000" || a.BatchID != "xb-1" || len(a.Results) != 3 ||
		a.Results[0].ZT != "1" || a.Results[1].CWDM != NationalCodeMissingField || a.Results[2].ZT != "1" {
		t.Fatalf("answer %s", body)
	}
	if h := n.Holdings()["x1"]; h.Data["CF_XDR_MC"] != "盘锦市某建设工程有限公司" || h.Version != 1 {
		t.Fatalf("holding %+v", h)
	}
	// A malformed XML body is refused as a whole, in XML.
	status, body, _ = natPost(t, c, url+"/api/v1/report", []byte("<batch"), true)
	if status != http.StatusBadRequest || !strings.Contains(string(body), "<code>4001</code>") {
		t.Fatalf("malformed: %d %s", status, body)
	}
}

func TestNationalFaultsAndAdmin(t *testing.T) {
	n, url := newTestNational(t)
	c := natClient(t, "", "NAT_SECRET", 5*time.Second)
	setFaults := func(f string) {
		t.Helper()
		if status, b := postJSON(t, url+"/admin/faults", "", []byte(f)); status != http.StatusOK {
			t.Fatalf("set faults %s: %d %s", f, status, b)
		}
	}
	body, _ := json.Marshal(Batch{BatchID: "fb", Records: []PushRecord{rec("f1", 1, "add", natGood())}})

	setFaults(`{"fail_rate":1}`)
	if status, _, err := natPost(t, c, url+"/api/v1/report", body, false); err != nil || status != 500 {
		t.Fatalf("fail_rate 1: %d %v", status, err)
	}
	if len(n.Holdings()) != 0 {
		t.Fatal("a failed batch was applied")
	}

	// Slow answers: a client with a shorter timeout times out.
	setFaults(`{"delay":"300ms"}`)
	if _, _, err := natPost(t, natClient(t, "", "NAT_SECRET", 50*time.Millisecond), url+"/api/v1/report", body, false); err == nil {
		t.Fatal("no timeout against a 300ms delay")
	}

	// Dropped answers: the batch is applied, the receipts lost; the resend
	// is answered as a duplicate.
	setFaults(`{"drop_rate":1}`)
	if _, _, err := natPost(t, c, url+"/api/v1/report", body, false); err == nil {
		t.Fatal("dropped connection not seen")
	}
	setFaults(`{}`)
	if rs := natSend(t, c, url, rec("f1", 1, "add", natGood())); rs[0].ZT != "1" || !strings.Contains(rs[0].CWXX, "重复") {
		t.Fatalf("resend after drop: %+v", rs[0])
	}

	// Partial rejects: decided per key, so a retry meets the same fate.
	setFaults(`{"reject_rate":0.5,"seed":7}`)
	var recs []PushRecord
	for _, id := range []string{"p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8"} {
		recs = append(recs, rec(id, 1, "add", natGood()))
	}
	first := natSend(t, c, url, recs...)
	again := natSend(t, c, url, recs...)
	rejected := 0
	for i := range first {
		if first[i].ZT == "0" {
			rejected++
			if first[i].CWDM != NationalCodeSimulated || again[i].ZT != "0" {
				t.Errorf("%s: %+v then %+v", recs[i].Key, first[i], again[i])
			}
		}
	}
	if rejected == 0 || rejected == len(recs) {
		t.Errorf("reject_rate 0.5 rejected %d of %d", rejected, len(recs))
	}

	resp, err := http.Get(url + "/admin/stats")
	if err != nil {
		t.Fatal(err)
	}
	var st NationalStats
	json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if st.Failed500 != 1 || st.Batches < 4 || st != n.Stats() {
		t.Errorf("admin stats %+v, direct %+v", st, n.Stats())
	}
	resp, err = http.Get(url + "/admin/holdings")
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]Holding
	json.NewDecoder(resp.Body).Decode(&h)
	resp.Body.Close()
	if _, ok := h["f1"]; !ok || len(h) != len(n.Holdings()) {
		t.Errorf("admin holdings %v", h)
	}
}

// A client gone before the delay ends leaves nothing applied.
func TestNationalClientGoneDuringDelay(t *testing.T) {
	n, url := newTestNational(t)
	n.SetFaults(Faults{Delay: 300 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	body, _ := json.Marshal(Batch{BatchID: "g", Records: []PushRecord{rec("g1", 1, "add", natGood())}})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+"/api/v1/report", bytes.NewReader(body))
	if _, err := natClient(t, "", "NAT_SECRET", 5*time.Second).Do(req); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v", err)
	}
	time.Sleep(400 * time.Millisecond) // past the delay: had it gone on, it would have applied
	if len(n.Holdings()) != 0 {
		t.Fatal("applied after the client left")
	}
}
