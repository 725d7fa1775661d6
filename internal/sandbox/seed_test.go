package sandbox

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

const seedPath = "../../testdata/sandbox/discipline.jsonl"

// The seed's deliberate flaws, as documented in testdata/sandbox/README.md.
// Every other item must be clean.
var (
	seedDirty = map[string]string{
		"jc-2026-0106": "missing case_no",
		"jc-2026-0113": "bad decision_date",
		"jc-2026-0120": "bad credit_code check",
		"jc-2026-0128": "bad id_no check",
		"jc-2026-0134": "full-width codes",
		"jc-2026-0141": "future decision_date",
		"jc-2026-0148": "unknown record_type",
		"jc-2026-0155": "non-numeric fine_yuan",
	}
	seedDuplicates  = map[string]string{"jc-2026-0110": "jc-2026-0103", "jc-2026-0125": "jc-2026-0103", "jc-2026-0144": "jc-2026-0136"}
	seedCorrections = map[string]string{"jc-2026-0151": "jc-2026-0107", "jc-2026-0160": "jc-2026-0138"}
)

var (
	sanctions = map[string][]string{
		"纪律处分": {"警告", "记过", "记大过", "降级", "撤职", "开除"},
		"问责处理": {"通报", "诫勉", "组织调整", "责令检查"},
	}
	regions      = []string{"211100", "211102", "211103", "211104", "211122"}
	caseNoRe     = regexp.MustCompile(`^盘(纪|监|人社)(处|问责)〔2026〕[1-9][0-9]*号$`)
	fineRe       = regexp.MustCompile(`^([0-9]+|[0-9]{1,3}(,[0-9]{3})+)(\.[0-9]+)?$`)
	dateLayouts  = []string{time.DateOnly, "20060102", "2006年1月2日", "2006/1/2"}
	bracketFolds = strings.NewReplacer("[", "〔", "]", "〕", "（", "〔", "）", "〕", "(", "〔", ")", "〕", "［", "〔", "］", "〕", "【", "〔", "】", "〕")
)

// foldWidth maps full-width ASCII forms to ASCII.
func foldWidth(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '！' && r <= '～' {
			return r - 0xFEE0
		}
		return r
	}, s)
}

func normalizeCaseNo(s string) string { return bracketFolds.Replace(foldWidth(s)) }

