package normalize

import (
	"strings"

	"github.com/panjin-gov/syncd/internal/record"
)

// Code tables of the category field (处罚类别 / 处分种类 / 问责方式) per kind,
// and of 证件类型. A value outside its table is flagged by rule category or
// id_type (reason unknown_category / unknown_id_type; warn by default: local
// systems often name the same thing their own way, and a value_maps entry
// fixes that once it is known). Kinds with free-text categories (司法判决,
// 失信被执行人, 违约失信) have no table.
var categoryTables = map[record.Kind]map[string]bool{
	// 《行政处罚法》(2021) 第九条, and the older names still in use.
	record.AdminPenalty: set("警告", "通报批评", "罚款", "没收违法所得", "没收非法财物",
		"没收违法所得、没收非法财物", "暂扣许可证件", "降低资质等级", "吊销许可证件",
		"暂扣许可证", "暂扣执照", "吊销许可证", "吊销执照", "暂扣或者吊销许可证、暂扣或者吊销执照",
		"限制开展生产经营活动", "责令停产停业", "责令关闭", "限制从业", "行政拘留", "其他行政处罚", "其他"),
	// 《公职人员政务处分法》第七条, 《中国共产党纪律处分条例》第八条, 《事业单位工作人员处分规定》.
	record.DisciplinaryAction: set("警告", "记过", "记大过", "降级", "撤职", "开除", "开除公职",
		"严重警告", "撤销党内职务", "留党察看", "开除党籍", "降低岗位等级"),
	// 《中国共产党问责条例》第八条 and the 组织处理 measures.
	record.Accountability: set("检查", "通报", "改组", "诫勉", "组织调整", "组织处理", "纪律处分",
		"责令检查", "批评教育", "通报批评", "责令公开道歉", "停职检查", "调整职务", "责令辞职", "降职", "免职",
		"引咎辞职", "调离岗位", "书面检查"),
}

// idTypes are the 证件类型 values accepted besides the ID-card names.
var idTypes = set("护照", "护照号", "中国护照", "外国护照", "港澳居民来往内地通行证", "台湾居民来往大陆通行证",
	"外国人永久居留身份证", "外国人永久居留证", "港澳台居民居住证", "港澳居民居住证", "台湾居民居住证",
	"军官证", "士兵证", "武警警官证", "户口簿", "临时居民身份证", "其他")

func set(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// categoryProblem says which part of a category is outside kind's table, ""
// when every part is in it or the kind has no table. A category may list
// several measures: "警告；罚款", "警告、罚款", "罚款,没收违法所得"; a part
// may add detail after a table name: "留党察看一年", "罚款人民币5000元".
func categoryProblem(kind record.Kind, category string) string {
	table := categoryTables[kind]
	if table == nil || category == "" || table[category] {
		return ""
	}
	for _, part := range strings.FieldsFunc(category, func(r rune) bool {
		return r == '；' || r == ';' || r == '、' || r == '，' || r == ',' || r == '/' || r == '及'
	}) {
		part = strings.TrimSpace(part)
		if part != "" && !inTable(table, part) {
			return part
		}
	}
	return ""
}

// inTable says whether part is a table name or starts with one.
func inTable(table map[string]bool, part string) bool {
	if table[part] {
		return true
	}
	for name := range table {
		if len(name) >= 6 && strings.HasPrefix(part, name) { // two CJK chars at least
			return true
		}
	}
	return false
}

// idTypeKnown says whether t is an ID-card name or another known 证件类型.
// "其他-…" (其他 followed by the type's name) is the national layout's form
// for any other document.
func idTypeKnown(t string) bool {
	return idCardTypes[lookupKey(t)] || idTypes[t] || strings.HasPrefix(t, "其他")
}

// checkCodeTables applies rules category and id_type.
func (sp *spec) checkCodeTables(r *record.Record, res *Result) *fault {
	if part := categoryProblem(r.Kind, r.Category); part != "" {
		flt := &fault{field: fCategory, reason: ReasonUnknownCategory, value: r.Category,
			why: "\"" + part + "\" is not in the " + string(r.Kind) + " code table (add a value_maps.category entry if it is a local name)"}
		if f := sp.flag(res, ruleCategory, flt); f != nil {
			return f
		}
	}
	if r.SubjectIDType != "" && !idTypeKnown(r.SubjectIDType) {
		flt := &fault{field: fSubjectIDType, reason: ReasonUnknownIDType, value: r.SubjectIDType,
			why: "not a known 证件类型 (add a value_maps.subject_id_type entry if it is a local name)"}
		if f := sp.flag(res, ruleIDType, flt); f != nil {
			return f
		}
	}
	return nil
}
