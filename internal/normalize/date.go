package normalize

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// shanghai is the zone every record date is in. It is loaded once; without
// tzdata on the machine it is the fixed UTC+8 China Standard Time, which is
// the same offset (China has had no DST since 1991).
var shanghai = func() *time.Location {
	if loc, err := time.LoadLocation("Asia/Shanghai"); err == nil {
		return loc
	}
	return time.FixedZone("CST", 8*3600)
}()

// Excel serial day numbers accepted as dates: 20000 is 1954-10-03, 80000 is
// 2119-01-11. Serial 0 is 1899-12-30 for every serial after Excel's phantom
// 1900-02-29.
const (
	minExcelSerial = 20000
	maxExcelSerial = 80000
)

var excelEpoch = time.Date(1899, 12, 30, 0, 0, 0, 0, time.UTC)

// Years a date may have. 9999-12-31 is what many systems write for "no end"
// (长期) and stays a valid date.
const (
	minYear = 1900
	maxYear = 9999
)

var errNotDate = errors.New("not a recognised date")

// ParseDate reads a date as source systems write it and returns it at 00:00
// in Asia/Shanghai. Accepted, with full-width digits too:
//
//	2017-10-10  2017/10/10  2017.10.10  2017-1-5  20171010  2017年10月10日
//	2017-10-10 08:30:00  2017-10-10T08:30  (the time of day is dropped)
//	2017-10-10T00:30:00Z  RFC 3339 with a zone: the date in Shanghai
//	43018  Excel serial day number, 20000..80000 (fraction = time, dropped)
//	1507564800000  Unix milliseconds (13 digits), as Java systems send dates
//
// Impossible dates such as 2017-02-30 are errors.
func ParseDate(s string) (time.Time, error) {
	t, err := parseDate(strings.TrimSpace(foldWidth(s)))
	if err != nil {
		return time.Time{}, fmt.Errorf("date %q: %w", s, err)
	}
	return t, nil
}

func parseDate(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, errors.New("empty")
	}
	// A run of leading digits decides the form.
	n := 0
	for n < len(s) && isDigit(s[n]) {
		n++
	}
	switch {
	case n == len(s) && n == 8:
		return ymd(atoi(s[0:4]), atoi(s[4:6]), atoi(s[6:8]))
	case n == len(s) && n == 13:
		ms := int64(0)
		for i := 0; i < n; i++ {
			ms = ms*10 + int64(s[i]-'0')
		}
		return dateOf(time.UnixMilli(ms).In(shanghai))
	case n == 5 && (n == len(s) || s[n] == '.' && allDigits(s[n+1:])):
		serial := atoi(s[:n])
		if serial < minExcelSerial || serial > maxExcelSerial {
			return time.Time{}, fmt.Errorf("Excel serial %d out of range %d..%d", serial, minExcelSerial, maxExcelSerial)
		}
		y, m, d := excelEpoch.AddDate(0, 0, serial).Date()
		return ymd(y, int(m), d)
	case n == 4 && len(s) > 4:
		return parseYMD(s)
	}
	return time.Time{}, errNotDate
}

// parseYMD reads yyyy<sep>m<sep>d[rest] where sep is one of - / . or 年月日.
func parseYMD(s string) (time.Time, error) {
	y := atoi(s[:4])
	rest := s[4:]
	var sep1, sep2 string
	switch {
	case rest[0] == '-' || rest[0] == '/' || rest[0] == '.':
		sep1, sep2 = rest[:1], rest[:1]
	case strings.HasPrefix(rest, "年"):
		sep1, sep2 = "年", "月"
	default:
		return time.Time{}, errNotDate
	}
	rest = rest[len(sep1):]
	m, rest, ok := leadingNumber(rest, 2)
	if !ok || !strings.HasPrefix(rest, sep2) {
		return time.Time{}, errNotDate
	}
	d, rest, ok := leadingNumber(rest[len(sep2):], 2)
	if !ok {
		return time.Time{}, errNotDate
	}
	if sep1 == "年" {
		rest = strings.TrimPrefix(rest, "日")
		rest = strings.TrimPrefix(rest, "号")
	}
	if rest == "" {
		return ymd(y, m, d)
	}
	// A time of day follows: ' ' or 'T', then hh:mm[:ss[.frac]], then for
	// RFC 3339 a zone. The zone matters (it can move the day); the time
	// itself is dropped.
	if rest[0] != ' ' && rest[0] != 'T' && rest[0] != 't' {
		return time.Time{}, errNotDate
	}
	date, err := ymd(y, m, d)
	if err != nil {
		return date, err
	}
	clock := strings.TrimLeft(rest[1:], " ")
	if zoned, ok := zoneSuffix(clock); ok {
		// RFC 3339 needs 2-digit month and day: rebuild in that form.
		full := fmt.Sprintf("%04d-%02d-%02dT%s", y, m, d, zoned)
		t, err := time.Parse(time.RFC3339Nano, full)
		if err != nil {
			return time.Time{}, errNotDate
		}
		return dateOf(t.In(shanghai))
	}
	if !validClock(clock) {
		return time.Time{}, fmt.Errorf("bad time of day %q", clock)
	}
	return date, nil
}

// zoneSuffix reports whether clock ends in an RFC 3339 zone (Z or ±hh:mm)
// and returns it with an upper-case Z.
func zoneSuffix(clock string) (string, bool) {
	if strings.HasSuffix(clock, "Z") || strings.HasSuffix(clock, "z") {
		return clock[:len(clock)-1] + "Z", true
	}
	if len(clock) > 6 {
		z := clock[len(clock)-6:]
		if (z[0] == '+' || z[0] == '-') && z[3] == ':' {
			return clock, true
		}
	}
	return "", false
}

// validClock accepts h:mm, hh:mm, hh:mm:ss and hh:mm:ss.fff.
func validClock(c string) bool {
	h, rest, ok := leadingNumber(c, 2)
	if !ok || h > 23 || !strings.HasPrefix(rest, ":") {
		return false
	}
	m, rest, ok := leadingNumber(rest[1:], 2)
	if !ok || m > 59 || len(rest) > 0 && len(rest) < 3 {
		return false
	}
	if rest == "" {
		return true
	}
	if rest[0] != ':' || len(rest) < 3 || !isDigit(rest[1]) || !isDigit(rest[2]) || atoi(rest[1:3]) > 60 {
		return false
	}
	rest = rest[3:]
	if rest == "" {
		return true
	}
	return rest[0] == '.' && len(rest) > 1 && allDigits(rest[1:])
}

// leadingNumber reads 1..maxDigits digits.
func leadingNumber(s string, maxDigits int) (int, string, bool) {
	n := 0
	for n < len(s) && n < maxDigits && isDigit(s[n]) {
		n++
	}
	if n == 0 {
		return 0, s, false
	}
	return atoi(s[:n]), s[n:], true
}

func ymd(y, m, d int) (time.Time, error) {
	if y < minYear || y > maxYear {
		return time.Time{}, fmt.Errorf("year %d out of range %d..%d", y, minYear, maxYear)
	}
	t := time.Date(y, time.Month(m), d, 0, 0, 0, 0, shanghai)
	if ty, tm, td := t.Date(); ty != y || int(tm) != m || td != d {
		return time.Time{}, fmt.Errorf("no such day %04d-%02d-%02d", y, m, d)
	}
	return t, nil
}

func dateOf(t time.Time) (time.Time, error) {
	y, m, d := t.Date()
	return ymd(y, int(m), d)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return len(s) > 0
}

// atoi reads a short run of ASCII digits the caller has checked.
func atoi(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n
}
