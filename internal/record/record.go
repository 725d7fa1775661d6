// Package record holds the canonical 政务失信记录 (government dishonesty record),
// the raw payload a connector yields and the reject a bad payload becomes.
//
// It is the single contract between normalize, store and push. It must not
// depend on any other syncd package.
package record

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"
)

// Kind is the kind of dishonesty record.
type Kind string

// Kinds in scope (DOMAIN.md "Record kinds in scope").
const (
	CourtJudgment      Kind = "court_judgment"      // 司法判决
	JudgmentDebtor     Kind = "judgment_debtor"     // 失信被执行人
	AdminPenalty       Kind = "admin_penalty"       // 行政处罚
	DisciplinaryAction Kind = "disciplinary_action" // 纪律处分
	Accountability     Kind = "accountability"      // 问责处理
	ContractBreach     Kind = "contract_breach"     // 政府采购/PPP/招商引资 违约失信
)

// Kinds lists every Kind, in the order the store's Enum declares them.
var Kinds = []Kind{CourtJudgment, JudgmentDebtor, AdminPenalty, DisciplinaryAction, Accountability, ContractBreach}

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool {
	for _, v := range Kinds {
		if k == v {
			return true
		}
	}
	return false
}

// Status is where a record stands in its publicity life cycle.
type Status string

// Statuses (DESIGN.md §2).
const (
	Active    Status = "active"
	Disputed  Status = "disputed"  // 异议 under review: withheld from publication
	Corrected Status = "corrected" // 更正
	Revoked   Status = "revoked"   // 撤销
	Repaired  Status = "repaired"  // 信用修复
	Expired   Status = "expired"   // 公示期满
)

// Statuses lists every Status, in the order the store's Enum declares them.
var Statuses = []Status{Active, Disputed, Corrected, Revoked, Repaired, Expired}

// Valid reports whether s is a known status.
func (s Status) Valid() bool {
	for _, v := range Statuses {
		if s == v {
			return true
		}
	}
	return false
}

// Published reports whether a record in this status belongs on a platform;
// the others are withdrawn.
func (s Status) Published() bool { return s == Active || s == Corrected }

// Severities of a record (失信程度, DOMAIN.md "Publicity"), the values of
// Record.Severity; empty means unknown.
const (
	SeverityMinor   = "轻微" // publicity ≤ 3 months, normally not published
	SeverityGeneral = "一般" // 3 months – 1 year
	SeveritySerious = "严重" // 1 – 3 years
)

// Severities lists the severities from the least to the most severe.
var Severities = []string{SeverityMinor, SeverityGeneral, SeveritySerious}

// SubjectType is the kind of party the record is about (行政相对人类别).
type SubjectType string

// Subject types.
const (
	Agency            SubjectType = "agency"             // 机关
	PublicInstitution SubjectType = "public_institution" // 参公事业单位
	CivilServant      SubjectType = "civil_servant"      // 公务员
)

// SubjectTypes lists every SubjectType.
var SubjectTypes = []SubjectType{Agency, PublicInstitution, CivilServant}

// Valid reports whether t is a known subject type.
func (t SubjectType) Valid() bool {
	for _, v := range SubjectTypes {
		if t == v {
			return true
		}
	}
	return false
}

// Amount is a money amount in 万元 with six decimals, held as an integer
// count of 0.000001 万元 (0.01 元) so it is exact and cheap to compare.
type Amount int64

// AmountScale is the number of Amount units in one 万元.
const AmountScale = 1_000_000

// String formats a as a plain decimal in 万元, e.g. "1.5" or "0.000001".
func (a Amount) String() string {
	neg := a < 0
	if neg {
		a = -a
	}
	whole, frac := int64(a)/AmountScale, int64(a)%AmountScale
	buf := make([]byte, 0, 24)
	if neg {
		buf = append(buf, '-')
	}
	buf = appendInt(buf, whole)
	if frac != 0 {
		digits := [6]byte{}
		for i := 5; i >= 0; i-- {
			digits[i] = byte('0' + frac%10)
			frac /= 10
		}
		n := 6
		for n > 0 && digits[n-1] == '0' {
			n--
		}
		buf = append(buf, '.')
		buf = append(buf, digits[:n]...)
	}
	return string(buf)
}

func appendInt(b []byte, v int64) []byte {
	if v == 0 {
		return append(b, '0')
	}
	var tmp [20]byte
	i := len(tmp)
	for v > 0 {
		i--
		tmp[i] = byte('0' + v%10)
		v /= 10
	}
	return append(b, tmp[i:]...)
}

