package normalize

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/panjin-gov/syncd/internal/record"
)

// Units an amount can be given in.
const (
	UnitYuan    = "元"
	UnitWanYuan = "万元" // the 双公示 unit of CF_NR_FK and CF_NR_WFFF, and the default
)

// scaleDigits is how many decimals of a unit one record.Amount step is:
// record.Amount counts 0.000001 万元 = 0.01 元.
func scaleDigits(unit string) (int, bool) {
	switch unit {
	case UnitWanYuan, "", "万":
		return 6, true
	case UnitYuan:
		return 2, true
	}
	return 0, false
}

// maxExponent bounds the exponent of 1.5e3-style input.
const maxExponent = 40

var errNegative = errors.New("negative amount")

// ParseAmount reads a money amount as sources write it and returns it in
// 万元. unit is the unit of a bare number: 元 or 万元 ("" means 万元); a unit
// written after the number (元, 万元, 万) wins over it. Accepted:
//
//	1234.5  1,234.50  １２３  ￥1,500  1.5万元  15000元  1.5e3
//
// Conversion is exact integer arithmetic; digits finer than record.Amount's
// 0.000001 万元 (0.01 元) are rounded half up. Negative amounts are errors.
func ParseAmount(s string, unit string) (record.Amount, error) {
	a, err := parseAmount(s, unit)
	if err != nil {
		return 0, fmt.Errorf("amount %q: %w", s, err)
	}
	return a, nil
}

func parseAmount(s string, unit string) (record.Amount, error) {
	s = strings.TrimSpace(foldWidth(s))
	s = strings.ReplaceAll(s, " ", "")
	s = strings.ReplaceAll(s, "，", ",")
	for _, prefix := range []string{"￥", "¥", "RMB", "CNY"} {
		s = strings.TrimPrefix(s, prefix)
	}
	for _, suffix := range []string{UnitWanYuan, "万", UnitYuan} {
		if strings.HasSuffix(s, suffix) {
			s, unit = strings.TrimSuffix(s, suffix), suffix
			break
		}
	}
	target, ok := scaleDigits(unit)
	if !ok {
		return 0, fmt.Errorf("unknown unit %q (want %s or %s)", unit, UnitYuan, UnitWanYuan)
	}
	if s == "" {
		return 0, errors.New("no number")
	}
	if s[0] == '-' {
		return 0, errNegative
	}
	s = strings.TrimPrefix(s, "+")

	// Split into significant digits and a power of ten: value = digits × 10^exp.
	var digits [40]byte
	nd := 0    // significant digits kept
	exp := 0   // power of ten of the last kept digit
	extra := 0 // integer digits beyond the kept ones (they make it too large)
	sawDigit, sawDot, sawComma := false, false, false
	group := 0 // digits since the last comma
	i := 0
	for ; i < len(s) && s[i] != 'e' && s[i] != 'E'; i++ {
		c := s[i]
		switch {
		case isDigit(c):
			sawDigit = true
			group++
			if sawDot {
				exp--
			}
			if nd == 0 && c == '0' {
				continue // leading zero
			}
			if nd < len(digits) {
				digits[nd] = c
				nd++
			} else if !sawDot {
				extra++
			} else {
				exp++ // a fraction digit past what we keep: below rounding
			}
		case c == ',' && !sawDot && sawDigit:
			if sawComma && group != 3 || !sawComma && group > 3 {
				return 0, errors.New("misplaced thousands separator")
			}
			sawComma, group = true, 0
		case c == '.' && !sawDot:
			if sawComma && group != 3 {
				return 0, errors.New("misplaced thousands separator")
			}
			sawDot = true
		default:
			r, _ := utf8.DecodeRuneInString(s[i:])
			return 0, fmt.Errorf("unexpected %q", r)
		}
	}
	if !sawDigit {
		return 0, errors.New("no digits")
	}
	if sawComma && !sawDot && group != 3 {
		return 0, errors.New("misplaced thousands separator")
	}
	if i < len(s) {
		e := s[i+1:]
		neg := strings.HasPrefix(e, "-")
		e = strings.TrimLeft(e, "+-")
		if !allDigits(e) || len(e) > 3 || atoi(e) > maxExponent {
			return 0, errors.New("bad exponent")
		}
		if neg {
			exp -= atoi(e)
		} else {
			exp += atoi(e)
		}
	}
	exp += extra + target // now: amount = digits × 10^exp
	if nd == 0 {
		return 0, nil
	}
	if exp < 0 {
		drop := -exp
		if drop > nd {
			return 0, nil // below half a unit: rounds to zero
		}
		roundUp := digits[nd-drop] >= '5'
		if drop == nd {
			if roundUp {
				return 1, nil
			}
			return 0, nil
		}
		nd -= drop
		exp = 0
		v, ok := digitsValue(digits[:nd], 0)
		if !ok {
			return 0, errTooLarge
		}
		if roundUp {
			v++
		}
		if v > maxAmount {
			return 0, errTooLarge
		}
		return record.Amount(v), nil
	}
	v, ok := digitsValue(digits[:nd], exp)
	if !ok {
		return 0, errTooLarge
	}
	return record.Amount(v), nil
}

// maxAmount matches what record.ParseAmount reads back (9e12 万元).
const maxAmount = 9_000_000_000_000 * record.AmountScale

var errTooLarge = errors.New("too large")

// digitsValue returns digits × 10^exp if it is at most maxAmount.
func digitsValue(digits []byte, exp int) (int64, bool) {
	if len(digits)+exp > 19 {
		return 0, false
	}
	var v uint64
	for _, c := range digits {
		v = v*10 + uint64(c-'0')
	}
	for range exp {
		if v > math.MaxUint64/10 {
			return 0, false
		}
		v *= 10
	}
	if v > maxAmount {
		return 0, false
	}
	return int64(v), true
}
