package sandbox

import (
	"context"
	"database/sql"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/panjin-gov/syncd/internal/testdb"
)

const hrSeedPath = "../../testdata/sandbox/hr.jsonl"

// hrRow is a civil_servant_sanctions row as read back.
type hrRow struct {
	id                                     int64
	name, idNo, employer, uscc, typ, doc   string
	date, org, orgUSCC, reason, remark, at string
}

func hrOpen(t *testing.T) (*HR, *sql.DB) {
	t.Helper()
	_, db := testdb.Postgres(t)
	h := NewHR(db, 1)
	if err := h.Setup(context.Background()); err != nil {
		t.Fatal(err)
	}
	return h, db
}

func hrRows(t *testing.T, db *sql.DB) map[int64]hrRow {
	t.Helper()
	rows, err := db.Query(`SELECT id, name, id_number, employer_name, employer_uscc, sanction_type, decision_doc_no,
		to_char(decision_date, 'YYYY-MM-DD'), decision_org, decision_org_uscc, reason, remark,
		to_char(updated_at, 'YYYY-MM-DD HH24:MI:SS.US') FROM civil_servant_sanctions`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[int64]hrRow{}
	for rows.Next() {
		var r hrRow
		var idNo, emp, uscc, typ, doc, date, org, orgUSCC, reason sql.NullString
		if err := rows.Scan(&r.id, &r.name, &idNo, &emp, &uscc, &typ, &doc, &date, &org, &orgUSCC, &reason, &r.remark, &r.at); err != nil {
			t.Fatal(err)
		}
		r.idNo, r.employer, r.uscc, r.typ, r.doc = idNo.String, emp.String, uscc.String, typ.String, doc.String
		r.date, r.org, r.orgUSCC, r.reason = date.String, org.String, orgUSCC.String, reason.String
		out[r.id] = r
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// hrFold maps full-width ASCII forms to ASCII.
func hrFold(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '！' && r <= '～' {
			return r - 0xFEE0
		}
		return r
	}, s)
}

// hrProblems lists what is wrong with a row, as normalize would see it.
func hrProblems(r hrRow) []string {
	var p []string
	if !validIDNo(hrFold(r.idNo)) {
		p = append(p, "id_number")
	}
	if !validUSCC(hrFold(r.uscc)) {
		p = append(p, "employer_uscc")
	}
	if !slices.Contains(HRSanctionTypes, r.typ) {
		p = append(p, "sanction_type")
	}
	if r.doc == "" {
		p = append(p, "decision_doc_no")
	}
	if r.date == "" {
		p = append(p, "decision_date")
	} else if d, err := time.Parse(time.DateOnly, r.date); err != nil || r.at < r.date || d.After(time.Now()) {
		p = append(p, "decision_date")
	}
	if r.orgUSCC != "" && !validUSCC(r.orgUSCC) {
		p = append(p, "decision_org_uscc")
	}
	return p
}

func TestHRSeed(t *testing.T) {
	h, db := hrOpen(t)
	ctx := context.Background()
	n, err := h.Seed(ctx, hrSeedPath)
	if err != nil {
		t.Fatal(err)
	}
	if n != 42 {
		t.Fatalf("seeded %d rows, want 42", n)
	}
	if err := h.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	if again, err := h.Seed(ctx, hrSeedPath); err != nil || again != 0 {
		t.Fatalf("second seed inserted %d rows (%v), want 0", again, err)
	}
	rows := hrRows(t, db)
	if len(rows) != 30 {
		t.Fatalf("%d sanctions, want 30", len(rows))
	}
	dirty := map[int64][]string{1006: {"id_number"}, 1017: {"id_number"}}
	for id, r := range rows {
		got := hrProblems(r)
		if !slices.Equal(got, dirty[id]) {
			t.Errorf("sanction %d: problems %v, want %v", id, got, dirty[id])
		}
		if r.typ == "" || r.org == "" || r.reason == "" || !strings.Contains(r.employer, "盘") {
			t.Errorf("sanction %d is incomplete: %+v", id, r)
		}
	}
	// Full-width forms that fold to valid codes.
	if r := rows[1011]; r.uscc == hrFold(r.uscc) {
		t.Errorf("1011 should hold a full-width employer_uscc, has %s", r.uscc)
	}
	if r := rows[1023]; r.idNo == hrFold(r.idNo) || r.doc == hrFold(r.doc) {
		t.Errorf("1023 should hold full-width forms, has %s %s", r.idNo, r.doc)
	}
	// 1014 is the discipline system's jc-2026-0115.
	items, err := LoadSeed("../../testdata/sandbox/discipline.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	var jc map[string]any
	for _, it := range items {
		if it["id"] == "jc-2026-0115" {
			jc = it
		}
	}
	party, _ := jc["party"].(map[string]any)
	if r := rows[1014]; jc == nil || r.doc != jc["case_no"] || r.idNo != party["id_no"] || r.typ != jc["sanction"] ||
		r.employer != jc["employer"] || r.date != "2026-03-07" {
		t.Errorf("1014 %+v is not the discipline system's jc-2026-0115 %v", r, jc)
	}
	// 1030 corrects 1008.
	orig, corr := rows[1008], rows[1030]
	if corr.doc != orig.doc || corr.idNo != orig.idNo || corr.at <= orig.at || corr.typ == orig.typ ||
		!strings.HasPrefix(corr.remark, "更正") {
		t.Errorf("1030 %+v does not correct 1008 %+v", corr, orig)
	}
	if rows[1012].at != rows[1013].at {
		t.Errorf("1012 and 1013 should share updated_at: %s %s", rows[1012].at, rows[1013].at)
	}
	// Every 处分记录 in 诚信档案 points at a sanction held, of the same person.
	var files, linked int
	if err := db.QueryRow(`SELECT count(*), count(s.id) FROM integrity_files f
		LEFT JOIN civil_servant_sanctions s ON s.id = f.sanction_id AND s.id_number = f.id_number`).Scan(&files, &linked); err != nil {
		t.Fatal(err)
	}
	if files != 12 || linked != 6 {
		t.Fatalf("integrity_files: %d rows, %d linked; want 12, 6", files, linked)
	}
}

func TestHRAddAndCorrect(t *testing.T) {
	h, db := hrOpen(t)
	ctx := context.Background()
	if _, err := h.Seed(ctx, hrSeedPath); err != nil {
		t.Fatal(err)
	}
	before := hrRows(t, db)
	last := ""
	for _, r := range before {
		last = max(last, r.at)
	}
	var added []int64
	for range 3 {
		id, err := h.Add(ctx)
		if err != nil {
			t.Fatal(err)
		}
		added = append(added, id)
	}
	id, err := h.Correct(ctx)
	if err != nil {
		t.Fatal(err)
	}
	after := hrRows(t, db)
	if len(after) != len(before)+3 {
		t.Fatalf("%d sanctions after 3 adds, want %d", len(after), len(before)+3)
	}
	for _, a := range added {
		r := after[a]
		if p := hrProblems(r); len(p) != 0 {
			t.Errorf("added %d has problems %v: %+v", a, p, r)
		}
		if r.at <= last {
			t.Errorf("added %d stamped %s, not after %s", a, r.at, last)
		}
		last = r.at
	}
	c := after[id]
	if c.at <= last || !strings.Contains(c.reason, "【更正") || !strings.HasPrefix(c.remark, "更正") {
		t.Errorf("corrected %d: %+v (last stamp %s)", id, c, last)
	}
	if b, ok := before[id]; ok && len(hrProblems(b)) == 0 && len(hrProblems(c)) != 0 {
		t.Errorf("correcting a clean row made it dirty: %v", hrProblems(c))
	}
	// Correcting twice keeps one note.
	h2 := NewHR(db, 1)
	h2.steps = 100
	for range 30 {
		if _, err := h2.Correct(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for id, r := range hrRows(t, db) {
		if strings.Count(r.reason, "【更正") > 1 {
			t.Errorf("sanction %d: %s", id, r.reason)
		}
	}
	var files int
	db.QueryRow(`SELECT count(*) FROM integrity_files WHERE sanction_id = ANY($1)`, added).Scan(&files)
	if files != 3 {
		t.Errorf("%d 诚信档案 entries for the added sanctions, want 3", files)
	}
}

func TestHRFaultMakesRowsMalformed(t *testing.T) {
	h, db := hrOpen(t)
	ctx := context.Background()
	if _, err := h.Seed(ctx, hrSeedPath); err != nil {
		t.Fatal(err)
	}
	h.SetFault(HRMalformed)
	if h.Fault() != HRMalformed {
		t.Fatal("fault not set")
	}
	var ids []int64
	for range hrMalformations {
		id, err := h.Add(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	cid, err := h.Correct(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ids = append(ids, cid)
	h.SetFault(HRHealthy)
	clean, err := h.Add(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rows := hrRows(t, db)
	seen := map[string]bool{}
	for _, id := range ids {
		p := hrProblems(rows[id])
		if len(p) == 0 {
			t.Errorf("row %d written under HRMalformed is clean: %+v", id, rows[id])
		}
		for _, k := range p {
			seen[k] = true
		}
	}
	for _, k := range []string{"id_number", "decision_doc_no", "sanction_type", "decision_date", "employer_uscc"} {
		if !seen[k] {
			t.Errorf("no malformed %s among %v", k, seen)
		}
	}
	if p := hrProblems(rows[clean]); len(p) != 0 {
		t.Errorf("row %d written after the fault was cleared has problems %v", clean, p)
	}
}

func TestHRStampsAfterEverything(t *testing.T) {
	h, db := hrOpen(t)
	ctx := context.Background()
	// A clock behind the data: stamps still move forward, 1ms apart.
	h.now = func() time.Time { return time.Date(2020, 1, 1, 0, 0, 0, 0, beijing) }
	if _, err := h.Seed(ctx, hrSeedPath); err != nil {
		t.Fatal(err)
	}
	a, _ := h.Add(ctx)
	b, _ := h.Add(ctx)
	rows := hrRows(t, db)
	if rows[a].at != "2026-09-15 14:32:11.732000" || rows[b].at != "2026-09-15 14:32:11.733000" {
		t.Fatalf("stamps %s, %s", rows[a].at, rows[b].at)
	}
}
