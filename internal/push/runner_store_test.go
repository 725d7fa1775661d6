package push_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/panjin-gov/syncd/internal/backoff"
	"github.com/panjin-gov/syncd/internal/httpauth"
	"github.com/panjin-gov/syncd/internal/push"
	"github.com/panjin-gov/syncd/internal/push/httpjson"
	"github.com/panjin-gov/syncd/internal/record"
	"github.com/panjin-gov/syncd/internal/store"
	"github.com/panjin-gov/syncd/internal/store/storetest"
)

// seed stores n active disciplinary records.
func seed(t *testing.T, st *store.Store, n int) {
	t.Helper()
	now := time.Now()
	recs := make([]record.Record, n)
	for i := range recs {
		recs[i] = record.Record{
			RecordID: fmt.Sprintf("r%04d", i), Version: 1, Kind: record.DisciplinaryAction, Status: record.Active,
			SubjectType: record.Agency, SubjectName: "盘锦市某局", DocNo: fmt.Sprintf("盘纪处〔2026〕%d号", i),
			DecisionDate: now.AddDate(0, -1, 0), AuthorityName: "中共盘锦市纪律检查委员会",
			SourceSystem: "t", SourceKey: fmt.Sprint(i), SourceUpdatedAt: now, IngestedAt: now,
		}
	}
	if err := st.InsertRecords(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
}

func runner(t *testing.T, st *store.Store, url string, b *push.Breaker) *push.Runner {
	t.Helper()
	tg, err := httpjson.New(httpjson.Config{URL: url, Config: httpauth.Config{Timeout: 2 * time.Second}}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	l, err := push.Profile{}.Compile()
	if err != nil {
		t.Fatal(err)
	}
	return &push.Runner{Name: "p", Target: tg, Ledger: st, Layout: l, BatchSize: 10, Breaker: b, SafetyLag: time.Second,
		Retry: backoff.Policy{MaxAttempts: 2, Initial: time.Millisecond, Max: 2 * time.Millisecond}, Log: zap.NewNop()}
}

// acceptAll answers every record of a batch as accepted.
func acceptAll(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Records []struct{ Key string } `json:"records"`
	}
	if err := decodeJSON(r, &body); err != nil {
		w.WriteHeader(400)
		return
	}
	out := `{"receipts":[`
	for i, rec := range body.Records {
		if i > 0 {
			out += ","
		}
		out += fmt.Sprintf(`{"key":%q,"status":"accepted"}`, rec.Key)
	}
	w.Write([]byte(out + "]}"))
}

func TestBreakerStopsContactingAFailingPlatform(t *testing.T) {
	st := storetest.New(t)
	seed(t, st, 25)
	var calls, down atomic.Int64
	down.Store(1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if down.Load() == 1 {
			w.WriteHeader(503)
			return
		}
		acceptAll(w, r)
	}))
	defer srv.Close()
	b := push.NewBreaker(push.BreakerConfig{Failures: 2, Cooldown: 300 * time.Millisecond})
	ctx := context.Background()

	// Two failing runs (2 attempts each) open the circuit.
	for i := 0; i < 2; i++ {
		if _, err := runner(t, st, srv.URL, b).Run(ctx); err == nil {
			t.Fatal("run against a down platform succeeded")
		}
	}
	if got := calls.Load(); got != 4 {
		t.Fatalf("%d requests in two failing runs, want 4", got)
	}
	if b.State() != "open" {
		t.Fatalf("breaker %s after two failed batches", b.State())
	}
	_, err := runner(t, st, srv.URL, b).Run(ctx)
	if err == nil || !errorsIs(err, push.ErrCircuitOpen) {
		t.Fatalf("run with an open circuit: %v", err)
	}
	if got := calls.Load(); got != 4 {
		t.Fatalf("open circuit still contacted the platform (%d requests)", got)
	}

	// After the cool-down the platform is back: one probe closes it and
	// everything is delivered exactly once.
	time.Sleep(350 * time.Millisecond)
	down.Store(0)
	s, err := runner(t, st, srv.URL, b).Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.Accepted != 25 || b.State() != "closed" {
		t.Fatalf("after recovery: %+v, breaker %s", s, b.State())
	}
	sum, err := st.Summary(ctx, "p", 5)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Accepted != 25 || sum.Pending != 0 {
		t.Fatalf("ledger %+v", sum)
	}
}

func TestDryRunSendsAndWritesNothing(t *testing.T) {
	st := storetest.New(t)
	seed(t, st, 23)
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls.Add(1); acceptAll(w, r) }))
	defer srv.Close()
	r := runner(t, st, srv.URL, nil)
	var previewed []push.Item
	r.Preview = func(it push.Item, skip string) {
		if skip == "" {
			previewed = append(previewed, it)
		}
	}
	s, err := r.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(previewed) != 23 || s.Pushed != 23 || calls.Load() != 0 {
		t.Fatalf("previewed %d, stats %+v, requests %d", len(previewed), s, calls.Load())
	}
	if previewed[0].Op != store.OpAdd || previewed[0].Data["CF_WSH"] == nil {
		t.Fatalf("preview item %+v", previewed[0])
	}
	if _, ok, _ := st.Cursor(context.Background(), push.WatermarkName("p")); ok {
		t.Fatal("dry run moved the watermark")
	}
	sum, _ := st.Summary(context.Background(), "p", 1)
	if sum.Pending != 23 || sum.Accepted != 0 {
		t.Fatalf("dry run wrote the ledger: %+v", sum)
	}
}

func TestRateLimitSpacesBatches(t *testing.T) {
	st := storetest.New(t)
	seed(t, st, 30)
	srv := httptest.NewServer(http.HandlerFunc(acceptAll))
	defer srv.Close()
	r := runner(t, st, srv.URL, nil)
	r.RateLimit = 40 // records/s; burst = one batch of 10
	start := time.Now()
	s, err := r.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// 30 records at 40/s with a burst of 10: at least 20/40 s = 0.5 s.
	if el := time.Since(start); s.Accepted != 30 || el < 450*time.Millisecond {
		t.Fatalf("accepted %d in %s: rate limit not applied", s.Accepted, el)
	}
}

func decodeJSON(r *http.Request, v any) error { return json.NewDecoder(r.Body).Decode(v) }

func errorsIs(err, target error) bool { return errors.Is(err, target) }
