package normalize

import (
	"fmt"
	"testing"
)

// Test data generators. Every code in the tests is computed here: synthetic
// 统一社会信用代码 for real Panjin agency names, and synthetic ID numbers of
// no real person.

// testUSCC builds a 统一社会信用代码 from its first 8 chars (registration
// authority, type, region) and the 8 chars of the embedded 组织机构代码 body,
// computing both check chars.
func testUSCC(tb testing.TB, head8, org8 string) string {
	tb.Helper()
	oc, ok := OrgCodeCheckChar(org8)
	if !ok {
		tb.Fatalf("bad org code body %q", org8)
	}
	first17 := head8 + org8 + string(oc)
	c, ok := USCCCheckChar(first17)
	if !ok {
		tb.Fatalf("bad USCC body %q", first17)
	}
	return first17 + string(c)
}

// testID builds a 公民身份号码 from region, birth date and sequence.
func testID(tb testing.TB, region6, birth8 string, seq int) string {
	tb.Helper()
	first17 := fmt.Sprintf("%s%s%03d", region6, birth8, seq)
	c, ok := IDCheckChar(first17)
	if !ok {
		tb.Fatalf("bad ID body %q", first17)
	}
	return first17 + string(c)
}

// Panjin agencies (region 211100 盘锦市, 211102 双台子区) with computed codes:
// 11 = 机构编制 / 机关, 12 = 机构编制 / 事业单位.
type agency struct{ name, uscc string }

func panjin(tb testing.TB) map[string]agency {
	tb.Helper()
	return map[string]agency{
		"hb":    {"盘锦市生态环境局", testUSCC(tb, "11211100", "MB155781")},
		"stz":   {"盘锦市双台子区人民政府", testUSCC(tb, "11211102", "00126345")},
		"jw":    {"中共盘锦市纪律检查委员会", testUSCC(tb, "11211100", "00122731")},
		"sj":    {"盘锦市市场监督管理局", testUSCC(tb, "11211100", "MB1557X2")},
		"xx":    {"盘锦市双台子区信息中心", testUSCC(tb, "12211102", "MB0C3418")},
		"court": {"盘锦市双台子区人民法院", testUSCC(tb, "11211102", "00127428")},
	}
}
