package normalize

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/panjin-gov/syncd/internal/pii"
	"github.com/panjin-gov/syncd/internal/record"
)

// Normalizer turns one source's raw payloads into canonical records or
// rejects. It is immutable after New and safe for concurrent use.
type Normalizer struct {
	source string
	sp     *spec
	p      *pii.Protector
}

// New compiles m for source. A bad mapping gives Validate's error as is
// (the caller knows where the mapping came from). p protects ID numbers; it
// may be nil only when m maps no subject_id_number. source is the fallback
// for Raw.Source.
func New(source string, m Mapping, p *pii.Protector) (*Normalizer, error) {
	if strings.TrimSpace(source) == "" {
		return nil, errors.New("normalize: empty source name")
	}
	sp, err := m.compile()
	if err != nil {
		return nil, err
	}
	if sp.fields[fSubjectIDNumber].path != "" && p == nil {
		return nil, fmt.Errorf("fields.%s: set, but no pii protector is configured to protect ID numbers", FieldSubjectIDNumber)
	}
	return &Normalizer{source: source, sp: sp, p: p}, nil
}

// severity says what a failed rule does. Only reject is used yet; the
// per-rule reject/warn config plugs in here.
type severity uint8

const (
	severityReject severity = iota // reject the payload
	severityAccept                 // keep the value as sent (the coming "warn")
)

// rule is a check-digit rule on one field.
type rule struct {
	reason   string
	check    func(v string, now time.Time) string // why v fails, "" when it passes
	severity severity
}

var defaultRules = [numFields]*rule{
	fSubjectUSCC:     {ReasonInvalidUSCC, checkUSCC, severityReject},
	fAuthorityUSCC:   {ReasonInvalidUSCC, checkUSCC, severityReject},
	fDataSourceUSCC:  {ReasonInvalidUSCC, checkUSCC, severityReject},
	fSubjectIDNumber: {ReasonInvalidIDNumber, idNumberProblem, severityReject},
}

func checkUSCC(v string, _ time.Time) string { return usccProblem(v) }

// fault is why a payload is rejected.
type fault struct {
	field   field
	whole   bool // the fault is the payload's, not a field's
	reason  string
	value   string
	noValue bool // the message quotes no value
	why     string
}

func (f *fault) message() string {
	name := f.field.String()
	if f.whole {
		name = "payload"
	}
	if f.noValue {
		return name + ": " + f.why
	}
	v := f.value
	if f.field == fSubjectIDNumber {
		v = pii.Mask(v) // never a clear ID number in a message
	}
	return fmt.Sprintf("%s %q: %s", name, truncate(v, 80), f.why)
}

func truncate(s string, runes int) string {
	if utf8.RuneCountInString(s) <= runes {
		return s
	}
	n := 0
	for i := range s {
		if n == runes {
			return s[:i] + "…"
		}
		n++
	}
	return s
}

// Normalize turns one raw payload into a canonical record (rej == nil) or a
// reject (rej != nil). now is the ingest time: it becomes IngestedAt and is
// the "not in the future" bound of the decision date.
func (n *Normalizer) Normalize(raw *record.Raw, now time.Time) (rec record.Record, rej *record.Reject) {
	rawHash := raw.Hash()
	reject := func(f *fault) (record.Record, *record.Reject) {
		rj := &record.Reject{
			Source:     raw.Source,
			SourceKey:  raw.Key,
			Reason:     f.reason,
			Message:    f.message(),
			Payload:    raw.Payload,
			RawHash:    rawHash,
			RejectedAt: now,
		}
		if !f.whole {
			rj.Field = f.field.String()
		}
		if rj.Source == "" {
			rj.Source = n.source
		}
		return record.Record{}, rj
	}

	payload, err := decodePayload(raw)
	if err != nil {
		return reject(&fault{whole: true, reason: ReasonBadPayload, noValue: true, why: err.Error()})
	}
	var vals [numFields]jsonValue
	if err := scanObject(payload, n.sp.paths, &vals); err != nil {
		return reject(&fault{whole: true, reason: ReasonBadPayload, noValue: true, why: err.Error()})
	}

	var r record.Record
	for f := range numFields {
		v, ok, flt := n.value(f, &vals[f])
		if flt != nil {
			return reject(flt)
		}
		if !ok {
			if required(f) {
				return reject(n.missing(f))
			}
			continue
		}
		if flt := n.sp.set(&r, f, v, now, n.p); flt != nil {
			return reject(flt)
		}
	}
	if r.AuthorityName == "" && r.AuthorityUSCC == "" {
		return reject(&fault{field: fAuthorityName, reason: ReasonMissingField, noValue: true,
			why: "missing, and so is authority_uscc: one of them is required"})
	}
	if flt := checkDates(&r, now); flt != nil {
		return reject(flt)
	}
	applyDefaults(&r)

	authority := r.AuthorityUSCC
	if authority == "" {
		authority = r.AuthorityName
	}
	r.RecordID = record.ID(r.Kind, authority, r.DocNo)
	r.ContentHash = r.ComputeContentHash()
	r.RawHash = rawHash
	r.SourceSystem = raw.Source
	if r.SourceSystem == "" {
		r.SourceSystem = n.source
	}
	r.SourceKey = raw.Key
	r.SourceUpdatedAt = raw.UpdatedAt
	r.IngestedAt = now
	return r, nil
}

