package push

import (
	"time"

	"github.com/panjin-gov/syncd/internal/record"
)

// Opener decrypts a sealed person ID number; only the push path holds one.
type Opener interface {
	Open(ct []byte) (string, error)
}

// subjectCategory is 行政相对人类别 in the national layout.
func subjectCategory(t record.SubjectType) string {
	if t == record.CivilServant {
		return "自然人"
	}
	return "法人及非法人组织"
}

// kindNames are the Chinese names of record kinds platforms expect.
var kindNames = map[record.Kind]string{
	record.CourtJudgment:      "司法判决",
	record.JudgmentDebtor:     "失信被执行人",
	record.AdminPenalty:       "行政处罚",
	record.DisciplinaryAction: "纪律处分",
	record.Accountability:     "问责处理",
	record.ContractBreach:     "违约失信",
}

// NationalCF2021 renders a record in the national 双公示 2021 layout (CF_
// codes, DOMAIN.md). A person's ID number is opened from its sealed form
// here and nowhere else; it never reaches a log.
func NationalCF2021(r *record.Record, ids Opener) (map[string]any, error) {
	d := map[string]any{
		"CF_XDR_MC":    r.SubjectName,
		"CF_XDR_LB":    subjectCategory(r.SubjectType),
		"CF_WSH":       r.DocNo,
		"CF_WFXW":      r.ViolationType,
		"CF_SY":        r.Facts,
		"CF_YJ":        r.LegalBasis,
		"CF_CFLB":      r.Category,
		"CF_NR":        r.Content,
		"CF_NR_FK":     r.FineAmount.String(),
		"CF_NR_WFFF":   r.ConfiscationAmount.String(),
		"CF_JDRQ":      day(r.DecisionDate),
		"CF_YXQ":       day(r.ValidUntil),
		"CF_GSJZQ":     day(r.PublicityUntil),
		"CF_CFJG":      r.AuthorityName,
		"CF_CFJGDM":    r.AuthorityUSCC,
		"CF_SJLY":      r.DataSourceUnit,
		"CF_SJLYDM":    r.DataSourceUSCC,
		"CF_FRDB":      r.LegalRep,
		"BZ":           r.Remark,
		"XYXX_LX":      kindNames[r.Kind],
		"XYXX_YZCD":    r.Severity,
		"XZQH_DM":      r.RegionCode,
		"CF_XDR_SHXYM": r.SubjectUSCC,
	}
	if len(r.SubjectIDEnc) > 0 && ids != nil {
		id, err := ids.Open(r.SubjectIDEnc)
		if err != nil {
			return nil, err
		}
		d["CF_XDR_ZJLX"] = orDefault(r.SubjectIDType, "身份证")
		d["CF_XDR_ZJHM"] = id
	}
	for k, v := range d {
		if s, ok := v.(string); ok && s == "" {
			delete(d, k)
		}
	}
	return d, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func day(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format("2006-01-02")
}
