package push

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/panjin-gov/syncd/internal/record"
)

// Opener decrypts a sealed person ID number; only the push path holds one.
type Opener interface {
	Open(ct []byte) (string, error)
}

// Profile is how one platform wants records: which kinds and statuses it
// takes and the name it gives each field. Adding a platform is config: start
// from a built-in base and rename, add or omit fields.
//
//	profile:
//	  base: national_cf2021        # or liaoning, or none
//	  fields: {region_code: XZQH}  # canonical field → platform field name
//	  omit: [BZ]
//	  statuses: [active, corrected]
type Profile struct {
	Base string `mapstructure:"base"`
	// Fields maps a canonical field (CanonicalFields) to the platform's name
	// for it: a canonical field the base already maps is renamed, another is
	// added. (Canonical names are the keys because config keys are
	// case-folded; platform names, as values, keep their case.)
	Fields map[string]string `mapstructure:"fields"`
	// Omit drops fields of the base.
	Omit []string `mapstructure:"omit"`
	// Statuses the platform publishes; a version in any other status is
	// withdrawn (or skipped when the platform never held it). Default:
	// active, corrected.
	Statuses []string `mapstructure:"statuses"`
	// KindNames renames record kinds for the kind_name field.
	KindNames map[string]string `mapstructure:"kind_names"`
	// DateFormat is a Go time layout for date fields (default 2006-01-02).
	DateFormat string `mapstructure:"date_format"`
}

// SetDefaults fills the base, statuses and date format.
func (p *Profile) SetDefaults() {
	if p.Base == "" {
		p.Base = "national_cf2021"
	}
	if len(p.Statuses) == 0 {
		p.Statuses = []string{string(record.Active), string(record.Corrected)}
	}
	if p.DateFormat == "" {
		p.DateFormat = "2006-01-02"
	}
}

// Validate checks names against the built-in bases and canonical fields.
func (p *Profile) Validate() error {
	var errs []error
	base, ok := baseProfiles[p.Base]
	if !ok {
		errs = append(errs, fmt.Errorf("base: %q is not a built-in profile (%s)", p.Base, strings.Join(BaseNames(), ", ")))
	}
	for _, cf := range sortedKeys(p.Fields) {
		if _, ok := canonical[cf]; !ok {
			errs = append(errs, fmt.Errorf("fields.%s: not a canonical field (%s)", cf, strings.Join(CanonicalFields(), ", ")))
		}
		if p.Fields[cf] == "" {
			errs = append(errs, fmt.Errorf("fields.%s: empty platform field name", cf))
		}
	}
	for i, o := range p.Omit {
		if _, inBase := base[o]; ok && !inBase {
			errs = append(errs, fmt.Errorf("omit[%d]: %q is not a field of base %s", i, o, p.Base))
		}
	}
	for i, s := range p.Statuses {
		if !record.Status(s).Valid() {
			errs = append(errs, fmt.Errorf("statuses[%d]: %q is not a record status", i, s))
		}
	}
	for k := range p.KindNames {
		if !record.Kind(k).Valid() {
			errs = append(errs, fmt.Errorf("kind_names.%s: not a record kind", k))
		}
	}
	if p.DateFormat != "" {
		ref := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
		if back, err := time.Parse(p.DateFormat, ref.Format(p.DateFormat)); err != nil || !back.Equal(ref) {
			errs = append(errs, fmt.Errorf("date_format: %q does not round-trip a date (use a Go layout such as 2006-01-02 or 20060102)", p.DateFormat))
		}
	}
	return errors.Join(errs...)
}

// Layout is a compiled profile: it renders records in a platform's fields.
type Layout struct {
	fields    []layoutField
	published map[record.Status]bool
	kindNames map[record.Kind]string
	dateFmt   string
}

type layoutField struct {
	name string
	get  getter
}

