package main

import (
	"os"
	"strings"
	"testing"
)

// After a mapping change, `syncd replay` writes a new version exactly for
// the records whose canonical form changed, opens sealed originals so ID
// numbers survive, and a second replay changes nothing; the next push sends
// the changes as updates.
func TestReplayAfterMappingChange(t *testing.T) {
	items := cleanItems(30)
	for i := range 10 { // ten people with ID numbers, sealed in raw_records
		items[i]["party"].(map[string]any)["id_no"] = "11010519491231002X"
	}
	for i := 20; i < 30; i++ {
		items[i]["sanction"] = "记过"
	}
	e := newEnv(t, items, 10)
	e.mustSyncd("pull", "discipline")
	e.mustSyncd("push", "liaoning")
	if n := e.count("SELECT uniqExact(record_id) FROM {db}.records"); n != 30 {
		t.Fatalf("%d records after pull", n)
	}
	hashes := e.count("SELECT uniqExact(subject_id_hash) FROM {db}.records WHERE subject_id_hash != ''")

	// Nothing changed yet: replay is a no-op.
	out := e.mustSyncd("replay")
	if !strings.Contains(out, "replayed 30, changed 0 (new records 0), unchanged 30") {
		t.Fatalf("replay before any change:\n%s", out)
	}

	// The operator learns 警告 must be reported as 警告处分.
	cfg, err := os.ReadFile(e.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	changed := strings.Replace(string(cfg), "      value_maps:\n", "      value_maps:\n        category: {警告: 警告处分}\n", 1)
	if changed == string(cfg) {
		t.Fatal("could not edit the mapping")
	}
	if err := os.WriteFile(e.cfgPath, []byte(changed), 0o600); err != nil {
		t.Fatal(err)
	}
	out = e.mustSyncd("replay", "--dry-run")
	if !strings.Contains(out, "would change 20") {
		t.Fatalf("dry run:\n%s", out)
	}
	if n := e.count("SELECT count() FROM {db}.records WHERE category = '警告处分'"); n != 0 {
		t.Fatalf("dry run wrote %d versions", n)
	}
	out = e.mustSyncd("replay", "--source", "discipline")
	if !strings.Contains(out, "replayed 30, changed 20 (new records 0), unchanged 10") {
		t.Fatalf("replay after the change:\n%s", out)
	}
	if n := e.count("SELECT count() FROM (SELECT record_id, argMax(category, version) AS c FROM {db}.records GROUP BY record_id) WHERE c = '警告处分'"); n != 20 {
		t.Fatalf("%d current versions say 警告处分, want 20", n)
	}
	// Sealed originals were opened: the people keep their ID hash.
	if n := e.count("SELECT uniqExact(subject_id_hash) FROM {db}.records WHERE subject_id_hash != ''"); n != hashes || n == 0 {
		t.Fatalf("ID hashes %d after replay, %d before", n, hashes)
	}
	if n := e.count("SELECT count() FROM {db}.records WHERE subject_id_masked != '' AND subject_id_hash = ''"); n != 0 {
		t.Fatalf("%d versions lost their ID hash", n)
	}
	out = e.mustSyncd("replay")
	if !strings.Contains(out, "changed 0") {
		t.Fatalf("second replay:\n%s", out)
	}

	// The changes reach the platform as updates.
	e.mustSyncd("push", "liaoning")
	updated := 0
	for _, h := range e.platform.Holdings() {
		if h.Data["CF_CFLB"] == "警告处分" {
			updated++
		}
	}
	if updated != 20 {
		t.Fatalf("platform holds %d records with the new category, want 20", updated)
	}
}