// itemProblems lists what is wrong with one source item, in the words of
// seedDirty. A clean item has none.
func itemProblems(it map[string]any) []string {
	var out []string
	add := func(p string) {
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	str := func(m map[string]any, k string) string { s, _ := m[k].(string); return s }

	at, err := time.Parse(time.RFC3339Nano, str(it, "updated_at"))
	if err != nil || !strings.HasSuffix(str(it, "updated_at"), "+08:00") {
		add("bad updated_at")
	}
	if cn := str(it, "case_no"); cn == "" {
		add("missing case_no")
	} else if !caseNoRe.MatchString(normalizeCaseNo(cn)) {
		add("bad case_no " + cn)
	}
	rt := str(it, "record_type")
	if allowed, ok := sanctions[rt]; !ok {
		add("unknown record_type")
	} else if !slices.Contains(allowed, str(it, "sanction")) {
		add("sanction " + str(it, "sanction") + " not for " + rt)
	}
	var dd time.Time
	for _, l := range dateLayouts {
		if dd, err = time.ParseInLocation(l, str(it, "decision_date"), beijing); err == nil {
			break
		}
	}
	switch {
	case err != nil:
		add("bad decision_date")
	case dd.After(at):
		add("future decision_date")
	}
	code := func(s string, valid func(string) bool, name string) {
		if f := foldWidth(s); f != s {
			add("full-width codes")
			s = f
		}
		if !valid(s) {
			add("bad " + name + " check")
		}
	}
	party, _ := it["party"].(map[string]any)
	switch str(party, "type") {
	case "公务员":
		code(str(party, "id_no"), validIDNo, "id_no")
		if _, ok := party["credit_code"]; ok || str(it, "employer") == "" {
			add("person with credit_code or without employer")
		}
	case "机关", "参公事业单位":
		code(str(party, "credit_code"), validUSCC, "credit_code")
		if _, ok := party["id_no"]; ok {
			add("organisation with id_no")
		}
	default:
		add("bad party type")
	}
	if str(party, "name") == "" {
		add("no party name")
	}
	code(str(it, "authority_code"), validUSCC, "authority_code")
	if !slices.Contains([]string{"中共盘锦市纪律检查委员会", "盘锦市监察委员会", "盘锦市人力资源和社会保障局"}, str(it, "authority")) {
		add("unknown authority")
	}
	if !slices.Contains(regions, str(it, "region")) {
		add("bad region")
	}
	if s := str(it, "status"); s != "有效" && s != "撤销" {
		add("bad status")
	}
	for _, k := range []string{"id", "violation", "facts", "basis"} {
		if str(it, k) == "" {
			add("no " + k)
		}
	}
	switch f := it["fine_yuan"].(type) {
	case nil, json.Number:
	case string:
		if !fineRe.MatchString(f) {
			add("non-numeric fine_yuan")
		}
	default:
		add(fmt.Sprintf("fine_yuan of type %T", f))
	}
	return out
}

func TestSeedFile(t *testing.T) {
	items, err := LoadSeed(seedPath)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) < 50 || len(items) > 70 {
		t.Errorf("%d items, want about 60", len(items))
	}
	byID := map[string]map[string]any{}
	var prev time.Time
	ties, revoked := 0, 0
	for i, it := range items {
		id, _ := it["id"].(string)
		if _, dup := byID[id]; dup || id == "" {
			t.Errorf("line %d: id %q empty or repeated", i+1, id)
		}
		byID[id] = it
		got := itemProblems(it)
		want := []string(nil)
		if p, ok := seedDirty[id]; ok {
			want = []string{p}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: problems %q, want %q", id, got, want)
		}
		at, _ := time.Parse(time.RFC3339Nano, it["updated_at"].(string))
		if at.Before(time.Date(2026, 1, 1, 0, 0, 0, 0, beijing)) || !at.Before(time.Date(2026, 12, 1, 0, 0, 0, 0, beijing)) || at.After(time.Now()) {
			t.Errorf("%s: updated_at %v outside 2026-01..2026-11 or in the future", id, at)
		}
		switch {
		case at.Equal(prev):
			ties++
		case at.Before(prev):
			t.Errorf("%s: updated_at goes back in file order", id)
		}
		prev = at
		if it["status"] == "撤销" {
			revoked++
		}
	}
	if ties < 3 {
		t.Errorf("%d equal updated_at pairs, want a few to exercise the id tie-break", ties)
	}
	if revoked < 2 {
		t.Errorf("%d revoked items, want a few", revoked)
	}
	for id := range seedDirty {
		if byID[id] == nil {
			t.Errorf("documented dirty item %s is not in the seed", id)
		}
	}

	later := func(a, b map[string]any) bool {
		ta, _ := time.Parse(time.RFC3339Nano, a["updated_at"].(string))
		tb, _ := time.Parse(time.RFC3339Nano, b["updated_at"].(string))
		return ta.After(tb)
	}
	for dupID, origID := range seedDuplicates {
		dup, orig := byID[dupID], byID[origID]
		if dup == nil || orig == nil {
			t.Errorf("duplicate %s of %s missing", dupID, origID)
			continue
		}
		if dup["case_no"] == orig["case_no"] || normalizeCaseNo(dup["case_no"].(string)) != normalizeCaseNo(orig["case_no"].(string)) {
			t.Errorf("duplicate %s: case_no %v vs %v, want another bracket form of the same number", dupID, dup["case_no"], orig["case_no"])
		}
		a, b := maps.Clone(dup), maps.Clone(orig)
		for _, k := range []string{"id", "updated_at", "case_no"} {
			delete(a, k)
			delete(b, k)
		}
		if !reflect.DeepEqual(a, b) || !later(dup, orig) {
			t.Errorf("duplicate %s is not the same decision as %s, or not later", dupID, origID)
		}
	}
	for corrID, origID := range seedCorrections {
		corr, orig := byID[corrID], byID[origID]
		if corr == nil || orig == nil {
			t.Errorf("correction %s of %s missing", corrID, origID)
			continue
		}
		if corr["case_no"] != orig["case_no"] || corr["facts"] == orig["facts"] || !reflect.DeepEqual(corr["party"], orig["party"]) || !later(corr, orig) {
			t.Errorf("correction %s: want the case_no and party of %s, other facts, later updated_at", corrID, origID)
		}
	}

	// The case numbers mix bracket forms and full-width digits.
	forms := map[string]bool{}
	fullWidth := false
	for _, it := range items {
		cn, _ := it["case_no"].(string)
		for _, b := range []string{"〔", "[", "（"} {
			if strings.Contains(cn, b) {
				forms[b] = true
			}
		}
		fullWidth = fullWidth || foldWidth(cn) != cn
	}
	if len(forms) < 3 || !fullWidth {
		t.Errorf("case_no forms %v, full-width digits %v: want variety", forms, fullWidth)
	}
}
