package sandbox

import (
	"strings"
	"time"
)

// Check digits of the identity codes the simulators generate and the platform
// verifies (DOMAIN.md "Check digits"). Kept here rather than imported so the
// simulators stay independent of the code under test: a bug in syncd's own
// validation must not be mirrored by the platform that is meant to catch it.

const usccCharset = "0123456789ABCDEFGHJKLMNPQRTUWXY"

var (
	usccWeights = [17]int{1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28}
	idWeights   = [17]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}
	orgWeights  = [8]int{3, 7, 9, 10, 5, 8, 4, 2}
)

// usccCheck returns the 18th character of the 统一社会信用代码 (GB 32100) whose
// first 17 characters are body, and false if body is not 17 valid characters.
func usccCheck(body string) (byte, bool) {
	if len(body) != 17 {
		return 0, false
	}
	sum := 0
	for i := 0; i < 17; i++ {
		v := strings.IndexByte(usccCharset, body[i])
		if v < 0 {
			return 0, false
		}
		sum += v * usccWeights[i]
	}
	return usccCharset[(31-sum%31)%31], true
}

// validUSCC reports whether s is an 18-character 统一社会信用代码 with a correct
// check character. It is strict: no lower case, spaces or full-width forms.
func validUSCC(s string) bool {
	if len(s) != 18 {
		return false
	}
	c, ok := usccCheck(s[:17])
	return ok && c == s[17]
}

// orgCodeCheck returns the 9th character of a 组织机构代码 (GB 11714) whose first
// eight characters are body.
func orgCodeCheck(body string) (byte, bool) {
	if len(body) != 8 {
		return 0, false
	}
	sum := 0
	for i := 0; i < 8; i++ {
		c := body[i]
		var v int
		switch {
		case c >= '0' && c <= '9':
			v = int(c - '0')
		case c >= 'A' && c <= 'Z':
			v = int(c-'A') + 10
		default:
			return 0, false
		}
		sum += v * orgWeights[i]
	}
	switch r := 11 - sum%11; r {
	case 10:
		return 'X', true
	case 11:
		return '0', true
	default:
		return byte('0' + r), true
	}
}

// idCheck returns the 18th character of a 公民身份号码 (GB 11643) whose first 17
// characters are body.
func idCheck(body string) (byte, bool) {
	if len(body) != 17 {
		return 0, false
	}
	sum := 0
	for i := 0; i < 17; i++ {
		c := body[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		sum += int(c-'0') * idWeights[i]
	}
	return "10X98765432"[sum%11], true
}

// validIDNo reports whether s is an 18-character 公民身份号码 with an existing
// birth date and a correct check character.
func validIDNo(s string) bool {
	if len(s) != 18 {
		return false
	}
	if _, err := time.Parse("20060102", s[6:14]); err != nil {
		return false
	}
	c, ok := idCheck(s[:17])
	return ok && c == s[17]
}
