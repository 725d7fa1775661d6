package normalize

import (
	"strings"

	"github.com/panjin-gov/syncd/internal/record"
)

// Default code tables. A Mapping's kind_map and value_maps are looked up
// first; these are the fallback every source gets. Keys are CleanText'ed and
// lower-cased (lookups lower-case too, so "Active" matches "active").

// kindNames maps the Chinese names of the kinds in scope (DOMAIN.md).
var kindNames = map[string]record.Kind{
	"司法判决": record.CourtJudgment, "法院判决": record.CourtJudgment, "判决": record.CourtJudgment,
	"失信被执行人": record.JudgmentDebtor,
	"行政处罚":   record.AdminPenalty,
	"纪律处分":   record.DisciplinaryAction, "党纪处分": record.DisciplinaryAction, "政务处分": record.DisciplinaryAction, "处分": record.DisciplinaryAction,
	"问责处理": record.Accountability, "问责": record.Accountability,
	"违约失信": record.ContractBreach, "合同违约": record.ContractBreach, "违约": record.ContractBreach,
	"政府采购违约": record.ContractBreach, "ppp违约": record.ContractBreach, "招商引资违约": record.ContractBreach,
}

// statusNames maps Chinese statuses and the 2016 layout's CF_ZT codes
// (0 正常, 1 撤销, 2 异议; 3 其他 has no meaning we can use).
var statusNames = map[string]record.Status{
	"有效": record.Active, "正常": record.Active, "0": record.Active,
	"撤销": record.Revoked, "已撤销": record.Revoked, "1": record.Revoked,
	"异议": record.Disputed, "异议中": record.Disputed, "2": record.Disputed,
	"已修复": record.Repaired, "信用修复": record.Repaired, "修复": record.Repaired,
	"已更正": record.Corrected, "更正": record.Corrected,
	"过期": record.Expired, "已过期": record.Expired, "公示期满": record.Expired,
}

// subjectTypeNames maps 行政相对人类别 values. In this scope every legal-person
// subject is a state organ or institution and every natural person a civil
// servant, so the 双公示 categories map onto those.
var subjectTypeNames = map[string]record.SubjectType{
	"机关": record.Agency, "国家机关": record.Agency, "行政机关": record.Agency, "党政机关": record.Agency,
	"法人及非法人组织": record.Agency, "法人": record.Agency,
	"参公事业单位": record.PublicInstitution, "参照公务员法管理事业单位": record.PublicInstitution, "事业单位": record.PublicInstitution,
	"公务员": record.CivilServant, "自然人": record.CivilServant, "个人": record.CivilServant,
}

// severityNames maps 失信程度 to the record's 轻微/一般/严重.
var severityNames = map[string]string{
	"轻微": "轻微", "轻微失信": "轻微",
	"一般": "一般", "一般失信": "一般",
	"严重": "严重", "严重失信": "严重",
}

// idCardTypes are the 证件类型 values under which an ID number is a
// 公民身份号码 and so is checked against GB 11643. An empty type counts too.
var idCardTypes = map[string]bool{
	"": true, "身份证": true, "居民身份证": true, "公民身份号码": true,
	"中华人民共和国居民身份证": true, "身份证号": true, "身份证号码": true,
}

// idCardType is what an empty subject_id_type becomes when the ID number
// passes the GB 11643 check.
const idCardType = "身份证"

// emptyValues are what sources write for "nothing here"; such a value is
// treated as absent.
var emptyValues = map[string]bool{
	"无": true, "暂无": true, "空": true, "/": true, "-": true, "--": true,
	"—": true, "——": true, "null": true, "nil": true, "none": true, "n/a": true,
}

// maxEmptyValueLen is the byte length of the longest emptyValues key: a
// longer value needs no lookup.
var maxEmptyValueLen = func() int {
	n := 0
	for k := range emptyValues {
		n = max(n, len(k))
	}
	return n
}()

// openEndValues mean "no end" for valid_until and publicity_until: the date
// stays zero.
var openEndValues = map[string]bool{"长期": true, "永久": true, "长期有效": true}

// lookupKey is how table keys and looked-up values are compared: ASCII
// case-insensitively (viper lower-cases map keys).
func lookupKey(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

func mapKind(s string) (record.Kind, bool) {
	if k := record.Kind(s); k.Valid() {
		return k, true
	}
	s = lookupKey(s)
	if k := record.Kind(s); k.Valid() {
		return k, true
	}
	k, ok := kindNames[s]
	return k, ok
}

func mapStatus(s string) (record.Status, bool) {
	s = lookupKey(s)
	if st := record.Status(s); st.Valid() {
		return st, true
	}
	st, ok := statusNames[s]
	return st, ok
}

func mapSubjectType(s string) (record.SubjectType, bool) {
	s = lookupKey(s)
	if t := record.SubjectType(s); t.Valid() {
		return t, true
	}
	t, ok := subjectTypeNames[s]
	return t, ok
}

func mapSeverity(s string) (string, bool) {
	v, ok := severityNames[s]
	return v, ok
}