// Compile builds the Layout of a validated profile.
func (p Profile) Compile() (*Layout, error) {
	p.SetDefaults()
	if err := p.Validate(); err != nil {
		return nil, err
	}
	m := map[string]string{}
	for k, v := range baseProfiles[p.Base] {
		m[k] = v
	}
	for _, o := range p.Omit {
		delete(m, o)
	}
	for cf, name := range p.Fields {
		for k, v := range m {
			if v == cf {
				delete(m, k) // renamed
			}
		}
		m[name] = cf
	}
	l := &Layout{published: map[record.Status]bool{}, kindNames: map[record.Kind]string{}, dateFmt: p.DateFormat}
	for _, name := range sortedKeys(m) {
		l.fields = append(l.fields, layoutField{name: name, get: canonical[m[name]]})
	}
	for _, s := range p.Statuses {
		l.published[record.Status(s)] = true
	}
	for k, v := range kindNames {
		l.kindNames[k] = v
	}
	for k, v := range p.KindNames {
		l.kindNames[record.Kind(k)] = v
	}
	return l, nil
}

// Published says whether the platform publishes a version in status s.
func (l *Layout) Published(s record.Status) bool { return l.published[s] }

// Fields lists the platform's field names in render order.
func (l *Layout) Fields() []string {
	out := make([]string, len(l.fields))
	for i, f := range l.fields {
		out[i] = f.name
	}
	return out
}

// Render returns the record in the platform's fields; empty values are left
// out. A person's ID number is opened from its sealed form here and nowhere
// else; it never reaches a log.
func (l *Layout) Render(r *record.Record, ids Opener) (map[string]any, error) {
	c := renderCtx{l: l, ids: ids}
	d := make(map[string]any, len(l.fields))
	for _, f := range l.fields {
		v, err := f.get(&c, r)
		if err != nil {
			return nil, err
		}
		if v != "" {
			d[f.name] = v
		}
	}
	return d, nil
}

type renderCtx struct {
	l      *Layout
	ids    Opener
	opened bool
	id     string
}

type getter func(c *renderCtx, r *record.Record) (string, error)

func str(f func(r *record.Record) string) getter {
	return func(_ *renderCtx, r *record.Record) (string, error) { return f(r), nil }
}

func dateOf(f func(r *record.Record) time.Time) getter {
	return func(c *renderCtx, r *record.Record) (string, error) {
		t := f(r)
		if t.IsZero() {
			return "", nil
		}
		return t.Format(c.l.dateFmt), nil
	}
}

// canonical names every field of the canonical record a profile can map.
var canonical = map[string]getter{
	"record_id":           str(func(r *record.Record) string { return r.RecordID }),
	"kind":                str(func(r *record.Record) string { return string(r.Kind) }),
	"kind_name":           func(c *renderCtx, r *record.Record) (string, error) { return c.l.kindNames[r.Kind], nil },
	"status":              str(func(r *record.Record) string { return string(r.Status) }),
	"severity":            str(func(r *record.Record) string { return r.Severity }),
	"subject_type":        str(func(r *record.Record) string { return string(r.SubjectType) }),
	"subject_category":    str(func(r *record.Record) string { return subjectCategory(r.SubjectType) }),
	"subject_name":        str(func(r *record.Record) string { return r.SubjectName }),
	"subject_uscc":        str(func(r *record.Record) string { return r.SubjectUSCC }),
	"subject_id_type":     idField(func(r *record.Record, _ string) string { return orDefault(r.SubjectIDType, "身份证") }),
	"subject_id_number":   idField(func(_ *record.Record, id string) string { return id }),
	"subject_id_masked":   str(func(r *record.Record) string { return r.SubjectIDMasked }),
	"legal_rep":           str(func(r *record.Record) string { return r.LegalRep }),
	"region_code":         str(func(r *record.Record) string { return r.RegionCode }),
	"doc_no":              str(func(r *record.Record) string { return r.DocNo }),
	"violation_type":      str(func(r *record.Record) string { return r.ViolationType }),
	"facts":               str(func(r *record.Record) string { return r.Facts }),
	"legal_basis":         str(func(r *record.Record) string { return r.LegalBasis }),
	"category":            str(func(r *record.Record) string { return r.Category }),
	"content":             str(func(r *record.Record) string { return r.Content }),
	"fine_amount":         str(func(r *record.Record) string { return r.FineAmount.String() }),
	"confiscation_amount": str(func(r *record.Record) string { return r.ConfiscationAmount.String() }),
	"decision_date":       dateOf(func(r *record.Record) time.Time { return r.DecisionDate }),
	"valid_until":         dateOf(func(r *record.Record) time.Time { return r.ValidUntil }),
	"publicity_until":     dateOf(func(r *record.Record) time.Time { return r.PublicityUntil }),
	"authority_name":      str(func(r *record.Record) string { return r.AuthorityName }),
	"authority_uscc":      str(func(r *record.Record) string { return r.AuthorityUSCC }),
	"data_source_unit":    str(func(r *record.Record) string { return r.DataSourceUnit }),
	"data_source_uscc":    str(func(r *record.Record) string { return r.DataSourceUSCC }),
	"remark":              str(func(r *record.Record) string { return r.Remark }),
	"version":             str(func(r *record.Record) string { return fmt.Sprint(r.Version) }),
}

