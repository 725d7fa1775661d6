package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// tieItems has runs of equal updated_at, one instant written in two offsets,
// and ids that are not in insertion order.
func tieItems() []map[string]any {
	stamps := []string{
		"2026-03-01T10:00:00+08:00", "2026-03-01T10:00:00+08:00", "2026-03-01T02:00:00Z", // one instant
		"2026-03-01T10:00:00.5+08:00",
		"2026-03-02T09:00:00+08:00", "2026-03-02T09:00:00+08:00", "2026-03-02T09:00:00+08:00",
		"2026-03-02T09:00:00+08:00", "2026-03-02T09:00:00+08:00", "2026-03-02T09:00:00+08:00",
		"2026-03-02T09:00:00+08:00", "2026-03-02T09:00:00+08:00", // a run longer than a page of 7
		"2026-02-28T23:59:59.999+08:00", // out of file order
		"2026-03-03T08:00:00+08:00", "2026-03-04T08:00:00+08:00", "2026-03-04T08:00:00+08:00",
		"2026-03-05T08:00:00+08:00",
	}
	ids := []string{"m", "c", "x", "a", "q", "b", "z", "k", "d", "y", "e", "p", "r", "f", "h", "g", "n"}
	var items []map[string]any
	for i, s := range stamps {
		items = append(items, map[string]any{"id": ids[i], "updated_at": s, "case_no": "盘纪处〔2026〕" + ids[i] + "号"})
	}
	return items
}

// expectedOrder sorts items by (instant, id), as the API must.
func expectedOrder(t *testing.T, items []map[string]any) []string {
	t.Helper()
	type k struct {
		at time.Time
		id string
	}
	var ks []k
	for _, it := range items {
		at, err := time.Parse(time.RFC3339Nano, it["updated_at"].(string))
		if err != nil {
			t.Fatal(err)
		}
		ks = append(ks, k{at, it["id"].(string)})
	}
	slices.SortFunc(ks, func(a, b k) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	var out []string
	for _, x := range ks {
		out = append(out, x.id)
	}
	return out
}

// walk pages through the whole source from the given cursor.
func walk(t *testing.T, base, since, afterID string, limit int) (ids []string, lastSince, lastID string) {
	t.Helper()
	for pages := 0; ; pages++ {
		if pages > 10000 {
			t.Fatal("pagination does not end")
		}
		status, p, body := getDecisions(t, base, since, afterID, limit, "")
		if status != http.StatusOK {
			t.Fatalf("status %d: %s", status, body)
		}
		if len(p.Items) > limit {
			t.Fatalf("page of %d items for limit %d", len(p.Items), limit)
		}
		for _, it := range p.Items {
			ids = append(ids, it["id"].(string))
		}
		if n := len(p.Items); n > 0 {
			since, afterID = p.Items[n-1]["updated_at"].(string), p.Items[n-1]["id"].(string)
		}
		if !p.HasMore {
			return ids, since, afterID
		}
		if len(p.Items) == 0 {
			t.Fatal("has_more with an empty page")
		}
	}
}

func TestDecisionsPaginationWithTies(t *testing.T) {
	seed, err := LoadSeed("../../testdata/sandbox/discipline.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		items []map[string]any
	}{
		{"ties", tieItems()},
		{"seed", seed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startServer(t, NewDiscipline(tc.items).Handler())
			got, _, _ := walk(t, srv.URL, "", "", 7)
			want := expectedOrder(t, tc.items)
			if !slices.Equal(got, want) {
				t.Fatalf("walked\n%v\nwant\n%v", got, want)
			}
			seen := map[string]int{}
			for _, id := range got {
				seen[id]++
			}
			for id, n := range seen {
				if n != 1 {
					t.Errorf("item %s seen %d times", id, n)
				}
			}
		})
	}
}

func TestDecisionsCursorIsExclusive(t *testing.T) {
	srv := startServer(t, NewDiscipline(tieItems()).Handler())
	// The same instant written in another offset selects the same position.
	_, p, _ := getDecisions(t, srv.URL, "2026-03-01T02:00:00Z", "m", 100, "")
	var ids []string
	for _, it := range p.Items {
		ids = append(ids, it["id"].(string))
	}
	if len(ids) == 0 || ids[0] != "x" {
		t.Fatalf("after (10:00+08:00, m) got %v, want x first", ids)
	}
	if slices.Contains(ids, "m") || slices.Contains(ids, "c") {
		t.Fatalf("cursor not exclusive: %v", ids)
	}
}

