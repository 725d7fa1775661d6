package sandbox

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// The simulators parse outside input: a query string and a batch body. Neither
// may panic or answer anything but 200 or 400.

func FuzzDecisionsQuery(f *testing.F) {
	items, err := LoadSeed(seedPath)
	if err != nil {
		f.Fatal(err)
	}
	h := NewDiscipline(items).Handler()
	for _, q := range []string{"", "limit=7", "updated_since=2026-03-01T10:00:00%2B08:00&after_id=jc-2026-0110&limit=3", "limit=-1", "updated_since=%ZZ", "after_id=%00"} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, q string) {
		target := "/api/v1/decisions?" + q
		if _, err := url.ParseRequestURI(target); err != nil || strings.ContainsAny(q, " #") {
			return // not something an HTTP client could send
		}
		req := httptest.NewRequest(http.MethodGet, target, nil)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK && rec.Code != http.StatusBadRequest {
			t.Fatalf("%q: status %d", q, rec.Code)
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%q: answer is not JSON: %s", q, rec.Body)
		}
	})
}

func FuzzPlatformBatch(f *testing.F) {
	for _, b := range []string{
		`{"batch_id":"b","records":[{"key":"r:1","op":"add","record_id":"r","version":1,"data":{"CF_WSH":"x","CF_XDR_MC":"y","CF_JDRQ":"2026-01-02","CF_CFJG":"z","CF_XDR_LB":"自然人","CF_XDR_ZJHM":"11010519491231002X"}}]}`,
		`{"batch_id":"b","records":[{"key":"r:2","op":"withdraw","record_id":"r","version":2}]}`,
		`{"batch_id":"b","records":[{"key":"r:1","op":"add","record_id":"r","version":1,"data":{"CF_JDRQ":7,"CF_XDR_SHXYM":[]}}]}`,
		`{"batch_id":"b","records":null}`,
		`[]`, `null`, ``,
	} {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p := NewPlatform("")
		req := httptest.NewRequest(http.MethodPost, "/api/v1/records", strings.NewReader(string(body)))
		rec := httptest.NewRecorder()
		p.Handler().ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusBadRequest:
		case http.StatusOK:
			var in Batch
			var out BatchReceipt
			_ = json.Unmarshal(body, &in)
			if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || len(out.Receipts) != len(in.Records) {
				t.Fatalf("receipts %s for %d records (%v)", rec.Body, len(in.Records), err)
			}
			st := p.Stats()
			if st.Received != st.Accepted+st.Duplicates+st.Rejected {
				t.Fatalf("stats do not add up: %+v", st)
			}
		default:
			t.Fatalf("status %d", rec.Code)
		}
	})
}
