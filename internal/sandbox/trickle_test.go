package sandbox

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestTrickle(t *testing.T) {
	items, err := LoadSeed(seedPath)
	if err != nil {
		t.Fatal(err)
	}
	d := NewDiscipline(items)
	now := time.Date(2026, 11, 20, 10, 0, 0, 0, beijing)
	d.now = func() time.Time { return now }
	srv := startServer(t, d.Handler())
	_, since, after := walk(t, srv.URL, "", "", 100)

	tr := NewTrickle(d, 1)
	tr.now = d.now
	var touched []string
	corrections, added := 0, 0
	for range 40 {
		id, corr := tr.Step()
		touched = append(touched, id)
		if corr {
			corrections++
		} else {
			added++
		}
	}
	if corrections == 0 || added == 0 {
		t.Fatalf("%d corrections, %d new: want both", corrections, added)
	}
	if d.Len() != len(items)+added {
		t.Errorf("Len %d, want %d", d.Len(), len(items)+added)
	}
	// Everything touched comes after the old cursor, newest change last.
	got, _, _ := walk(t, srv.URL, since, after, 7)
	var want []string
	for i, id := range touched {
		if !slices.Contains(touched[i+1:], id) {
			want = append(want, id)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("after the cursor got %v, want %v", got, want)
	}
	// New decisions are clean, and name the seed's agencies with the seed's codes.
	seedOrgs := map[string]any{}
	for _, it := range items {
		if p := it["party"].(map[string]any); p["credit_code"] != nil {
			seedOrgs[p["name"].(string)] = p["credit_code"]
		}
	}
	for _, id := range touched {
		it := d.get(id)
		if strings.HasPrefix(id, "jc-2026-0") {
			if f := it["facts"].(string); !strings.Contains(f, "【更正") || strings.Count(f, "【更正") != 1 {
				t.Errorf("%s: corrected facts %q", id, f)
			}
			continue
		}
		if p := itemProblems(it); len(p) > 0 {
			t.Errorf("new decision %s: %v\n%v", id, p, it)
		}
		if p := it["party"].(map[string]any); p["credit_code"] != nil && seedOrgs[p["name"].(string)] != p["credit_code"] {
			t.Errorf("%s: %s has code %v, the seed says %v", id, p["name"], p["credit_code"], seedOrgs[p["name"].(string)])
		}
	}
}

func TestTrickleEmptySource(t *testing.T) {
	d := NewDiscipline(nil)
	tr := NewTrickle(d, 2)
	for range 5 {
		if id, corr := tr.Step(); id == "" || (d.Len() == 0 && corr) {
			t.Fatalf("step gave %q %v", id, corr)
		}
	}
	for _, id := range d.ids() {
		if p := itemProblems(d.get(id)); len(p) > 0 && !slices.Equal(p, []string{"unknown authority"}) {
			t.Errorf("%s: %v", id, p)
		}
	}
}
