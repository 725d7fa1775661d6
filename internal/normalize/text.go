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

// textIsClean is CleanText's no-allocation fast path. It walks bytes, not
// runes: only runes led by 0xC2 (U+0080..U+00BF), 0xE1 (U+1680), 0xE2
// (U+2000..U+206F) and 0xE3 (U+3000) and 0xEF (U+FEFF) can be changed by
// CleanText, so every other multi-byte rune is only checked for valid UTF-8
// (invalid UTF-8 is not clean: CleanText turns it into U+FFFD).
func textIsClean(s string) bool {
	prevSpace := true // a leading space is not clean
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == ' ':
				if prevSpace {
					return false
				}
				prevSpace = true
				i++
				continue
			case c < ' ' || c == 0x7f:
				return false
			}
			prevSpace = false
			i++
			continue
		}
		var r rune
		switch {
		case c >= 0xC2 && c <= 0xDF:
			if i+1 >= len(s) || s[i+1]&0xC0 != 0x80 {
				return false
			}
			r = rune(c&0x1F)<<6 | rune(s[i+1]&0x3F)
			i += 2
		case c >= 0xE0 && c <= 0xEF:
			if i+2 >= len(s) || s[i+2]&0xC0 != 0x80 {
				return false
			}
			c1 := s[i+1]
			lo, hi := byte(0x80), byte(0xBF)
			switch c {
			case 0xE0:
				lo = 0xA0
			case 0xED:
				hi = 0x9F // no surrogates
			}
			if c1 < lo || c1 > hi {
				return false
			}
			r = rune(c&0x0F)<<12 | rune(c1&0x3F)<<6 | rune(s[i+2]&0x3F)
			i += 3
		case c >= 0xF0 && c <= 0xF4:
			if i+3 >= len(s) || s[i+2]&0xC0 != 0x80 || s[i+3]&0xC0 != 0x80 {
				return false
			}
			c1 := s[i+1]
			lo, hi := byte(0x80), byte(0xBF)
			switch c {
			case 0xF0:
				lo = 0x90
			case 0xF4:
				hi = 0x8F
			}
			if c1 < lo || c1 > hi {
				return false
			}
			i += 4
			prevSpace = false
			continue // U+10000 and up: nothing CleanText changes
		default:
			return false
		}
		// r is a valid rune; U+FFFD written as such is kept by CleanText.
		if r != utf8.RuneError && cleanMayChange(r) {
			return false
		}
		prevSpace = false
	}
	return !prevSpace || len(s) == 0
}

// cleanValid is CleanText for s known to be valid UTF-8 (payload text, which
// the scanner has validated): its fast path only looks at the lead bytes
// that can start a rune CleanText changes.
func cleanValid(s string) string {
	if textIsCleanValid(s) {
		return s
	}
	return CleanText(s)
}

func textIsCleanValid(s string) bool {
	prevSpace := true // a leading space is not clean
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ':
			if prevSpace {
				return false
			}
			prevSpace = true
			i++
			continue
		case c < ' ' || c == 0x7f:
			return false
		case c < utf8.RuneSelf:
			i++
		case c < 0xE0: // U+0080..U+07FF: C2 80..C2 A0 are C1 controls, NEL, NBSP
			if c == 0xC2 && s[i+1] <= 0xA0 {
				return false
			}
			i += 2
		case c < 0xF0:
			switch c {
			case 0xE1, 0xE2, 0xE3, 0xEF: // U+1xxx, U+2xxx, U+3xxx, U+Fxxx
				r := rune(c&0x0F)<<12 | rune(s[i+1]&0x3F)<<6 | rune(s[i+2]&0x3F)
				if r != utf8.RuneError && cleanMayChange(r) {
					return false
				}
			}
			i += 3
		default:
			i += 4
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
	var buf [64]rune
	rs := buf[:0]
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
	if !hasWide(s) {
		return s
	}
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

// hasWide reports whether s holds a char foldWidth changes: U+FF01..U+FF5E
// (UTF-8 EF BC 81 .. EF BD 9E) or U+3000 (E3 80 80). Chinese text without
// them, the common case, is not rebuilt.
func hasWide(s string) bool {
	for i := 0; i+2 < len(s); i++ {
		switch s[i] {
		case 0xEF:
			if s[i+1] == 0xBC || s[i+1] == 0xBD {
				return true
			}
		case 0xE3:
			if s[i+1] == 0x80 && s[i+2] == 0x80 {
				return true
			}
		}
	}
	return false
}
