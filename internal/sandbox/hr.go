package sandbox

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"
)

// HR simulates the human-resources and social-security (人社) source system
// as syncd's SQL connector meets it: two tables in a PostgreSQL database,
//
//   - civil_servant_sanctions: 公务员处分 (警告/记过/记大过/降级/撤职/开除) of Panjin
//     civil servants, one row per decision, keyed by a bigint id;
//   - integrity_files: 诚信档案 entries (处分记录 linking a sanction by
//     sanction_id, 诚信承诺, 表彰奖励);
//
// both with updated_at a zone-less timestamp holding the Beijing wall clock,
// as such systems keep it. Seed loads testdata/sandbox/hr.jsonl; Add and
// Correct make a trickle of new and amended rows, each stamped after
// everything already held; SetFault(HRMalformed) makes the rows they write
// malformed.
//
// The seed's dirty rows, on purpose (all others carry valid GB 11643 ID
// numbers and GB 32100 codes):
//
//   - 1006, 1017: id_number with a wrong check character;
//   - 1011: employer_uscc in full-width characters (valid once folded);
//   - 1023: id_number ending in a full-width Ｘ and a decision_doc_no with
//     full-width digits (both valid once folded);
//   - 1014: the same decision as the discipline system's jc-2026-0115
//     (盘人社处〔2026〕3号, 孙某), so the two sources must make one record;
//   - 1030: a correction of 1008 (same decision_doc_no and person, amended
//     reason and sanction type, remark 更正…, later updated_at);
//   - 1012 and 1013 share one updated_at (the keyset tie-break).
//
// HR is safe for concurrent use.
type HR struct {
	db  *sql.DB
	now func() time.Time

	mu        sync.Mutex
	rng       *rand.Rand
	fault     HRFault
	steps     int
	malformed int
}

// HRFault says how the rows HR's trickle writes are broken.
type HRFault string

// HR faults.
const (
	HRHealthy HRFault = ""
	// HRMalformed makes each row Add or Correct writes malformed, in turn: a
	// 16-digit id_number, an empty decision_doc_no, a sanction type that is
	// not a 政务处分 (严重警告), no decision_date, a decision_date in the
	// future, an employer_uscc with letters outside the code's set.
	HRMalformed HRFault = "malformed"
)

// hrMalformations is how many kinds HRMalformed cycles through.
const hrMalformations = 6

// HRSanctionTypes are the 处分 of civil servants, mildest first.
var HRSanctionTypes = []string{"警告", "记过", "记大过", "降级", "撤职", "开除"}

const hrSchema = `
CREATE TABLE IF NOT EXISTS civil_servant_sanctions (
	id                bigint PRIMARY KEY,
	name              text NOT NULL,
	id_number         text,
	employer_name     text,
	employer_uscc     text,
	sanction_type     text,
	decision_doc_no   text,
	decision_date     date,
	decision_org      text,
	decision_org_uscc text,
	reason            text,
	remark            text NOT NULL DEFAULT '',
	updated_at        timestamp(6) NOT NULL
);
CREATE INDEX IF NOT EXISTS civil_servant_sanctions_updated ON civil_servant_sanctions (updated_at, id);
COMMENT ON TABLE civil_servant_sanctions IS '公务员处分';
CREATE TABLE IF NOT EXISTS integrity_files (
	id            bigint PRIMARY KEY,
	name          text NOT NULL,
	id_number     text,
	employer_name text,
	employer_uscc text,
	record_type   text NOT NULL,
	content       text,
	record_date   date,
	sanction_id   bigint,
	updated_at    timestamp(6) NOT NULL
);
CREATE INDEX IF NOT EXISTS integrity_files_updated ON integrity_files (updated_at, id);
COMMENT ON TABLE integrity_files IS '诚信档案';
`

// NewHR returns an HR system over db, a PostgreSQL database, whose trickle
// choices follow seed. Call Setup before anything else.
func NewHR(db *sql.DB, seed int64) *HR {
	return &HR{db: db, now: time.Now, rng: rand.New(rand.NewPCG(uint64(seed), 0x211100))}
}

// Setup creates the tables if they do not exist.
func (h *HR) Setup(ctx context.Context) error {
	for _, stmt := range strings.Split(hrSchema, ";") {
		if strings.TrimSpace(stmt) == "" {
			continue
		}
		if _, err := h.db.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("hr setup: %w", err)
		}
	}
	return nil
}

// SetFault sets how the rows Add and Correct write are broken.
func (h *HR) SetFault(f HRFault) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.fault = f
}

// Fault returns the current fault.
func (h *HR) Fault() HRFault {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.fault
}

