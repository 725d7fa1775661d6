package sandbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

const testToken = "tok-123"

// goodData is a record that passes every check.
func goodData() map[string]any {
	return map[string]any{
		"CF_WSH":       "盘纪处〔2026〕12号",
		"CF_XDR_MC":    "盘锦市生态环境局",
		"CF_XDR_LB":    "法人及非法人组织",
		"CF_XDR_SHXYM": "91350100M000100Y43",
		"CF_JDRQ":      "2026-03-05",
		"CF_CFJG":      "中共盘锦市纪律检查委员会",
	}
}

func rec(id string, version uint64, op string, data map[string]any) PushRecord {
	return PushRecord{Key: fmt.Sprintf("%s:%d", id, version), Op: op, RecordID: id, Version: version, Data: data}
}

func with(kv ...any) map[string]any {
	d := goodData()
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(d, kv[i].(string))
			continue
		}
		d[kv[i].(string)] = kv[i+1]
	}
	return d
}

// push sends a batch and decodes the receipts; it fails the test unless 200.
func push(t *testing.T, base string, recs ...PushRecord) []Receipt {
	t.Helper()
	status, body := postJSON(t, base+"/api/v1/records", testToken, Batch{BatchID: "b-test", Records: recs})
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, body)
	}
	var br BatchReceipt
	if err := json.Unmarshal(body, &br); err != nil {
		t.Fatal(err)
	}
	if br.BatchID != "b-test" || len(br.Receipts) != len(recs) {
		t.Fatalf("receipt %+v for %d records", br, len(recs))
	}
	for i, r := range br.Receipts {
		if r.Key != recs[i].Key {
			t.Fatalf("receipt %d is for %q, want %q", i, r.Key, recs[i].Key)
		}
	}
	return br.Receipts
}

func newTestPlatform(t *testing.T) (*Platform, string) {
	p := NewPlatform(testToken)
	return p, startServer(t, p.Handler()).URL
}

func TestPlatformReceipts(t *testing.T) {
	p, url := newTestPlatform(t)
	cases := []struct {
		rec      PushRecord
		code     string // "" = accepted
		inMsg    string
		holdings bool
	}{
		{rec: rec("r-ok", 1, "add", goodData()), holdings: true},
		{rec: rec("r-person", 1, "add", with("CF_XDR_SHXYM", nil, "CF_XDR_LB", "自然人", "CF_XDR_ZJHM", "11010519491231002X")), holdings: true},
		{rec: rec("r-empty-code", 1, "update", with("CF_XDR_SHXYM", "")), holdings: true},
		{rec: rec("r-no-wsh", 1, "add", with("CF_WSH", nil)), code: CodeMissingField, inMsg: "CF_WSH"},
		{rec: rec("r-blank", 1, "add", with("CF_XDR_MC", "  ", "CF_CFJG", nil)), code: CodeMissingField, inMsg: "CF_XDR_MC, CF_CFJG"},
		{rec: rec("r-no-lb", 1, "add", with("CF_XDR_LB", nil)), code: CodeMissingField, inMsg: "CF_XDR_LB"},
		{rec: rec("r-no-data", 1, "add", nil), code: CodeMissingField},
		{rec: rec("r-date", 1, "add", with("CF_JDRQ", "20260305")), code: CodeBadDate},
		{rec: rec("r-date2", 1, "add", with("CF_JDRQ", "2026-02-30")), code: CodeBadDate},
		{rec: rec("r-uscc", 1, "add", with("CF_XDR_SHXYM", "91350100M000100Y44")), code: CodeBadUSCC},
		{rec: rec("r-uscc-fw", 1, "add", with("CF_XDR_SHXYM", "９１３５０１００Ｍ０００１００Ｙ４３")), code: CodeBadUSCC},
		{rec: rec("r-idno", 1, "add", with("CF_XDR_ZJHM", "2111021980")), code: CodeBadIDNo},
		{rec: rec("r-op", 1, "insert", goodData()), code: CodeBadOp},
		{rec: PushRecord{Key: "r-key:2", Op: "add", RecordID: "r-key", Version: 1, Data: goodData()}, code: CodeBadKey},
		{rec: PushRecord{Key: ":1", Op: "add", Version: 1, Data: goodData()}, code: CodeMissingField, inMsg: "record_id"},
	}
	var recs []PushRecord
	for _, c := range cases {
		recs = append(recs, c.rec)
	}
	got := push(t, url, recs...)
	h := p.Holdings()
	for i, c := range cases {
		r := got[i]
		wantStatus := StatusAccepted
		if c.code != "" {
			wantStatus = StatusRejected
		}
		if r.Status != wantStatus || r.Code != c.code || !strings.Contains(r.Message, c.inMsg) {
			t.Errorf("%s: got %+v, want %s %s containing %q", c.rec.Key, r, wantStatus, c.code, c.inMsg)
		}
		if c.code != "" && r.Message == "" {
			t.Errorf("%s: rejection without a message", c.rec.Key)
		}
		if _, ok := h[c.rec.RecordID]; ok != c.holdings {
			t.Errorf("%s: held %v, want %v", c.rec.Key, ok, c.holdings)
		}
	}
	if st := p.Stats(); st != (Stats{Batches: 1, Received: len(cases), Accepted: 3, Rejected: len(cases) - 3}) {
		t.Errorf("stats %+v", st)
	}
}

