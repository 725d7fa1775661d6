package normalize

import (
	"maps"
	"slices"
	"strings"

	"github.com/panjin-gov/syncd/internal/record"
)

// Profiles: ready-made mappings for sources that already speak a national
// layout (DOMAIN.md), so `mapping: {profile: cf2021}` is a whole mapping.
// Entries of the Mapping itself win over the profile's: fields per canonical
// field (an empty path drops the profile's), value maps per source value,
// and kind, kind_field or fields.kind over the profile's kind.
const (
	// ProfileCF2021 is the 2021 双公示 行政处罚 layout (CF_XDR_MC, CF_WSH, …).
	ProfileCF2021 = "cf2021"
	// ProfileCF2016 is the older 20-field layout (CF_XZJG, CF_CFLB1 codes,
	// CF_ZT status codes, …).
	ProfileCF2016 = "cf2016"
)

type profile struct {
	kind      record.Kind
	fields    map[string]string
	valueMaps map[string]map[string]string
}

var profiles = map[string]profile{
	ProfileCF2021: {
		kind: record.AdminPenalty,
		fields: map[string]string{
			FieldSubjectName: "CF_XDR_MC", FieldSubjectType: "CF_XDR_LB", FieldSubjectUSCC: "CF_XDR_SHXYM",
			FieldSubjectIDType: "CF_XDR_ZJLX", FieldSubjectIDNumber: "CF_XDR_ZJHM", FieldLegalRep: "CF_FRDB",
			FieldDocNo: "CF_WSH", FieldViolationType: "CF_WFXW", FieldFacts: "CF_SY", FieldLegalBasis: "CF_YJ",
			FieldCategory: "CF_CFLB", FieldContent: "CF_NR", FieldFineAmount: "CF_NR_FK",
			FieldConfiscationAmount: "CF_NR_WFFF", FieldDecisionDate: "CF_JDRQ", FieldValidUntil: "CF_YXQ",
			FieldPublicityUntil: "CF_GSJZQ", FieldAuthorityName: "CF_CFJG", FieldAuthorityUSCC: "CF_CFJGDM",
			FieldDataSourceUnit: "CF_SJLY", FieldDataSourceUSCC: "CF_SJLYDM", FieldRemark: "BZ",
		},
	},
	ProfileCF2016: {
		kind: record.AdminPenalty,
		fields: map[string]string{
			FieldDocNo: "CF_WSH", FieldViolationType: "CF_CFMC", FieldCategory: "CF_CFLB1", FieldFacts: "CF_SY",
			FieldLegalBasis: "CF_YJ", FieldSubjectName: "CF_XDR_MC", FieldSubjectUSCC: "CF_XDR_SHXYM",
			FieldSubjectIDNumber: "CF_XDR_SFZ", FieldLegalRep: "CF_FR", FieldContent: "CF_JG",
			FieldDecisionDate: "CF_JDRQ", FieldAuthorityName: "CF_XZJG", FieldStatus: "CF_ZT",
			FieldRegionCode: "DFBM", FieldRemark: "BZ",
		},
		valueMaps: map[string]map[string]string{
			// The old numeric 处罚类别 codes. CF_ZT (0 正常, 1 撤销, 2 异议) is in
			// the default status table; 3 其他 stays a bad_value.
			FieldCategory: {
				"1": "警告", "2": "罚款", "3": "没收违法所得、没收非法财物", "4": "责令停产停业",
				"5": "暂扣或者吊销许可证、暂扣或者吊销执照", "6": "行政拘留", "9": "其他",
			},
		},
	},
}

// Profiles returns the profile names.
func Profiles() []string { return slices.Sorted(maps.Keys(profiles)) }

// withProfile returns m with its profile's entries filled in under its own.
func (m *Mapping) withProfile(probs *problems) Mapping {
	name := lookupKey(strings.TrimSpace(m.Profile))
	if name == "" {
		return *m
	}
	pr, ok := profiles[name]
	if !ok {
		probs.add("profile", "unknown profile %q (want one of %s)", m.Profile, strings.Join(Profiles(), ", "))
		return *m
	}
	out := *m
	out.Fields = make(map[string]string, len(pr.fields)+len(m.Fields))
	given := make(map[field]bool, len(m.Fields))
	for key, path := range m.Fields {
		if f, ok := canonical(key); ok {
			given[f] = true
		}
		if path != "" { // an empty path drops the profile's entry
			out.Fields[key] = path
		}
	}
	if m.KindField != "" {
		given[fKind] = true
	}
	for key, path := range pr.fields {
		if f, _ := canonical(key); !given[f] {
			out.Fields[key] = path
		}
	}
	out.ValueMaps = make(map[string]map[string]string, len(pr.valueMaps)+len(m.ValueMaps))
	for key, vm := range pr.valueMaps {
		out.ValueMaps[key] = maps.Clone(vm)
	}
	for key, vm := range m.ValueMaps {
		f, ok := canonical(key)
		if !ok {
			out.ValueMaps[key] = vm
			continue
		}
		merged := out.ValueMaps[f.String()]
		if merged == nil {
			out.ValueMaps[key] = vm
			continue
		}
		for src, v := range vm {
			for old := range merged {
				if lookupKey(CleanText(old)) == lookupKey(CleanText(src)) {
					delete(merged, old)
				}
			}
			merged[src] = v
		}
	}
	for key := range m.Constants {
		if f, ok := canonical(key); ok && f == fKind {
			given[fKind] = true
		}
	}
	if m.Kind == "" && !given[fKind] {
		out.Kind = string(pr.kind)
	}
	return out
}
