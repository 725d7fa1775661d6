package sandbox

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/zap"
)

// The world's admin endpoints flip the non-HTTP platforms' faults.
func TestWorldAdminFaults(t *testing.T) {
	dir := t.TempDir()
	enf, err := LoadEnforcement("../../testdata/sandbox/enforcement.csv", 1)
	if err != nil {
		t.Fatal(err)
	}
	w := &World{log: zap.NewNop(), exchange: NewFilePlatform(dir, ""), liaoning: &FrontDB{log: zap.NewNop(),
		holdings: map[string]Holding{}, versions: map[string]uint64{}, seen: map[string]bool{}},
		hr: NewHR(nil, 1), enforcement: enf}
	mux := http.NewServeMux()
	w.mountPlatformAdmin(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	post := func(path, body string) int {
		resp, err := http.Post(srv.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := post("/liaoning/admin/faults", `{"reject_rate":0.5,"silent":true}`); c != 200 {
		t.Fatalf("liaoning faults: %d", c)
	}
	if w.liaoning.rejectRate != 0.5 || !w.liaoning.silent {
		t.Fatalf("liaoning faults not applied: %v %v", w.liaoning.rejectRate, w.liaoning.silent)
	}
	if c := post("/liaoning/admin/faults", `{"reject_rate":2}`); c != 400 {
		t.Fatalf("bad rate accepted: %d", c)
	}
	if c := post("/exchange/admin/faults", `{"DropRate":0.25}`); c != 200 || w.exchange.Faults().DropRate != 0.25 {
		t.Fatalf("exchange faults: %d %+v", c, w.exchange.Faults())
	}
	if c := post("/hr/admin/faults", `{"malformed":true}`); c != 200 || w.hr.Fault() != HRMalformed {
		t.Fatalf("hr faults: %d %v", c, w.hr.Fault())
	}
	if c := post("/enforcement/admin/faults", `{"malformed":true}`); c != 200 || !w.enforcement.malformed {
		t.Fatalf("enforcement faults: %d", c)
	}
}
