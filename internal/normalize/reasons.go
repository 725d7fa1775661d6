package normalize

// Reject reason codes (record.Reject.Reason), also the Reason of a Warning
// when a rule's action is warn. They are stable: stores,
// dashboards and platform feedback match on them. REASONS.md documents each
// with an example.
const (
	ReasonBadPayload      = "bad_payload"       // not a JSON object, or not decodable in its declared encoding
	ReasonMissingField    = "missing_field"     // a required field is absent or empty
	ReasonBadDate         = "bad_date"          // a date that cannot be read or does not exist
	ReasonBadAmount       = "bad_amount"        // an amount that cannot be read, or is negative
	ReasonUnknownKind     = "unknown_kind"      // the kind maps to no record.Kind
	ReasonBadValue        = "bad_value"         // a value outside its code table (status, subject type, …)
	ReasonInvalidUSCC     = "invalid_uscc"      // a 统一社会信用代码 failing GB 32100
	ReasonInvalidIDNumber = "invalid_id_number" // a 公民身份号码 failing GB 11643
	ReasonFutureDate      = "future_date"       // decision date after the ingest date
	ReasonDateOrder       = "date_order"        // decision date after valid_until or publicity_until

	ReasonPublicityTooLong  = "publicity_too_long" // publicity_until beyond the severity's period
	ReasonUnknownAuthority  = "unknown_authority"  // the authority is not in the authorities directory
	ReasonAuthorityMismatch = "authority_mismatch" // the authority's code is not the directory's for its name
	ReasonUnknownCategory   = "unknown_category"   // a 处罚类别 / 处分 / 问责方式 outside its kind's table
	ReasonUnknownIDType     = "unknown_id_type"    // a 证件类型 outside the table
)

// Reasons lists every reason code.
func Reasons() []string {
	return []string{
		ReasonBadPayload, ReasonMissingField, ReasonBadDate, ReasonBadAmount,
		ReasonUnknownKind, ReasonBadValue, ReasonInvalidUSCC, ReasonInvalidIDNumber,
		ReasonFutureDate, ReasonDateOrder, ReasonPublicityTooLong, ReasonUnknownAuthority,
		ReasonAuthorityMismatch, ReasonUnknownCategory, ReasonUnknownIDType,
	}
}
