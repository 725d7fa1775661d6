package main

import (
	"strings"
	"testing"
)

// A person's ID number that no mapping names — inside the facts text, in an
// extra field — is masked in the stored raw payload (the original kept
// sealed), in the canonical record and in what the platform receives.
func TestIDNumbersOutsideMappedFieldsAreMasked(t *testing.T) {
	const id = "11010519491231002X"
	items := cleanItems(3)
	items[0]["facts"] = "当事人王某（身份证号" + id + "）在工作中不负责任。"
	items[1]["witness_id"] = id
	e := newEnv(t, items, 10)
	e.mustSyncd("pull", "discipline")
	e.mustSyncd("push", "liaoning")

	e.assertNoClearIDs("raw_records")
	if n := e.count("SELECT count() FROM {db}.records WHERE position(facts, '" + id + "') > 0"); n != 0 {
		t.Fatalf("%d records hold the ID number in clear in facts", n)
	}
	if n := e.count("SELECT count() FROM {db}.records WHERE position(facts, '110105********002X') > 0"); n != 1 {
		t.Fatalf("masked ID not in facts (%d records)", n)
	}
	for _, h := range e.platform.Holdings() {
		for k, v := range h.Data {
			if s, _ := v.(string); strings.Contains(s, id) {
				t.Fatalf("platform received the ID number in clear in %s", k)
			}
		}
	}
	if len(e.platform.Holdings()) != 3 {
		t.Fatalf("platform holds %d records", len(e.platform.Holdings()))
	}
}