func TestPlatformAuthAndBadBodies(t *testing.T) {
	p, url := newTestPlatform(t)
	batch := Batch{BatchID: "b", Records: []PushRecord{rec("r", 1, "add", goodData())}}
	for _, tok := range []string{"", "nope"} {
		if status, _ := postJSON(t, url+"/api/v1/records", tok, batch); status != http.StatusUnauthorized {
			t.Errorf("token %q: status %d, want 401", tok, status)
		}
	}
	for name, body := range map[string][]byte{
		"not json":    []byte("batch_id=b"),
		"truncated":   []byte(`{"batch_id":"b","records":[`),
		"two objects": []byte(`{"batch_id":"b","records":[]} {}`),
		"no batch_id": []byte(`{"records":[]}`),
		"bad version": []byte(`{"batch_id":"b","records":[{"key":"r:1","op":"add","record_id":"r","version":"1"}]}`),
		"too large":   append(append([]byte(`{"batch_id":"b","pad":"`), bytes.Repeat([]byte("x"), MaxBatchBytes)...), `"}`...),
	} {
		if status, resp := postJSON(t, url+"/api/v1/records", testToken, body); status != http.StatusBadRequest {
			t.Errorf("%s: status %d (%.100s), want 400", name, status, resp)
		}
	}
	if st := p.Stats(); st != (Stats{}) || len(p.Holdings()) != 0 {
		t.Errorf("refused bodies changed state: %+v", st)
	}
	// No token configured: anything goes.
	open := startServer(t, NewPlatform("").Handler())
	if status, _ := postJSON(t, open.URL+"/api/v1/records", "", batch); status != http.StatusOK {
		t.Errorf("open platform: status %d", status)
	}
}

func TestPlatformIdempotentResend(t *testing.T) {
	p, url := newTestPlatform(t)
	batch := []PushRecord{rec("r1", 1, "add", goodData()), rec("r2", 4, "add", goodData())}
	push(t, url, batch...)
	before := p.Holdings()
	again := push(t, url, batch...)
	for _, r := range again {
		if r.Status != StatusAccepted {
			t.Errorf("re-send %s: %+v, want accepted", r.Key, r)
		}
	}
	// The same key with other data changes nothing either: the key decides.
	push(t, url, rec("r1", 1, "add", with("CF_XDR_MC", "别的名字")))
	after := p.Holdings()
	if after["r1"].Data["CF_XDR_MC"] != before["r1"].Data["CF_XDR_MC"] || len(after) != 2 {
		t.Errorf("holdings changed on re-send: %+v", after)
	}
	if st := p.Stats(); st.Accepted != 2 || st.Duplicates != 3 || st.Received != 5 || st.Batches != 3 {
		t.Errorf("stats %+v", st)
	}
}

func TestPlatformVersions(t *testing.T) {
	p, url := newTestPlatform(t)
	got := push(t, url,
		rec("r", 3, "add", goodData()),
		rec("r", 5, "update", with("CF_XDR_MC", "v5")),
		rec("r", 4, "update", with("CF_XDR_MC", "v4")), // older than held
		rec("r", 3, "add", goodData()),                 // accepted before: still a duplicate
	)
	want := []struct{ status, code string }{{StatusAccepted, ""}, {StatusAccepted, ""}, {StatusRejected, CodeStale}, {StatusAccepted, ""}}
	for i, w := range want {
		if got[i].Status != w.status || got[i].Code != w.code {
			t.Errorf("%s: %+v, want %s %s", got[i].Key, got[i], w.status, w.code)
		}
	}
	if h := p.Holdings()["r"]; h.Version != 5 || h.Op != "update" || h.Data["CF_XDR_MC"] != "v5" {
		t.Errorf("holding %+v", h)
	}
}

func TestPlatformWithdraw(t *testing.T) {
	p, url := newTestPlatform(t)
	push(t, url, rec("r", 1, "add", goodData()), rec("other", 1, "add", goodData()))
	got := push(t, url,
		rec("r", 3, "withdraw", nil),
		rec("r", 2, "update", goodData()), // a stale update after the withdraw
		rec("never", 1, "withdraw", nil),  // nothing to withdraw: accepted, no effect
	)
	if got[0].Status != StatusAccepted || got[1].Code != CodeStale || got[2].Status != StatusAccepted {
		t.Errorf("receipts %+v", got)
	}
	h := p.Holdings()
	if _, ok := h["r"]; ok || len(h) != 1 {
		t.Errorf("holdings after withdraw: %+v", h)
	}
	if st := p.Stats(); st.Withdrawn != 1 {
		t.Errorf("stats %+v, want 1 withdrawn", st)
	}
	// Re-publishing with a newer version brings it back.
	push(t, url, rec("r", 4, "add", goodData()))
	if h := p.Holdings()["r"]; h.Version != 4 {
		t.Errorf("re-added holding %+v", h)
	}
}