// value returns f's source value (after its value map) or its constant; ok
// is false when there is neither.
func (n *Normalizer) value(f field, jv *jsonValue) (v string, ok bool, flt *fault) {
	fs := &n.sp.fields[f]
	switch jv.kind {
	case jsonObject, jsonArray:
		what := "object"
		if jv.kind == jsonArray {
			what = "array"
		}
		return "", false, &fault{field: f, reason: ReasonBadValue, noValue: true,
			why: fmt.Sprintf("source path %q holds a JSON %s, not a value", fs.path, what)}
	}
	if s, ok := jv.text(); ok {
		if t := CleanText(s); t != "" {
			lk := lookupKey(t)
			mapped, isMapped := fs.values[lk]
			switch {
			case isMapped && CleanText(mapped) != "":
				return mapped, true, nil
			case isMapped: // mapped to "": no value
			case emptyValues[lk]: // 无, /, - …: no value
			default:
				return s, true, nil
			}
		}
	}
	if fs.hasConst && CleanText(fs.constant) != "" {
		return fs.constant, true, nil
	}
	return "", false, nil
}

func required(f field) bool {
	switch f {
	case fKind, fSubjectName, fDocNo, fDecisionDate:
		return true
	}
	return false
}

func (n *Normalizer) missing(f field) *fault {
	why := "missing: no source path or constant"
	if p := n.sp.fields[f].path; p != "" {
		why = fmt.Sprintf("missing: source path %q gives no value", p)
		if n.sp.fields[f].hasConst {
			why += " and the constant is empty"
		}
	}
	return &fault{field: f, reason: ReasonMissingField, noValue: true, why: why}
}

// set cleans, checks and stores v as field f of r. p may be nil when f is
// not the ID number.
func (sp *spec) set(r *record.Record, f field, v string, now time.Time, p *pii.Protector) *fault {
	bad := func(reason, value, why string) *fault {
		return &fault{field: f, reason: reason, value: value, why: why}
	}
	switch f.class() {
	case classText:
		*textField(r, f) = CleanText(v)

	case classDocNo:
		r.DocNo = NormalizeDocNo(v)

	case classCode:
		c := CleanCode(v)
		if f == fRegionCode && (len(c) != 6 || !allDigits(c)) {
			return bad(ReasonBadValue, v, "not a 6-digit GB/T 2260 region code")
		}
		if rl := sp.rules[f]; rl != nil && rl.severity == severityReject {
			if why := rl.check(c, now); why != "" {
				return bad(rl.reason, c, why)
			}
		}
		*textField(r, f) = c

	case classID:
		c := CleanCode(v)
		if isMaskedID(c) {
			// Published already masked (courts do): nothing to hash or seal.
			r.SubjectIDMasked = pii.Mask(c)
			return nil
		}
		isIDCard := idCardTypes[lookupKey(r.SubjectIDType)]
		if rl := sp.rules[f]; isIDCard && rl != nil && rl.severity == severityReject {
			if why := rl.check(c, now); why != "" {
				return bad(rl.reason, c, why)
			}
		}
		if p == nil {
			return bad(ReasonInvalidIDNumber, c, "no pii protector to protect it")
		}
		enc, err := p.Seal(c)
		if err != nil {
			return bad(ReasonInvalidIDNumber, c, err.Error())
		}
		r.SubjectIDHash, r.SubjectIDMasked, r.SubjectIDEnc = p.Hash(c), pii.Mask(c), enc
		if r.SubjectIDType == "" && isIDCard && idNumberProblem(c, now) == "" {
			r.SubjectIDType = idCardType
		}

	case classDate:
		var d time.Time
		if f == fDecisionDate || !openEndValues[CleanText(v)] {
			var err error
			if d, err = parseDate(strings.TrimSpace(foldWidth(v))); err != nil {
				return bad(ReasonBadDate, v, err.Error())
			}
		}
		switch f {
		case fDecisionDate:
			r.DecisionDate = d
		case fValidUntil:
			r.ValidUntil = d
		case fPublicityUntil:
			r.PublicityUntil = d
		}

	case classAmount:
		a, err := parseAmount(v, sp.fields[f].unit)
		if err != nil {
			return bad(ReasonBadAmount, v, err.Error())
		}
		if f == fFineAmount {
			r.FineAmount = a
		} else {
			r.ConfiscationAmount = a
		}

	case classEnum:
		t := CleanText(v)
		switch f {
		case fKind:
			k, ok := mapKind(t)
			if !ok {
				return bad(ReasonUnknownKind, v, "not a record kind (want one of "+kindList()+", or a kind_map entry)")
			}
			r.Kind = k
		case fStatus:
			s, ok := mapStatus(t)
			if !ok {
				return bad(ReasonBadValue, v, "not a known status")
			}
			r.Status = s
		case fSubjectType:
			st, ok := mapSubjectType(t)
			if !ok {
				return bad(ReasonBadValue, v, "not a known subject type")
			}
			r.SubjectType = st
		case fSeverity:
			s, ok := mapSeverity(t)
			if !ok {
				return bad(ReasonBadValue, v, "not a severity (轻微/一般/严重)")
			}
			r.Severity = s
		}
	}
	return nil
}

