package normalize

// Canonical field names: one per record.Record field a source can give, as
// used in Mapping keys and in a Reject's Field.
const (
	FieldKind               = "kind"
	FieldStatus             = "status"
	FieldSeverity           = "severity"
	FieldSubjectType        = "subject_type"
	FieldSubjectName        = "subject_name"
	FieldSubjectUSCC        = "subject_uscc"
	FieldSubjectIDType      = "subject_id_type"
	FieldSubjectIDNumber    = "subject_id_number" // clear 公民身份号码: only ever goes through pii
	FieldLegalRep           = "legal_rep"
	FieldRegionCode         = "region_code"
	FieldDocNo              = "doc_no"
	FieldViolationType      = "violation_type"
	FieldFacts              = "facts"
	FieldLegalBasis         = "legal_basis"
	FieldCategory           = "category"
	FieldContent            = "content"
	FieldFineAmount         = "fine_amount"
	FieldConfiscationAmount = "confiscation_amount"
	FieldDecisionDate       = "decision_date"
	FieldValidUntil         = "valid_until"
	FieldPublicityUntil     = "publicity_until"
	FieldAuthorityName      = "authority_name"
	FieldAuthorityUSCC      = "authority_uscc"
	FieldDataSourceUnit     = "data_source_unit"
	FieldDataSourceUSCC     = "data_source_uscc"
	FieldRemark             = "remark"
)

// field indexes the canonical fields; the order is the order Normalize
// checks them in, so a payload with several faults is rejected for the
// first one in this order.
type field uint8

const (
	fKind field = iota
	fStatus
	fSeverity
	fSubjectType
	fSubjectName
	fSubjectUSCC
	fSubjectIDType
	fSubjectIDNumber
	fLegalRep
	fRegionCode
	fDocNo
	fViolationType
	fFacts
	fLegalBasis
	fCategory
	fContent
	fFineAmount
	fConfiscationAmount
	fDecisionDate
	fValidUntil
	fPublicityUntil
	fAuthorityName
	fAuthorityUSCC
	fDataSourceUnit
	fDataSourceUSCC
	fRemark
	numFields
)

var fieldNames = [numFields]string{
	FieldKind, FieldStatus, FieldSeverity, FieldSubjectType, FieldSubjectName,
	FieldSubjectUSCC, FieldSubjectIDType, FieldSubjectIDNumber, FieldLegalRep,
	FieldRegionCode, FieldDocNo, FieldViolationType, FieldFacts, FieldLegalBasis,
	FieldCategory, FieldContent, FieldFineAmount, FieldConfiscationAmount,
	FieldDecisionDate, FieldValidUntil, FieldPublicityUntil, FieldAuthorityName,
	FieldAuthorityUSCC, FieldDataSourceUnit, FieldDataSourceUSCC, FieldRemark,
}

func (f field) String() string { return fieldNames[f] }

// fieldByName maps a canonical name, lower-cased, to its field.
var fieldByName = func() map[string]field {
	m := make(map[string]field, numFields)
	for f := range numFields {
		m[fieldNames[f]] = f
	}
	return m
}()

// fieldClass says how a field's text is cleaned and checked.
type fieldClass uint8

const (
	classText   fieldClass = iota // CleanText
	classCode                     // CleanCode (统一社会信用代码, region code)
	classID                       // CleanCode, then pii
	classDocNo                    // NormalizeDocNo
	classDate                     // ParseDate
	classAmount                   // ParseAmount
	classEnum                     // CleanText, then a code table
)

func (f field) class() fieldClass {
	switch f {
	case fKind, fStatus, fSeverity, fSubjectType:
		return classEnum
	case fSubjectUSCC, fAuthorityUSCC, fDataSourceUSCC, fRegionCode:
		return classCode
	case fSubjectIDNumber:
		return classID
	case fDocNo:
		return classDocNo
	case fDecisionDate, fValidUntil, fPublicityUntil:
		return classDate
	case fFineAmount, fConfiscationAmount:
		return classAmount
	}
	return classText
}
