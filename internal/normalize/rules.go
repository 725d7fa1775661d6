package normalize

import (
	"strings"

	"github.com/panjin-gov/syncd/internal/record"
)

// Validation rules whose outcome is configurable per source (Mapping.Rules:
// rule name -> reject, warn or off). A structural fault (missing_field,
// bad_date, bad_amount, bad_payload, unknown_kind, a value outside a code
// table) always rejects: without the value there is no record to keep.
const (
	RuleSubjectUSCC       = "subject_uscc"       // invalid_uscc on subject_uscc
	RuleAuthorityUSCC     = "authority_uscc"     // invalid_uscc on authority_uscc
	RuleDataSourceUSCC    = "data_source_uscc"   // invalid_uscc on data_source_uscc
	RuleSubjectIDNumber   = "subject_id_number"  // invalid_id_number
	RuleRegionCode        = "region_code"        // bad_value: not a 6-digit region code
	RuleFutureDate        = "future_date"        // future_date
	RuleDateOrder         = "date_order"         // date_order
	RulePublicityTooLong  = "publicity_too_long" // publicity_too_long
	RuleUnknownAuthority  = "unknown_authority"  // unknown_authority
	RuleAuthorityMismatch = "authority_mismatch" // authority_mismatch
	RuleCategory          = "category"           // unknown_category
	RuleIDType            = "id_type"            // unknown_id_type
)

// Rule actions, the values of Mapping.Rules.
const (
	ActionReject = "reject" // reject the payload (record.Reject)
	ActionWarn   = "warn"   // keep the record as sent and report a Warning
	ActionOff    = "off"    // do not check
)

type ruleID uint8

const (
	ruleSubjectUSCC ruleID = iota
	ruleAuthorityUSCC
	ruleDataSourceUSCC
	ruleSubjectIDNumber
	ruleRegionCode
	ruleFutureDate
	ruleDateOrder
	rulePublicityTooLong
	ruleUnknownAuthority
	ruleAuthorityMismatch
	ruleCategory
	ruleIDType
	numRules
)

var ruleNames = [numRules]string{
	RuleSubjectUSCC, RuleAuthorityUSCC, RuleDataSourceUSCC, RuleSubjectIDNumber, RuleRegionCode,
	RuleFutureDate, RuleDateOrder, RulePublicityTooLong, RuleUnknownAuthority, RuleAuthorityMismatch,
	RuleCategory, RuleIDType,
}

type action uint8

const (
	actReject action = iota
	actWarn
	actOff
)

var actionNames = [...]string{actReject: ActionReject, actWarn: ActionWarn, actOff: ActionOff}

// defaultActions: the rules that existed before the rules config reject as
// they always did. publicity_too_long and authority_mismatch find data worth
// a look but not worth losing; unknown_authority is only useful once an
// authorities directory is complete, so it is off until a source asks.
var defaultActions = [numRules]action{
	ruleSubjectUSCC: actReject, ruleAuthorityUSCC: actReject, ruleDataSourceUSCC: actReject,
	ruleSubjectIDNumber: actReject, ruleRegionCode: actReject, ruleFutureDate: actReject,
	ruleDateOrder: actReject, rulePublicityTooLong: actWarn, ruleUnknownAuthority: actOff,
	ruleAuthorityMismatch: actWarn, ruleCategory: actWarn, ruleIDType: actWarn,
}

// Rules returns every configurable rule name with its default action.
func Rules() map[string]string {
	m := make(map[string]string, numRules)
	for id := range numRules {
		m[ruleNames[id]] = actionNames[defaultActions[id]]
	}
	return m
}

// codeRule is the check-digit rule of a code field, numRules for none.
func codeRule(f field) ruleID {
	switch f {
	case fSubjectUSCC:
		return ruleSubjectUSCC
	case fAuthorityUSCC:
		return ruleAuthorityUSCC
	case fDataSourceUSCC:
		return ruleDataSourceUSCC
	case fSubjectIDNumber:
		return ruleSubjectIDNumber
	case fRegionCode:
		return ruleRegionCode
	}
	return numRules
}

func (m *Mapping) compileRules(probs *problems, sp *spec) {
	sp.actions = defaultActions
	for key, v := range m.Rules {
		name := lookupKey(strings.TrimSpace(key))
		id := numRules
		for i, n := range ruleNames {
			if n == name {
				id = ruleID(i)
			}
		}
		if id == numRules {
			probs.add("rules."+key, "unknown rule (want one of %s)", strings.Join(ruleNames[:], ", "))
			continue
		}
		switch lookupKey(strings.TrimSpace(v)) {
		case ActionReject:
			sp.actions[id] = actReject
		case ActionWarn:
			sp.actions[id] = actWarn
		case ActionOff:
			sp.actions[id] = actOff
		default:
			probs.add("rules."+key, "unknown action %q (want reject, warn or off)", v)
		}
	}
}

// Warning is a failed rule whose action is warn: the record is kept as the
// source sent it, and the warning says what is wrong with it. Reason is one
// of the reject reason codes (REASONS.md).
type Warning struct {
	Field   string `json:"field"`   // canonical field at fault
	Reason  string `json:"reason"`  // reason code
	Message string `json:"message"` // for people; never holds a clear ID number
}

// Code is the warning as one stable string, "<reason>:<field>", e.g.
// "invalid_uscc:authority_uscc": what a store column of warnings holds.
func (w Warning) Code() string { return w.Reason + ":" + w.Field }

// Result is everything Normalize learns about one payload.
type Result struct {
	// Record is the canonical record; meaningless when Reject is set.
	Record record.Record
	// Reject is set when the payload cannot become a record.
	Reject *record.Reject
	// Warnings are the failed rules whose action is warn, in check order.
	Warnings []Warning
	// Unpublished says the record's severity tier is not to be published
	// (publicity.<tier>.publish: no; by default 轻微, DOMAIN.md "Publicity").
	// The record is stored as any other; push should withhold it.
	Unpublished bool
}

// WarningCodes returns the Code of each warning.
func (r *Result) WarningCodes() []string {
	if len(r.Warnings) == 0 {
		return nil
	}
	codes := make([]string, len(r.Warnings))
	for i, w := range r.Warnings {
		codes[i] = w.Code()
	}
	return codes
}

// flag applies rule id's action to a failed check: it returns the fault to
// reject with, or adds a warning to res (when not nil) and returns nil.
func (sp *spec) flag(res *Result, id ruleID, flt *fault) *fault {
	switch sp.actions[id] {
	case actReject:
		return flt
	case actWarn:
		if res != nil {
			res.Warnings = append(res.Warnings, Warning{Field: flt.field.String(), Reason: flt.reason, Message: flt.message()})
		}
	}
	return nil
}