// textField points at the record's string field for a text or code field.
func textField(r *record.Record, f field) *string {
	switch f {
	case fSubjectName:
		return &r.SubjectName
	case fSubjectUSCC:
		return &r.SubjectUSCC
	case fSubjectIDType:
		return &r.SubjectIDType
	case fLegalRep:
		return &r.LegalRep
	case fRegionCode:
		return &r.RegionCode
	case fViolationType:
		return &r.ViolationType
	case fFacts:
		return &r.Facts
	case fLegalBasis:
		return &r.LegalBasis
	case fCategory:
		return &r.Category
	case fContent:
		return &r.Content
	case fAuthorityName:
		return &r.AuthorityName
	case fAuthorityUSCC:
		return &r.AuthorityUSCC
	case fDataSourceUnit:
		return &r.DataSourceUnit
	case fDataSourceUSCC:
		return &r.DataSourceUSCC
	case fRemark:
		return &r.Remark
	}
	panic("normalize: no text field for " + f.String())
}

// checkDates applies the cross-field date rules.
func checkDates(r *record.Record, now time.Time) *fault {
	today, _ := dateOf(now.In(shanghai))
	if r.DecisionDate.After(today) {
		return &fault{field: fDecisionDate, reason: ReasonFutureDate, value: r.DecisionDate.Format(time.DateOnly),
			why: "after the ingest date " + today.Format(time.DateOnly)}
	}
	for _, end := range []struct {
		f field
		t time.Time
	}{{fValidUntil, r.ValidUntil}, {fPublicityUntil, r.PublicityUntil}} {
		if !end.t.IsZero() && r.DecisionDate.After(end.t) {
			return &fault{field: end.f, reason: ReasonDateOrder, value: end.t.Format(time.DateOnly),
				why: "before the decision date " + r.DecisionDate.Format(time.DateOnly)}
		}
	}
	return nil
}

// applyDefaults fills what a source may leave out.
func applyDefaults(r *record.Record) {
	if r.Status == "" {
		r.Status = record.Active
	}
	person := r.SubjectIDHash != "" || r.SubjectIDMasked != ""
	if r.SubjectType == "" {
		switch {
		case person:
			r.SubjectType = record.CivilServant
		case strings.HasPrefix(r.SubjectUSCC, "12"):
			// GB 32100: registered by 机构编制 (1), type 事业单位 (2).
			r.SubjectType = record.PublicInstitution
		case r.SubjectUSCC != "":
			r.SubjectType = record.Agency
		case (r.Kind == record.DisciplinaryAction || r.Kind == record.Accountability) && !orgName(r.SubjectName):
			// 处分 and 问责 fall mostly on people; with neither code nor ID
			// and no organisation's name, the subject is a person.
			r.SubjectType = record.CivilServant
		default:
			r.SubjectType = record.Agency
		}
	}
	if r.RegionCode == "" && r.SubjectUSCC != "" && allDigits(r.SubjectUSCC[2:8]) {
		// Chars 3–8 of a 统一社会信用代码 are the registering region.
		r.RegionCode = r.SubjectUSCC[2:8]
	}
}

// orgSuffixes end the names of organs and institutions.
var orgSuffixes = []string{"政府", "委员会", "局", "厅", "部", "委", "办公室", "办", "院", "所", "中心", "站", "队", "处", "科", "室", "会", "校", "馆", "组", "署", "监狱", "法院", "检察院", "街道", "镇", "乡"}

func orgName(name string) bool {
	for _, s := range orgSuffixes {
		if strings.HasSuffix(name, s) {
			return true
		}
	}
	return false
}

var utf8BOM = []byte("\xef\xbb\xbf")

// decodePayload returns the payload as UTF-8.
func decodePayload(raw *record.Raw) ([]byte, error) {
	p := raw.Payload
	switch lookupKey(strings.TrimSpace(raw.Encoding)) {
	case "", "utf-8", "utf8":
	case "gb18030", "gbk", "gb2312", "cp936", "gb-18030", "gb_2312", "euc-cn":
		d, err := simplifiedchinese.GB18030.NewDecoder().Bytes(p)
		if err != nil {
			return nil, fmt.Errorf("not valid %s: %w", raw.Encoding, err)
		}
		p = d
	default:
		return nil, fmt.Errorf("unsupported encoding %q", raw.Encoding)
	}
	p = bytes.TrimPrefix(p, utf8BOM)
	if !utf8.Valid(p) {
		return nil, errors.New("not valid UTF-8")
	}
	return p, nil
}

func kindList() string {
	s := make([]string, len(record.Kinds))
	for i, k := range record.Kinds {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}