func TestDecisionsDefaultAndMaxLimit(t *testing.T) {
	var items []map[string]any
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, beijing)
	for i := range 1500 {
		items = append(items, map[string]any{"id": fmt.Sprintf("%04d", i), "updated_at": at.Add(time.Duration(i) * time.Second).Format(time.RFC3339Nano)})
	}
	srv := startServer(t, NewDiscipline(items).Handler())
	if _, p, _ := getDecisions(t, srv.URL, "", "", 0, ""); len(p.Items) != DefaultLimit || !p.HasMore {
		t.Errorf("default: %d items has_more %v", len(p.Items), p.HasMore)
	}
	if _, p, _ := getDecisions(t, srv.URL, "", "", 5000, ""); len(p.Items) != MaxLimit || !p.HasMore {
		t.Errorf("limit 5000: %d items has_more %v", len(p.Items), p.HasMore)
	}
	if _, p, _ := getDecisions(t, srv.URL, "", "", 1500, ""); len(p.Items) != MaxLimit {
		t.Errorf("limit 1500: %d items", len(p.Items))
	}
	last := items[1499]
	if _, p, _ := getDecisions(t, srv.URL, last["updated_at"].(string), last["id"].(string), 10, ""); len(p.Items) != 0 || p.HasMore {
		t.Errorf("past the end: %d items has_more %v", len(p.Items), p.HasMore)
	}
}

func TestDecisionsBadParams(t *testing.T) {
	srv := startServer(t, NewDiscipline(tieItems()).Handler())
	for _, q := range []string{
		"updated_since=yesterday",
		"updated_since=2026-03-01",                // a date is not an instant
		"updated_since=2026-03-01T10:00:00 08:00", // '+' not URL-encoded
		"updated_since=2026-03-01T10:00:00%2B08:00&limit=0",
		"limit=-3",
		"limit=ten",
		"limit=1.5",
	} {
		resp, err := http.Get(srv.URL + "/api/v1/decisions?" + strings.ReplaceAll(q, " ", "%20"))
		if err != nil {
			t.Fatal(err)
		}
		var e struct{ Error string }
		err = json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || err != nil || e.Error == "" {
			t.Errorf("%s: status %d, error %q (%v); want 400 with a JSON error", q, resp.StatusCode, e.Error, err)
		}
	}
	resp, err := http.Post(srv.URL+"/api/v1/decisions", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST decisions: status %d, want 405", resp.StatusCode)
	}
}

func TestDecisionsAuth(t *testing.T) {
	d := NewDiscipline(tieItems())
	d.RequireToken("s3cret")
	srv := startServer(t, d.Handler())
	for _, tok := range []string{"", "wrong"} {
		if status, _, _ := getDecisions(t, srv.URL, "", "", 7, tok); status != http.StatusUnauthorized {
			t.Errorf("token %q: status %d, want 401", tok, status)
		}
	}
	if status, p, _ := getDecisions(t, srv.URL, "", "", 7, "s3cret"); status != http.StatusOK || len(p.Items) != 7 {
		t.Errorf("right token: status %d, %d items", status, len(p.Items))
	}
	// Admin endpoints are the sandbox's own and stay open.
	resp, err := http.Get(srv.URL + "/admin/decisions/count")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("admin count: status %d", resp.StatusCode)
	}
}

func TestDecisionsFailRate(t *testing.T) {
	d := NewDiscipline(tieItems())
	srv := startServer(t, d.Handler())
	d.SetFaults(Faults{FailRate: 1})
	for range 5 {
		if status, _, _ := getDecisions(t, srv.URL, "", "", 7, ""); status != http.StatusInternalServerError {
			t.Fatalf("FailRate 1: status %d, want 500", status)
		}
	}
	// A share: the same seed gives the same sequence of answers.
	run := func() []int {
		d.SetFaults(Faults{FailRate: 0.5, Seed: 42})
		var s []int
		for range 20 {
			status, _, _ := getDecisions(t, srv.URL, "", "", 7, "")
			s = append(s, status)
		}
		return s
	}
	a, b := run(), run()
	if !slices.Equal(a, b) {
		t.Errorf("same seed, different answers:\n%v\n%v", a, b)
	}
	if !slices.Contains(a, 200) || !slices.Contains(a, 500) {
		t.Errorf("FailRate 0.5 gave %v", a)
	}
	d.SetFaults(Faults{})
	if status, _, _ := getDecisions(t, srv.URL, "", "", 7, ""); status != http.StatusOK {
		t.Errorf("healthy again: status %d", status)
	}
}

func TestDecisionsDelay(t *testing.T) {
	d := NewDiscipline(tieItems())
	srv := startServer(t, d.Handler())
	d.SetFaults(Faults{Delay: 150 * time.Millisecond})
	start := time.Now()
	if status, _, _ := getDecisions(t, srv.URL, "", "", 7, ""); status != http.StatusOK {
		t.Fatalf("status %d", status)
	}
	if el := time.Since(start); el < 150*time.Millisecond {
		t.Errorf("answered after %v, want at least 150ms", el)
	}
	// A client that gives up first sees a timeout, not an answer.
	c := &http.Client{Timeout: 50 * time.Millisecond}
	if _, err := c.Get(srv.URL + "/api/v1/decisions"); err == nil {
		t.Error("client with a 50ms timeout got an answer")
	}
}