// idField renders from the opened ID number; both ID fields are empty for a
// record without one (an organisation).
func idField(f func(r *record.Record, id string) string) getter {
	return func(c *renderCtx, r *record.Record) (string, error) {
		if len(r.SubjectIDEnc) == 0 {
			return "", nil
		}
		if !c.opened {
			if c.ids == nil {
				return "", errors.New("record carries a sealed ID number but this process holds no PII key")
			}
			id, err := c.ids.Open(r.SubjectIDEnc)
			if err != nil {
				return "", err
			}
			c.id, c.opened = id, true
		}
		return f(r, c.id), nil
	}
}

// CanonicalFields lists the canonical field names a profile can map.
func CanonicalFields() []string { return sortedKeys(canonical) }

// BaseNames lists the built-in profiles.
func BaseNames() []string { return sortedKeys(baseProfiles) }

// baseProfiles are the built-in field maps (platform field → canonical).
var baseProfiles = map[string]map[string]string{
	// 全国信用信息共享平台, 双公示 2021 (CF_ codes, DOMAIN.md).
	"national_cf2021": {
		"CF_XDR_MC":    "subject_name",
		"CF_XDR_LB":    "subject_category",
		"CF_XDR_SHXYM": "subject_uscc",
		"CF_XDR_ZJLX":  "subject_id_type",
		"CF_XDR_ZJHM":  "subject_id_number",
		"CF_FRDB":      "legal_rep",
		"CF_WSH":       "doc_no",
		"CF_WFXW":      "violation_type",
		"CF_SY":        "facts",
		"CF_YJ":        "legal_basis",
		"CF_CFLB":      "category",
		"CF_NR":        "content",
		"CF_NR_FK":     "fine_amount",
		"CF_NR_WFFF":   "confiscation_amount",
		"CF_JDRQ":      "decision_date",
		"CF_YXQ":       "valid_until",
		"CF_GSJZQ":     "publicity_until",
		"CF_CFJG":      "authority_name",
		"CF_CFJGDM":    "authority_uscc",
		"CF_SJLY":      "data_source_unit",
		"CF_SJLYDM":    "data_source_uscc",
		"BZ":           "remark",
		"XYXX_LX":      "kind_name",
		"XYXX_YZCD":    "severity",
		"XZQH_DM":      "region_code",
	},
	// A 信用辽宁-style provincial exchange: lower-case pinyin-initial names,
	// as provincial front-end tables commonly use.
	"liaoning": {
		"xdrmc":    "subject_name",
		"xdrlb":    "subject_category",
		"tyshxydm": "subject_uscc",
		"zjlx":     "subject_id_type",
		"zjhm":     "subject_id_number",
		"fddbr":    "legal_rep",
		"jdswh":    "doc_no",
		"wfxwlx":   "violation_type",
		"wfss":     "facts",
		"cfyj":     "legal_basis",
		"cflb":     "category",
		"cfnr":     "content",
		"fkje":     "fine_amount",
		"mswfsdje": "confiscation_amount",
		"cfjdrq":   "decision_date",
		"cfyxq":    "valid_until",
		"gsjzrq":   "publicity_until",
		"cfjg":     "authority_name",
		"cfjgdm":   "authority_uscc",
		"sjlydw":   "data_source_unit",
		"sjlydwdm": "data_source_uscc",
		"bz":       "remark",
		"xxlb":     "kind_name",
		"yzcd":     "severity",
		"xzqhdm":   "region_code",
	},
	// Nothing built in: every field comes from `fields`.
	"none": {},
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

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return slices.Clip(keys)
}