// Record is the canonical 政务失信记录. Field names follow the national 双公示
// standard where they overlap (the CF_ code is noted), extended for judgments
// and disciplinary actions.
type Record struct {
	// Identity.
	RecordID string // deterministic: see ID
	Version  uint64 // monotonic per RecordID; a correction is a higher version
	Kind     Kind
	Status   Status
	Severity string // SeverityMinor/General/Serious (轻微/一般/严重), empty when unknown

	// Subject (行政相对人/当事人).
	SubjectType     SubjectType
	SubjectName     string // CF_XDR_MC
	SubjectUSCC     string // CF_XDR_SHXYM 统一社会信用代码
	SubjectIDType   string // CF_XDR_ZJLX
	SubjectIDHash   string // keyed hash of the ID number, for exact search
	SubjectIDMasked string // e.g. 211102********1234, for display
	SubjectIDEnc    []byte // AEAD ciphertext; only the push path decrypts
	LegalRep        string // CF_FRDB
	RegionCode      string // GB/T 2260, e.g. 211100

	// Decision.
	DocNo              string // CF_WSH 决定书文号/案号
	ViolationType      string // CF_WFXW 违法行为类型 / 案由
	Facts              string // CF_SY
	LegalBasis         string // CF_YJ
	Category           string // CF_CFLB 处罚类别 / 处分种类
	Content            string // CF_NR
	FineAmount         Amount // CF_NR_FK 万元
	ConfiscationAmount Amount // CF_NR_WFFF 万元
	DecisionDate       time.Time
	ValidUntil         time.Time // CF_YXQ; zero when none
	PublicityUntil     time.Time // CF_GSJZQ; zero when none

	// Authority.
	AuthorityName  string // CF_CFJG
	AuthorityUSCC  string // CF_CFJGDM
	DataSourceUnit string // CF_SJLY
	DataSourceUSCC string // CF_SJLYDM
	Remark         string // BZ

	// Provenance.
	SourceSystem    string
	SourceKey       string
	SourceUpdatedAt time.Time
	IngestedAt      time.Time
	RawHash         string // hex SHA-256 of the raw payload
	ContentHash     string // hex SHA-256 of the canonical content, see ContentHash

	// Quality.
	// Warnings are the validation rules this version failed whose action is
	// "warn", as "<reason>:<field>" (REASONS.md); it was kept anyway.
	Warnings []string
	// Unpublished says the record's severity tier is not published (by
	// default 轻微, DOMAIN.md): it is stored and audited but platforms are
	// not sent it.
	Unpublished bool
}

// ID derives the deterministic record_id from kind, issuing authority and the
// normalized document number, so the same decision reported by two sources,
// or pulled twice, is one record. authority should be the authority's 统一社会信用代码
// when known, else its name.
func ID(kind Kind, authority, docNo string) string {
	var buf [256]byte
	b := append(buf[:0], kind...)
	b = append(b, 0)
	b = append(b, authority...)
	b = append(b, 0)
	b = append(b, docNo...)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// Raw is what a connector yields: the payload exactly as the source sent it.
type Raw struct {
	Source    string    // configured source name
	Key       string    // the source's own key for the record
	Payload   []byte    // as sent
	Encoding  string    // declared encoding of Payload, "utf-8" when already decoded
	UpdatedAt time.Time // the source's updated-at, zero when the source has none
	FetchedAt time.Time
	// Problem is set by a connector that could read the payload but not
	// place it (no key, no timestamp, undecodable text). The runner rejects
	// such a raw with reason "bad_source_item" and this message.
	Problem string
}

// Hash is the hex SHA-256 of the payload.
func (r *Raw) Hash() string {
	sum := sha256.Sum256(r.Payload)
	return hex.EncodeToString(sum[:])
}

// Reject is a payload that could not become a Record, with the reason.
// Nothing a source sends is dropped silently: it is stored, rejected, or
// counted as an exact duplicate.
type Reject struct {
	Source    string
	SourceKey string
	Field     string // canonical field at fault, empty for the whole payload
	Reason    string // stable reason code, documented in README and internal/normalize/REASONS.md
	Message   string // for people; never holds a clear ID number
	Payload   []byte // as sent, but a person's ID number masked
	// PayloadSealed is the original payload sealed with the PII key when it
	// held an ID number (Payload then differs from what was sent).
	PayloadSealed []byte
	RawHash       string
	RejectedAt    time.Time
}

// ParseAmount reads a plain decimal in 万元 as written by Amount.String or by
// ClickHouse's Decimal(18,6); it is not a cleaner for source input.
func ParseAmount(s string) (Amount, error) {
	if s == "" {
		return 0, nil
	}
	neg := false
	if s[0] == '-' {
		neg, s = true, s[1:]
	}
	var whole, frac int64
	fracDigits := 0
	seenDot := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.' && !seenDot:
			seenDot = true
		case c >= '0' && c <= '9' && !seenDot:
			whole = whole*10 + int64(c-'0')
			if whole > 9_000_000_000_000 {
				return 0, fmt.Errorf("amount %q out of range", s)
			}
		case c >= '0' && c <= '9' && fracDigits < 6:
			frac = frac*10 + int64(c-'0')
			fracDigits++
		case c >= '0' && c <= '9':
			// ClickHouse never writes more than 6; ignore further digits.
		default:
			return 0, fmt.Errorf("amount %q: unexpected %q", s, c)
		}
	}
	for ; fracDigits < 6; fracDigits++ {
		frac *= 10
	}
	a := Amount(whole*AmountScale + frac)
	if neg {
		a = -a
	}
	return a, nil
}