func TestPlatformRejectRate(t *testing.T) {
	run := func(f Faults) map[string]string {
		p, url := newTestPlatform(t)
		p.SetFaults(f)
		var recs []PushRecord
		for i := range 400 {
			recs = append(recs, rec(fmt.Sprintf("rec-%03d", i), 1, "add", goodData()))
		}
		out := map[string]string{}
		for _, r := range push(t, url, recs...) {
			out[r.Key] = r.Code
			if r.Code != "" && r.Code != CodeSimulated {
				t.Fatalf("unexpected receipt %+v", r)
			}
		}
		// A retry of the rejected keys meets the same fate.
		var retry []PushRecord
		for _, r := range recs {
			if out[r.Key] == CodeSimulated {
				retry = append(retry, r)
			}
		}
		if len(retry) > 0 {
			for _, r := range push(t, url, retry...) {
				if r.Code != CodeSimulated {
					t.Errorf("retry of %s: %+v, want E900 again", r.Key, r)
				}
			}
		}
		return out
	}
	count := func(m map[string]string) (n int) {
		for _, c := range m {
			if c == CodeSimulated {
				n++
			}
		}
		return n
	}
	a, b := run(Faults{RejectRate: 0.25, Seed: 9}), run(Faults{RejectRate: 0.25, Seed: 9})
	for k := range a {
		if a[k] != b[k] {
			t.Fatalf("same seed, %s answered %q then %q", k, a[k], b[k])
		}
	}
	if n := count(a); n < 60 || n > 140 {
		t.Errorf("RejectRate 0.25 rejected %d of 400", n)
	}
	if n := count(run(Faults{RejectRate: 1})); n != 400 {
		t.Errorf("RejectRate 1 rejected %d of 400", n)
	}
	if n := count(run(Faults{})); n != 0 {
		t.Errorf("RejectRate 0 rejected %d", n)
	}
	// Invalid records keep their own code; E900 hits only otherwise-valid ones.
	p, url := newTestPlatform(t)
	p.SetFaults(Faults{RejectRate: 1})
	if got := push(t, url, rec("x", 1, "add", with("CF_WSH", nil))); got[0].Code != CodeMissingField {
		t.Errorf("invalid record under RejectRate 1: %+v", got[0])
	}
}

func TestPlatformFailRateAppliesNothing(t *testing.T) {
	p, url := newTestPlatform(t)
	p.SetFaults(Faults{FailRate: 1})
	for range 3 {
		status, _ := postJSON(t, url+"/api/v1/records", testToken, Batch{BatchID: "b", Records: []PushRecord{rec("r", 1, "add", goodData())}})
		if status != http.StatusInternalServerError {
			t.Fatalf("status %d, want 500", status)
		}
	}
	if st := p.Stats(); st != (Stats{Failed500: 3}) || len(p.Holdings()) != 0 {
		t.Errorf("a failed batch changed state: %+v %v", st, p.Holdings())
	}
}

func TestPlatformDropAfterApplying(t *testing.T) {
	p, url := newTestPlatform(t)
	p.SetFaults(Faults{DropRate: 1})
	b, _ := json.Marshal(Batch{BatchID: "b", Records: []PushRecord{rec("r", 1, "add", goodData())}})
	req, _ := http.NewRequest(http.MethodPost, url+"/api/v1/records", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("client saw %v, want unexpected EOF", err)
	}
	// The batch was applied: the client's retry is a duplicate.
	p.SetFaults(Faults{})
	if got := push(t, url, rec("r", 1, "add", goodData())); got[0].Status != StatusAccepted {
		t.Errorf("retry %+v", got[0])
	}
	if st := p.Stats(); st.Accepted != 1 || st.Duplicates != 1 || len(p.Holdings()) != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestPlatformAdmin(t *testing.T) {
	p, url := newTestPlatform(t)
	push(t, url, rec("r", 2, "add", goodData()))
	if status, body := postJSON(t, url+"/admin/faults", "", []byte(`{"reject_rate":0.5,"delay":"1ms","seed":7}`)); status != http.StatusOK {
		t.Fatalf("faults: %d %s", status, body)
	}
	if f := p.Faults(); f.RejectRate != 0.5 || f.Seed != 7 {
		t.Errorf("faults %+v", f)
	}
	get := func(path string, v any) {
		t.Helper()
		resp, err := http.Get(url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %v", path, resp.StatusCode, err)
		}
	}
	var h map[string]Holding
	get("/admin/holdings", &h)
	if h["r"].Version != 2 || h["r"].Data["CF_WSH"] != "盘纪处〔2026〕12号" {
		t.Errorf("holdings %+v", h)
	}
	var st Stats
	get("/admin/stats", &st)
	if st.Accepted != 1 || st.Batches != 1 {
		t.Errorf("stats %+v", st)
	}
}
