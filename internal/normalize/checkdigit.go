package normalize

import (
	"strings"
	"time"
)

// usccChars is the GB 32100-2015 character set of the 统一社会信用代码: a char's
// value is its index (no I, O, S, V, Z).
const usccChars = "0123456789ABCDEFGHJKLMNPQRTUWXY"

var usccWeights = [17]int{1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28}

// usccValue is the value of each byte in usccChars, -1 for others.
var usccValue = func() (v [256]int8) {
	for i := range v {
		v[i] = -1
	}
	for i := 0; i < len(usccChars); i++ {
		v[usccChars[i]] = int8(i)
	}
	return v
}()

// USCCCheckChar computes the GB 32100 check char (the 18th) of the first 17
// chars of a 统一社会信用代码. ok is false when first17 is not 17 chars of the
// code's character set.
func USCCCheckChar(first17 string) (c byte, ok bool) {
	if len(first17) != 17 {
		return 0, false
	}
	sum := 0
	for i := 0; i < 17; i++ {
		v := usccValue[first17[i]]
		if v < 0 {
			return 0, false
		}
		sum += int(v) * usccWeights[i]
	}
	return usccChars[(31-sum%31)%31], true
}

// ValidUSCC reports whether code is a well-formed 统一社会信用代码 (GB 32100):
// 18 chars of the code's set with a matching check char. code must already
// be clean (CleanCode: upper case, no spaces). Some early codes are legal yet
// fail the check (DOMAIN.md), so what a failure means is the caller's policy.
func ValidUSCC(code string) bool { return usccProblem(code) == "" }

// usccProblem says why code is not a valid 统一社会信用代码, "" when it is.
func usccProblem(code string) string {
	if len(code) != 18 {
		return "not 18 chars"
	}
	c, ok := USCCCheckChar(code[:17])
	switch {
	case !ok:
		return "char outside the GB 32100 set"
	case code[17] != c:
		return "check char mismatch (GB 32100)"
	}
	return ""
}

var orgWeights = [8]int{3, 7, 9, 10, 5, 8, 4, 2}

// OrgCodeCheckChar computes the GB 11714 check char (the 9th) of the first 8
// chars of a 组织机构代码 (digits and upper-case letters, A = 10 … Z = 35).
func OrgCodeCheckChar(first8 string) (c byte, ok bool) {
	if len(first8) != 8 {
		return 0, false
	}
	sum := 0
	for i := 0; i < 8; i++ {
		ch := first8[i]
		var v int
		switch {
		case ch >= '0' && ch <= '9':
			v = int(ch - '0')
		case ch >= 'A' && ch <= 'Z':
			v = int(ch-'A') + 10
		default:
			return 0, false
		}
		sum += v * orgWeights[i]
	}
	switch c9 := 11 - sum%11; c9 {
	case 10:
		return 'X', true
	case 11:
		return '0', true
	default:
		return byte('0' + c9), true
	}
}

// ValidOrgCode reports whether code is a well-formed 组织机构代码 (GB 11714),
// written as 9 chars or with the usual hyphen before the check char
// (12345678-9). code must already be clean (CleanCode).
func ValidOrgCode(code string) bool {
	if len(code) == 10 && code[8] == '-' {
		code = code[:8] + code[9:]
	}
	if len(code) != 9 {
		return false
	}
	c, ok := OrgCodeCheckChar(code[:8])
	return ok && code[8] == c
}

var idWeights = [17]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}

// IDCheckChar computes the GB 11643 check char (the 18th) of the first 17
// digits of a 公民身份号码.
func IDCheckChar(first17 string) (c byte, ok bool) {
	if len(first17) != 17 {
		return 0, false
	}
	sum := 0
	for i := 0; i < 17; i++ {
		d := first17[i]
		if d < '0' || d > '9' {
			return 0, false
		}
		sum += int(d-'0') * idWeights[i]
	}
	return "10X98765432"[sum%11], true
}

// provinces holds the GB/T 2260 province-level codes (first two digits of a
// region code): 11..15 north, 21..23 north-east, 31..37 east, 41..46
// central-south, 50..54 south-west, 61..65 north-west, 71 台湾, 81 香港, 82 澳门.
var provinces = func() (p [100]bool) {
	for _, c := range []int{11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37,
		41, 42, 43, 44, 45, 46, 50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82} {
		p[c] = true
	}
	return p
}()

// minBirthYear is the earliest birth year an ID number may carry.
const minBirthYear = 1880

// ValidIDNumber reports whether id is a well-formed 18-char 公民身份号码
// (GB 11643-1999): 17 digits and a check char (0-9 or X) that matches, a
// region whose first two digits are a real province code, and a birth date
// that exists and is not in the future. id must already be clean
// (CleanCode). The 15-digit first-generation numbers are not accepted.
func ValidIDNumber(id string) bool { return idNumberProblem(id, time.Now()) == "" }

// idNumberProblem says why id is not a valid 公民身份号码 at time now, ""
// when it is. The answer never quotes the id.
func idNumberProblem(id string, now time.Time) string {
	if len(id) != 18 {
		return "not 18 chars"
	}
	c, ok := IDCheckChar(id[:17])
	switch {
	case !ok:
		return "not 17 digits and a check char"
	case id[17] != c:
		return "check char mismatch (GB 11643)"
	case !provinces[atoi(id[:2])]:
		return "region prefix is no province"
	}
	y, m, d := atoi(id[6:10]), atoi(id[10:12]), atoi(id[12:14])
	birth := time.Date(y, time.Month(m), d, 0, 0, 0, 0, shanghai)
	if by, bm, bd := birth.Date(); y < minBirthYear || by != y || int(bm) != m || bd != d {
		return "no such birth date"
	}
	if birth.After(now) {
		return "birth date in the future"
	}
	return ""
}

// isMaskedID reports whether an ID number arrives already masked, as courts
// publish them (3423011964****3224).
func isMaskedID(id string) bool { return strings.Contains(id, "*") }