func TestDecisionsDrop(t *testing.T) {
	d := NewDiscipline(tieItems())
	srv := startServer(t, d.Handler())
	d.SetFaults(Faults{DropRate: 1})
	resp, err := http.Get(srv.URL + "/api/v1/decisions?limit=10")
	if err != nil {
		t.Fatalf("headers should arrive before the drop: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(resp.Body)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("read: %v after %d bytes, want unexpected EOF", err, len(body))
	}
	if len(body) == 0 || int64(len(body)) >= resp.ContentLength {
		t.Errorf("got %d of %d bytes, want about half", len(body), resp.ContentLength)
	}
	if json.Valid(body) {
		t.Error("half a body should not be valid JSON")
	}
}

func TestDecisionsUpsertSortsLast(t *testing.T) {
	d := NewDiscipline(tieItems())
	now := time.Date(2026, 3, 4, 8, 0, 0, 0, beijing) // before the newest seed item
	d.now = func() time.Time { return now }
	srv := startServer(t, d.Handler())
	_, since, after := walk(t, srv.URL, "", "", 7)

	d.Upsert(map[string]any{"id": "a", "facts": "corrected"}) // a correction of an early item
	d.Upsert(map[string]any{"id": "new-1"})
	if d.Len() != 18 {
		t.Fatalf("Len %d, want 18", d.Len())
	}
	got, _, _ := walk(t, srv.URL, since, after, 7)
	if !slices.Equal(got, []string{"a", "new-1"}) {
		t.Fatalf("after the old cursor got %v, want [a new-1]", got)
	}
	all, _, _ := walk(t, srv.URL, "", "", 7)
	if len(all) != 18 || all[16] != "a" || all[17] != "new-1" {
		t.Fatalf("full walk %v", all)
	}
	_, p, _ := getDecisions(t, srv.URL, since, after, 7, "")
	if p.Items[0]["updated_at"] != "2026-03-05T08:00:00.001+08:00" || p.Items[1]["updated_at"] != "2026-03-05T08:00:00.002+08:00" {
		t.Errorf("upsert stamps %v, %v: want last+1ms, last+2ms", p.Items[0]["updated_at"], p.Items[1]["updated_at"])
	}
	if p.Items[0]["facts"] != "corrected" {
		t.Errorf("correction not served: %v", p.Items[0])
	}
}

func TestDisciplineAdmin(t *testing.T) {
	d := NewDiscipline(tieItems())
	srv := startServer(t, d.Handler())

	status, body := postJSON(t, srv.URL+"/admin/faults", "", []byte(`{"fail_rate":1,"delay":"20ms","seed":3}`))
	if status != http.StatusOK {
		t.Fatalf("set faults: %d %s", status, body)
	}
	if f := d.Faults(); f.FailRate != 1 || f.Delay != 20*time.Millisecond || f.Seed != 3 {
		t.Errorf("faults %+v", f)
	}
	if status, _, _ := getDecisions(t, srv.URL, "", "", 7, ""); status != http.StatusInternalServerError {
		t.Errorf("status %d, want 500", status)
	}
	for _, bad := range []string{`{"fail_rate":2}`, `{"delay":"soon"}`, `{"flail_rate":1}`, `not json`} {
		if status, _ := postJSON(t, srv.URL+"/admin/faults", "", []byte(bad)); status != http.StatusBadRequest {
			t.Errorf("faults %s: status %d, want 400", bad, status)
		}
	}
	if status, _ := postJSON(t, srv.URL+"/admin/faults", "", []byte(`{}`)); status != http.StatusOK {
		t.Errorf("clear faults: %d", status)
	}

	status, body = postJSON(t, srv.URL+"/admin/decisions", "", map[string]any{"id": "added", "fine_yuan": json.Number("3000.50")})
	if status != http.StatusOK {
		t.Fatalf("upsert: %d %s", status, body)
	}
	if !strings.Contains(string(body), `"fine_yuan":3000.50`) {
		t.Errorf("numbers not kept as sent: %s", body)
	}
	if status, _ := postJSON(t, srv.URL+"/admin/decisions", "", map[string]any{"case_no": "x"}); status != http.StatusBadRequest {
		t.Errorf("upsert without id: status %d, want 400", status)
	}
	resp, err := http.Get(srv.URL + "/admin/decisions/count")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var c struct{ Count int }
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil || c.Count != 18 {
		t.Errorf("count %d (%v), want 18", c.Count, err)
	}
}

func TestNewDisciplineOddItems(t *testing.T) {
	d := NewDiscipline([]map[string]any{
		{"id": "a", "updated_at": "2026-01-01T00:00:00+08:00", "v": 1},
		{"id": "a", "updated_at": "2026-01-02T00:00:00+08:00", "v": 2}, // later wins
		{"updated_at": "2026-01-03T00:00:00+08:00"},                    // no id
		{"id": "b", "updated_at": "last tuesday"},                      // stamped as by Upsert
	})
	if d.Len() != 3 {
		t.Fatalf("Len %d, want 3", d.Len())
	}
	srv := startServer(t, d.Handler())
	_, p, _ := getDecisions(t, srv.URL, "", "", 10, "")
	var ids []string
	for _, it := range p.Items {
		ids = append(ids, it["id"].(string))
	}
	if !slices.Equal(ids, []string{"a", "auto-1", "b"}) {
		t.Fatalf("ids %v", ids)
	}
	if p.Items[0]["v"] != float64(2) {
		t.Errorf("duplicate id: kept %v, want the later", p.Items[0])
	}
}