// hrSanction is one civil_servant_sanctions row.
type hrSanction struct {
	ID              int64
	Name            string
	IDNumber        string
	EmployerName    string
	EmployerUSCC    string
	SanctionType    string
	DecisionDocNo   string
	DecisionDate    string // 2006-01-02, "" for NULL
	DecisionOrg     string
	DecisionOrgUSCC string
	Reason          string
	Remark          string
}

// Seed loads a JSON-lines file of rows, each with "table" naming
// civil_servant_sanctions or integrity_files and the row's columns, and
// returns how many rows it inserted. Rows whose id is already held are left
// as they are, so seeding twice is harmless.
func (h *HR) Seed(ctx context.Context, path string) (int, error) {
	items, err := LoadSeed(path)
	if err != nil {
		return 0, err
	}
	tx, err := h.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("hr seed: %w", err)
	}
	defer tx.Rollback()
	n := 0
	for i, it := range items {
		at, err := parseUpdatedAt(it["updated_at"])
		if err != nil {
			return 0, fmt.Errorf("hr seed %s item %d: %w", path, i+1, err)
		}
		id, err := hrInt(it["id"])
		if err != nil {
			return 0, fmt.Errorf("hr seed %s item %d: id: %w", path, i+1, err)
		}
		var res sql.Result
		switch it["table"] {
		case "civil_servant_sanctions":
			s := hrSanction{
				ID: id, Name: hrStr(it["name"]), IDNumber: hrStr(it["id_number"]),
				EmployerName: hrStr(it["employer_name"]), EmployerUSCC: hrStr(it["employer_uscc"]),
				SanctionType: hrStr(it["sanction_type"]), DecisionDocNo: hrStr(it["decision_doc_no"]),
				DecisionDate: hrStr(it["decision_date"]), DecisionOrg: hrStr(it["decision_org"]),
				DecisionOrgUSCC: hrStr(it["decision_org_uscc"]), Reason: hrStr(it["reason"]), Remark: hrStr(it["remark"]),
			}
			res, err = hrInsertSanction(ctx, tx, s, at, true)
		case "integrity_files":
			var sid any
			if v, ok := it["sanction_id"]; ok && v != nil {
				n, err := hrInt(v)
				if err != nil {
					return 0, fmt.Errorf("hr seed %s item %d: sanction_id: %w", path, i+1, err)
				}
				sid = n
			}
			res, err = tx.ExecContext(ctx, `INSERT INTO integrity_files
				(id, name, id_number, employer_name, employer_uscc, record_type, content, record_date, sanction_id, updated_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8::date, $9, $10::timestamp) ON CONFLICT (id) DO NOTHING`,
				id, hrStr(it["name"]), hrNull(hrStr(it["id_number"])), hrNull(hrStr(it["employer_name"])),
				hrNull(hrStr(it["employer_uscc"])), hrStr(it["record_type"]), hrNull(hrStr(it["content"])),
				hrNull(hrStr(it["record_date"])), sid, hrWall(at))
		default:
			return 0, fmt.Errorf("hr seed %s item %d: unknown table %v", path, i+1, it["table"])
		}
		if err != nil {
			return 0, fmt.Errorf("hr seed %s item %d (id %d): %w", path, i+1, id, err)
		}
		if k, _ := res.RowsAffected(); k > 0 {
			n++
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("hr seed: %w", err)
	}
	return n, nil
}

func hrInsertSanction(ctx context.Context, tx *sql.Tx, s hrSanction, at time.Time, keep bool) (sql.Result, error) {
	q := `INSERT INTO civil_servant_sanctions
		(id, name, id_number, employer_name, employer_uscc, sanction_type, decision_doc_no, decision_date,
		 decision_org, decision_org_uscc, reason, remark, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8::date, $9, $10, $11, $12, $13::timestamp)`
	if keep {
		q += ` ON CONFLICT (id) DO NOTHING`
	}
	return tx.ExecContext(ctx, q, s.ID, s.Name, hrNull(s.IDNumber), hrNull(s.EmployerName), hrNull(s.EmployerUSCC),
		hrNull(s.SanctionType), hrNull(s.DecisionDocNo), hrNull(s.DecisionDate), hrNull(s.DecisionOrg),
		hrNull(s.DecisionOrgUSCC), hrNull(s.Reason), s.Remark, hrWall(at))
}

// hrWall writes t as the Beijing wall clock a zone-less timestamp holds.
func hrWall(t time.Time) string {
	return t.In(beijing).Format("2006-01-02 15:04:05.999999")
}

