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
	clock  func() time.Time
}

// Option configures a Normalizer beyond its Mapping.
type Option func(*options)

type options struct {
	clock       func() time.Time
	authorities []Authority
}

// WithClock sets the clock publicity expiry is judged by (a record whose
// publicity_until is before its date is expired). Without it, the ingest
// time given to Normalize is the clock.
func WithClock(clock func() time.Time) Option { return func(o *options) { o.clock = clock } }

// WithAuthorities gives the authorities directory shared by every source;
// a source's Mapping.Authorities add to it.
func WithAuthorities(dir []Authority) Option {
	return func(o *options) { o.authorities = append(o.authorities, dir...) }
}

// New compiles m for source. A bad mapping gives Validate's error as is
// (the caller knows where the mapping came from). p protects ID numbers; it
// may be nil only when m (or its profile) maps no subject_id_number. source
// is the fallback for Raw.Source.
func New(source string, m Mapping, p *pii.Protector, opts ...Option) (*Normalizer, error) {
	if strings.TrimSpace(source) == "" {
		return nil, errors.New("normalize: empty source name")
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	sp, err := m.compile(o.authorities)
	if err != nil {
		return nil, err
	}
	if sp.fields[fSubjectIDNumber].path != "" && p == nil {
		what := "set"
		if m.Fields[FieldSubjectIDNumber] == "" {
			what = "set by profile " + m.Profile
		}
		return nil, fmt.Errorf("fields.%s: %s, but no pii protector is configured to protect ID numbers", FieldSubjectIDNumber, what)
	}
	return &Normalizer{source: source, sp: sp, p: p, clock: o.clock}, nil
}

// fault is why a payload is rejected (or, under a warn rule, warned about).
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
//
// The record carries the warnings (as codes) and the Unpublished flag;
// NormalizeInto gives the warnings in full.
func (n *Normalizer) Normalize(raw *record.Raw, now time.Time) (rec record.Record, rej *record.Reject) {
	var res Result
	n.NormalizeInto(raw, now, &res)
	return res.Record, res.Reject
}

// NormalizeInto is Normalize with everything it learns: it overwrites res,
// reusing res.Warnings' storage, so a caller can keep one Result per
// goroutine.
func (n *Normalizer) NormalizeInto(raw *record.Raw, now time.Time, res *Result) {
	n.normalizeInto(raw, raw.Hash(), now, res)
}

// NormalizeHashed is Normalize for a caller that has hashed the payload
// already (it stores the raw payload under that hash): rawHash must be
// raw.Hash(). It saves hashing every payload twice.
func (n *Normalizer) NormalizeHashed(raw *record.Raw, rawHash string, now time.Time) (rec record.Record, rej *record.Reject) {
	var res Result
	n.NormalizeHashedInto(raw, rawHash, now, &res)
	return res.Record, res.Reject
}

// NormalizeHashedInto is NormalizeInto with the payload's hash given (see
// NormalizeHashed).
func (n *Normalizer) NormalizeHashedInto(raw *record.Raw, rawHash string, now time.Time, res *Result) {
	n.normalizeInto(raw, rawHash, now, res)
}

func (n *Normalizer) normalizeInto(raw *record.Raw, rawHash string, now time.Time, res *Result) {
	res.Record = record.Record{}
	res.Reject = nil
	res.Warnings = res.Warnings[:0]
	res.Unpublished = false
	if flt := n.normalize(raw, now, res); flt != nil {
		rj := &record.Reject{
			Source:     raw.Source,
			SourceKey:  raw.Key,
			Reason:     flt.reason,
			Message:    flt.message(),
			Payload:    raw.Payload,
			RawHash:    rawHash,
			RejectedAt: now,
		}
		if !flt.whole {
			rj.Field = flt.field.String()
		}
		if rj.Source == "" {
			rj.Source = n.source
		}
		res.Record = record.Record{}
		res.Reject = rj
		res.Warnings = res.Warnings[:0]
		return
	}
	r := &res.Record
	r.RawHash = rawHash
	r.SourceSystem = raw.Source
	if r.SourceSystem == "" {
		r.SourceSystem = n.source
	}
	r.SourceKey = raw.Key
	r.SourceUpdatedAt = raw.UpdatedAt
	r.IngestedAt = now
	r.Warnings = res.WarningCodes()
	r.Unpublished = res.Unpublished
}

// normalize fills res.Record from raw, or returns the fault that rejects it.
func (n *Normalizer) normalize(raw *record.Raw, now time.Time, res *Result) *fault {
	payload, err := decodePayload(raw)
	if err != nil {
		return &fault{whole: true, reason: ReasonBadPayload, noValue: true, why: err.Error()}
	}
	var vals [numFields]jsonValue
	if err := scanObject(payload, n.sp.paths, &vals); err != nil {
		if err != errNotUTF8 && !utf8.Valid(payload) {
			err = errNotUTF8 // the encoding is the first problem, wherever it is
		}
		return &fault{whole: true, reason: ReasonBadPayload, noValue: true, why: err.Error()}
	}
	texts := valueTexts(&vals)

	r := &res.Record
	publicityGiven := false
	for f := range numFields {
		v, clean, ok, flt := n.value(f, &vals[f], texts[f])
		if flt != nil {
			return flt
		}
		if !ok {
			if required(f) {
				return n.missing(f)
			}
			continue
		}
		if f == fPublicityUntil {
			publicityGiven = true
		}
		if flt := n.sp.set(r, f, v, clean, now, n.p, res); flt != nil {
			return flt
		}
	}
	authority, flt := n.sp.resolveAuthority(r, res)
	if flt != nil {
		return flt
	}
	if r.AuthorityName == "" && r.AuthorityUSCC == "" {
		return &fault{field: fAuthorityName, reason: ReasonMissingField, noValue: true,
			why: "missing, and so is authority_uscc: one of them is required"}
	}
	if flt := n.sp.checkDates(r, now, res); flt != nil {
		return flt
	}
	if flt := n.sp.checkCodeTables(r, res); flt != nil {
		return flt
	}
	applyDefaults(r)
	if flt := n.sp.publicity(r, publicityGiven, res); flt != nil {
		return flt
	}
	today := now
	if n.clock != nil {
		today = n.clock()
	}
	expire(r, today)

	r.RecordID = record.ID(r.Kind, authority, r.DocNo)
	r.ContentHash = r.ComputeContentHash()
	return nil
}

// valueTexts returns the text of each found value. The unescaped ones share
// one allocation: a record's strings are all substrings of it.
func valueTexts(vals *[numFields]jsonValue) (texts [numFields]string) {
	total := 0
	for i := range vals {
		if v := &vals[i]; v.plain() {
			total += len(v.raw)
		}
	}
	var b strings.Builder
	b.Grow(total)
	var ends [numFields]int
	for i := range vals {
		if v := &vals[i]; v.plain() {
			b.Write(v.raw)
		}
		ends[i] = b.Len()
	}
	arena := b.String()
	start := 0
	for i := range vals {
		v := &vals[i]
		switch {
		case v.plain():
			texts[i] = arena[start:ends[i]]
		case v.kind == jsonString:
			texts[i] = unescape(v.raw)
		}
		start = ends[i]
	}
	return texts
}

// value returns f's source value (after its value map) or its constant,
// raw and CleanText'ed; ok is false when there is neither. s is the text of
// jv.
func (n *Normalizer) value(f field, jv *jsonValue, s string) (v, clean string, ok bool, flt *fault) {
	fs := &n.sp.fields[f]
	switch jv.kind {
	case jsonObject, jsonArray:
		what := "object"
		if jv.kind == jsonArray {
			what = "array"
		}
		return "", "", false, &fault{field: f, reason: ReasonBadValue, noValue: true,
			why: fmt.Sprintf("source path %q holds a JSON %s, not a value", fs.path, what)}
	case jsonNone, jsonNull:
	default:
		if t := cleanValid(s); t != "" {
			if len(fs.values) > 0 {
				if mapped, isMapped := fs.values[lookupKey(t)]; isMapped {
					if mc := CleanText(mapped); mc != "" {
						return mapped, mc, true, nil
					}
					break // mapped to "": no value
				}
			}
			if len(t) > maxEmptyValueLen || !emptyValues[lookupKey(t)] { // 无, /, - …: no value
				return s, t, true, nil
			}
		}
	}
	if fs.hasConst && fs.constClean != "" {
		return fs.constant, fs.constClean, true, nil
	}
	return "", "", false, nil
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

// set cleans, checks and stores v (clean is CleanText(v)) as field f of r.
// p may be nil when f is not the ID number; res may be nil when warnings do
// not matter (checking config).
func (sp *spec) set(r *record.Record, f field, v, clean string, now time.Time, p *pii.Protector, res *Result) *fault {
	bad := func(reason, value, why string) *fault {
		return &fault{field: f, reason: reason, value: value, why: why}
	}
	switch f.class() {
	case classText:
		// A person's ID number inside free text (当事人…身份证号…) is masked:
		// the record, its store and the platforms never see it in clear.
		clean, _ = pii.MaskIDsInString(clean)
		*textField(r, f) = clean

	case classDocNo:
		r.DocNo = NormalizeDocNo(v)

	case classCode:
		c := CleanCode(v)
		rl := codeRule(f)
		if sp.actions[rl] != actOff {
			var flt *fault
			if f == fRegionCode {
				if len(c) != 6 || !allDigits(c) {
					flt = bad(ReasonBadValue, v, "not a 6-digit GB/T 2260 region code")
				}
			} else if why := usccProblem(c); why != "" {
				flt = bad(ReasonInvalidUSCC, c, why)
			}
			if flt != nil {
				if flt = sp.flag(res, rl, flt); flt != nil {
					return flt
				}
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
		if isIDCard && sp.actions[ruleSubjectIDNumber] != actOff {
			if why := idNumberProblem(c, now); why != "" {
				if flt := sp.flag(res, ruleSubjectIDNumber, bad(ReasonInvalidIDNumber, c, why)); flt != nil {
					return flt
				}
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
		if f == fDecisionDate || !openEndValues[clean] {
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
		t := clean
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
func (sp *spec) checkDates(r *record.Record, now time.Time, res *Result) *fault {
	today, _ := dateOf(now.In(shanghai))
	if r.DecisionDate.After(today) && sp.actions[ruleFutureDate] != actOff {
		flt := &fault{field: fDecisionDate, reason: ReasonFutureDate, value: r.DecisionDate.Format(time.DateOnly),
			why: "after the ingest date " + today.Format(time.DateOnly)}
		if flt = sp.flag(res, ruleFutureDate, flt); flt != nil {
			return flt
		}
	}
	if sp.actions[ruleDateOrder] == actOff {
		return nil
	}
	for _, end := range [...]struct {
		f field
		t time.Time
	}{{fValidUntil, r.ValidUntil}, {fPublicityUntil, r.PublicityUntil}} {
		if !end.t.IsZero() && r.DecisionDate.After(end.t) {
			flt := &fault{field: end.f, reason: ReasonDateOrder, value: end.t.Format(time.DateOnly),
				why: "before the decision date " + r.DecisionDate.Format(time.DateOnly)}
			if flt = sp.flag(res, ruleDateOrder, flt); flt != nil {
				return flt
			}
		}
	}
	return nil
}

// publicity derives the severity when the source gave none, then the
// publicity period: publicity_until from the decision date when the source
// gave none (公示截止期), the publicity_too_long rule when it gave one.
func (sp *spec) publicity(r *record.Record, given bool, res *Result) *fault {
	if r.Severity == "" {
		r.Severity = sp.deriveSeverity(r)
	}
	sev := severityOf(r.Severity)
	if sev == sevNone {
		return nil
	}
	t := &sp.tiers[sev]
	res.Unpublished = !t.publish
	if t.period.zero() {
		return nil
	}
	maxUntil := t.period.add(r.DecisionDate)
	switch {
	case !given:
		r.PublicityUntil = maxUntil
	case sp.actions[rulePublicityTooLong] == actOff:
	case r.PublicityUntil.IsZero(): // 长期: no end
		flt := &fault{field: fPublicityUntil, reason: ReasonPublicityTooLong, noValue: true,
			why: "no end (长期), but the " + r.Severity + " period ends on " + maxUntil.Format(time.DateOnly)}
		return sp.flag(res, rulePublicityTooLong, flt)
	case r.PublicityUntil.After(maxUntil):
		flt := &fault{field: fPublicityUntil, reason: ReasonPublicityTooLong, value: r.PublicityUntil.Format(time.DateOnly),
			why: "after " + maxUntil.Format(time.DateOnly) + ", the end of the " + r.Severity + " period from the decision date"}
		return sp.flag(res, rulePublicityTooLong, flt)
	}
	return nil
}

// expire marks a published record whose publicity_until is before today (in
// Asia/Shanghai) expired (公示期满), as the housekeeping job would.
func expire(r *record.Record, now time.Time) {
	if r.PublicityUntil.IsZero() || !r.Status.Published() {
		return
	}
	if today, _ := dateOf(now.In(shanghai)); r.PublicityUntil.Before(today) {
		r.Status = record.Expired
	}
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
	// UTF-8 validity is checked by scanObject, in the same pass.
	return bytes.TrimPrefix(p, utf8BOM), nil
}

func kindList() string {
	s := make([]string, len(record.Kinds))
	for i, k := range record.Kinds {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}
