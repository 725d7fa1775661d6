package normalize

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// fullWidthOffset maps a full-width ASCII variant (U+FF01..U+FF5E) to ASCII.
const fullWidthOffset = 0xFEE0

// isInvisible reports whether r is a zero-width or BOM char that sources
// leave in text copied from documents; it is dropped like whitespace.
func isInvisible(r rune) bool {
	return r == '\u200b' || r == '\u200c' || r == '\u200d' || r == '\u2060' || r == '\ufeff'
}

// isDropped reports whether CleanText drops r: control chars other than
// whitespace, and invisible chars.
func isDropped(r rune) bool {
	return isInvisible(r) || (unicode.IsControl(r) && !unicode.IsSpace(r))
}

// CleanText trims s, collapses every inner run of whitespace (including the
// ideographic space U+3000 and line breaks) to one ASCII space and drops
// control and zero-width chars. Chinese punctuation is kept as it is.
// Invalid UTF-8 becomes U+FFFD.
func CleanText(s string) string {
	if textIsClean(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	pendingSpace := false
	for _, r := range s {
		switch {
		case unicode.IsSpace(r):
			pendingSpace = b.Len() > 0
		case isDropped(r):
		default:
			if pendingSpace {
				b.WriteByte(' ')
				pendingSpace = false
			}
			b.WriteRune(r)
		}
	}
	return b.String()
}

// textIsClean is CleanText's no-allocation fast path.
func textIsClean(s string) bool {
	prevSpace := true // a leading space is not clean
	for i, r := range s {
		switch {
		case r == ' ':
			if prevSpace {
				return false
			}
			prevSpace = true
			continue
		case r < ' ' || r == 0x7f:
			return false
		case r >= utf8.RuneSelf && cleanMayChange(r):
			if r != utf8.RuneError || !strings.HasPrefix(s[i:], "\ufffd") {
				return false
			}
		}
		prevSpace = false
	}
	return !prevSpace || len(s) == 0
}

// cleanMayChange reports whether CleanText may change a non-ASCII rune:
// whitespace, C1 controls, invisible chars, and RuneError (which may stand
// for invalid UTF-8). The common CJK and punctuation ranges are answered
// without table lookups.
func cleanMayChange(r rune) bool {
	switch {
	case r <= 0xA0: // C1 controls, NEL, NBSP
		return true
	case r < 0x1680, r > 0x3000 && r < 0xFEFF:
		return false
	case r == utf8.RuneError:
		return true
	}
	return unicode.IsSpace(r) || isDropped(r)
}

// CleanCode cleans a code (统一社会信用代码, 公民身份号码, 组织机构代码): it
// removes all whitespace and invisible chars, folds full-width ASCII
// (１２３ＡＢＣ－) to half-width and upper-cases ASCII letters. It does not
// validate.
func CleanCode(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= utf8.RuneSelf || c <= ' ' || c == 0x7f || (c >= 'a' && c <= 'z') {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		switch {
		case unicode.IsSpace(r) || isInvisible(r):
			continue
		case r >= 0xFF01 && r <= 0xFF5E:
			r -= fullWidthOffset
		}
		if r >= 'a' && r <= 'z' {
			r -= 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// yearOpen and yearClose are the brackets sources put around the year of a
// document number: 〔2017〕 (the official form, GB/T 9704), [2017], (2017),
// （2017）, 【2017】, ﹝2017﹞, ［2017］, 〖2017〗, 「2017」.
func yearOpen(r rune) bool {
	switch r {
	case '〔', '[', '(', '（', '【', '﹝', '［', '〖', '「':
		return true
	}
	return false
}

func yearClose(r rune) bool {
	switch r {
	case '〕', ']', ')', '）', '】', '﹞', '］', '〗', '」':
		return true
	}
	return false
}

// NormalizeDocNo normalizes a document number (文号/案号) so the same decision
// written by two sources compares equal: whitespace and invisible chars are
// removed, full-width digits and letters folded to half-width, and any
// bracket pair around a 4-digit year becomes 〔〕. Other brackets and all
// other chars are kept: 盘纪处[2026] 12号 → 盘纪处〔2026〕12号,
// （2026）辽1102执12号 → 〔2026〕辽1102执12号.
func NormalizeDocNo(s string) string {
	rs := make([]rune, 0, len(s))
	for _, r := range s {
		switch {
		case unicode.IsSpace(r) || isDropped(r):
			continue
		case r >= '０' && r <= '９', r >= 'Ａ' && r <= 'Ｚ', r >= 'ａ' && r <= 'ｚ':
			r -= fullWidthOffset
		}
		rs = append(rs, r)
	}
	for i := 0; i+5 < len(rs); i++ {
		if !yearOpen(rs[i]) || !yearClose(rs[i+5]) {
			continue
		}
		if isDigits(rs[i+1 : i+5]) {
			rs[i], rs[i+5] = '〔', '〕'
			i += 5
		}
	}
	return string(rs)
}

func isDigits(rs []rune) bool {
	for _, r := range rs {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// foldWidth folds full-width ASCII and the ideographic space to half-width,
// for the parsers of dates and amounts.
func foldWidth(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return strings.Map(func(r rune) rune {
				switch {
				case r >= 0xFF01 && r <= 0xFF5E:
					return r - fullWidthOffset
				case r == '\u3000':
					return ' '
				}
				return r
			}, s)
		}
	}
	return s
}