func hrStr(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

// hrNull maps "" to NULL.
func hrNull(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func hrInt(v any) (int64, error) {
	switch x := v.(type) {
	case json.Number:
		return x.Int64()
	case string:
		return strconv.ParseInt(x, 10, 64)
	}
	return 0, fmt.Errorf("%v is not an integer", v)
}

// stamp returns the next updated_at: now, or 1ms after the greatest
// updated_at held if that is later, so a client that has read everything
// sees the row. Callers hold h.mu.
func (h *HR) stamp(ctx context.Context, tx *sql.Tx) (time.Time, error) {
	var last sql.NullString
	err := tx.QueryRowContext(ctx, `SELECT to_char(GREATEST(
			(SELECT max(updated_at) FROM civil_servant_sanctions),
			(SELECT max(updated_at) FROM integrity_files)), 'YYYY-MM-DD HH24:MI:SS.US')`).Scan(&last)
	if err != nil {
		return time.Time{}, err
	}
	at := h.now().In(beijing).Truncate(time.Millisecond)
	if last.Valid {
		l, err := time.ParseInLocation("2006-01-02 15:04:05.999999", last.String, beijing)
		if err != nil {
			return time.Time{}, err
		}
		if floor := l.Add(time.Millisecond).Truncate(time.Millisecond); at.Before(floor) {
			at = floor
		}
	}
	return at, nil
}

var hrReasons = []string{
	"%s在行政审批工作中未按规定时限办结，造成不良影响。",
	"%s违规收受管理服务对象所送购物卡，价值人民币%d元。",
	"%s在项目资金审核中把关不严，多拨付资金人民币%d元，后已追回。",
	"%s未经批准在企业兼职并领取报酬人民币%d元。",
	"%s值班期间擅离职守，导致信息未能及时上报。",
	"%s违规查询并泄露服务对象个人信息。",
}

// Add inserts a new, clean sanction of a civil servant of an agency the
// system already holds, with its 诚信档案 entry, and returns the sanction's
// id. Under HRMalformed the sanction is malformed.
func (h *HR) Add(ctx context.Context) (int64, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	tx, err := h.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("hr add: %w", err)
	}
	defer tx.Rollback()
	at, err := h.stamp(ctx, tx)
	if err != nil {
		return 0, fmt.Errorf("hr add: %w", err)
	}
	var id, fileID int64
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE((SELECT max(id) FROM civil_servant_sanctions), 1000) + 1,
		COALESCE((SELECT max(id) FROM integrity_files), 5000) + 1`).Scan(&id, &fileID); err != nil {
		return 0, fmt.Errorf("hr add: %w", err)
	}
	emp, err := h.employer(ctx, tx)
	if err != nil {
		return 0, fmt.Errorf("hr add: %w", err)
	}
	h.steps++
	name := trickleSurnames[h.rng.IntN(len(trickleSurnames))] + "某" + strings.Repeat("某", h.rng.IntN(2))
	s := hrSanction{
		ID: id, Name: name, IDNumber: h.idNo(emp.region),
		EmployerName: emp.name, EmployerUSCC: emp.code,
		SanctionType:    HRSanctionTypes[h.rng.IntN(len(HRSanctionTypes))],
		DecisionDocNo:   fmt.Sprintf("盘人社处〔%d〕%d号", at.Year(), id-1000+100),
		DecisionDate:    at.AddDate(0, 0, -h.rng.IntN(7)).Format(time.DateOnly),
		DecisionOrg:     "盘锦市人力资源和社会保障局",
		DecisionOrgUSCC: "11211100003989491T",
		Reason:          fmt.Sprintf(hrReasons[h.rng.IntN(len(hrReasons))], name, 1000*(1+h.rng.IntN(50))),
	}
	if h.fault == HRMalformed {
		h.malform(&s, at)
	}
	if _, err := hrInsertSanction(ctx, tx, s, at, false); err != nil {
		return 0, fmt.Errorf("hr add: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO integrity_files
		(id, name, id_number, employer_name, employer_uscc, record_type, content, record_date, sanction_id, updated_at)
		VALUES ($1, $2, $3, $4, $5, '处分记录', $6, $7::date, $8, $9::timestamp)`,
		fileID, s.Name, hrNull(s.IDNumber), s.EmployerName, hrNull(s.EmployerUSCC),
		fmt.Sprintf("%s给予%s处分（%s）", s.DecisionOrg, s.SanctionType, s.DecisionDocNo),
		hrNull(s.DecisionDate), s.ID, hrWall(at)); err != nil {
		return 0, fmt.Errorf("hr add: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("hr add: %w", err)
	}
	return id, nil
}

// Correct amends a sanction the system holds (its reason gains a 【更正N】
// note, its remark says so) and moves its updated_at past everything held;
// it returns the id. Under HRMalformed the amended row is malformed.
func (h *HR) Correct(ctx context.Context) (int64, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	tx, err := h.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("hr correct: %w", err)
	}
	defer tx.Rollback()
	at, err := h.stamp(ctx, tx)
	if err != nil {
		return 0, fmt.Errorf("hr correct: %w", err)
	}
	var n int64
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM civil_servant_sanctions`).Scan(&n); err != nil {
		return 0, fmt.Errorf("hr correct: %w", err)
	}
	if n == 0 {
		return 0, errors.New("hr correct: no sanction to correct")
	}
	var s hrSanction
	var date, reason, doc, typ, idNo, uscc sql.NullString
	err = tx.QueryRowContext(ctx, `SELECT id, name, id_number, employer_name, employer_uscc, sanction_type, decision_doc_no,
		to_char(decision_date, 'YYYY-MM-DD'), reason FROM civil_servant_sanctions ORDER BY id OFFSET $1 LIMIT 1`,
		h.rng.Int64N(n)).Scan(&s.ID, &s.Name, &idNo, &s.EmployerName, &uscc, &typ, &doc, &date, &reason)
	if err != nil {
		return 0, fmt.Errorf("hr correct: %w", err)
	}
	s.IDNumber, s.EmployerUSCC, s.SanctionType, s.DecisionDocNo, s.DecisionDate =
		idNo.String, uscc.String, typ.String, doc.String, date.String
	h.steps++
	base, _, _ := strings.Cut(reason.String, "【更正")
	s.Reason = fmt.Sprintf("%s【更正%d】经复核，对上述事实补充认定，处分结论不变。", base, h.steps)
	s.Remark = fmt.Sprintf("更正：%s 经复核补充认定事实", at.Format(time.DateOnly))
	if h.fault == HRMalformed {
		h.malform(&s, at)
	}
	_, err = tx.ExecContext(ctx, `UPDATE civil_servant_sanctions SET id_number = $2, employer_uscc = $3, sanction_type = $4,
		decision_doc_no = $5, decision_date = $6::date, reason = $7, remark = $8, updated_at = $9::timestamp WHERE id = $1`,
		s.ID, hrNull(s.IDNumber), hrNull(s.EmployerUSCC), hrNull(s.SanctionType), hrNull(s.DecisionDocNo),
		hrNull(s.DecisionDate), s.Reason, s.Remark, hrWall(at))
	if err != nil {
		return 0, fmt.Errorf("hr correct: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("hr correct: %w", err)
	}
	return s.ID, nil
}

// malform breaks s in the next of the HRMalformed ways. Callers hold h.mu.
func (h *HR) malform(s *hrSanction, at time.Time) {
	k := h.malformed % hrMalformations
	h.malformed++
	switch k {
	case 0:
		if len(s.IDNumber) >= 16 {
			s.IDNumber = s.IDNumber[:16]
		} else {
			s.IDNumber = "2111031985092"
		}
	case 1:
		s.DecisionDocNo = ""
	case 2:
		s.SanctionType = "严重警告" // a party sanction (党纪处分), not a 政务处分
	case 3:
		s.DecisionDate = ""
	case 4:
		s.DecisionDate = at.AddDate(1, 0, 0).Format(time.DateOnly)
	case 5:
		s.EmployerUSCC = "91211100MA0OISVZ1I" // O, I, S, V, Z are not in the code's set
	}
}

// hrOrg is an employer the seed holds with a valid code.
type hrOrg struct{ name, code, region string }

// employer picks an agency whose 统一社会信用代码 is valid from the rows held,
// falling back to one of Panjin's when there is none.
func (h *HR) employer(ctx context.Context, tx *sql.Tx) (hrOrg, error) {
	rows, err := tx.QueryContext(ctx, `SELECT DISTINCT employer_name, employer_uscc FROM civil_servant_sanctions
		WHERE employer_name IS NOT NULL AND employer_uscc IS NOT NULL ORDER BY employer_name`)
	if err != nil {
		return hrOrg{}, err
	}
	defer rows.Close()
	var orgs []hrOrg
	for rows.Next() {
		var o hrOrg
		if err := rows.Scan(&o.name, &o.code); err != nil {
			return hrOrg{}, err
		}
		if validUSCC(o.code) {
			o.region = o.code[2:8]
			orgs = append(orgs, o)
		}
	}
	if err := rows.Err(); err != nil {
		return hrOrg{}, err
	}
	if len(orgs) == 0 {
		return hrOrg{name: "盘锦市生态环境局", code: agencyCode("11", "211100", "00592168"), region: "211100"}, nil
	}
	return orgs[h.rng.IntN(len(orgs))], nil
}

// idNo returns a synthetic 公民身份号码 with a valid check character, born
// 1965–1995 in a district of Panjin. Callers hold h.mu.
func (h *HR) idNo(region string) string {
	if region == "" || strings.HasSuffix(region, "00") {
		region = []string{"211102", "211103", "211104", "211122"}[h.rng.IntN(4)]
	}
	birth := time.Date(1965+h.rng.IntN(31), time.January, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, h.rng.IntN(365))
	body := fmt.Sprintf("%s%s%03d", region, birth.Format("20060102"), 1+h.rng.IntN(998))
	c, _ := idCheck(body)
	return body + string(c)
}
