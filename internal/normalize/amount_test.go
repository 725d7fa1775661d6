package normalize

import (
	"testing"

	"github.com/panjin-gov/syncd/internal/record"
)

func TestParseAmount(t *testing.T) {
	ok := []struct {
		in, unit string
		want     string // record.Amount.String, 万元
	}{
		{"1234.5", "", "1234.5"},
		{"1234.5", UnitWanYuan, "1234.5"},
		{"1,234.50", "", "1234.5"},
		{"1,234,567", "", "1234567"},
		{"１２３", "", "123"},
		{"１，２３４．５", "", "1234.5"},
		{"1.5万元", "", "1.5"},
		{"1.5万元", UnitYuan, "1.5"}, // the written unit wins
		{"1.5万", UnitYuan, "1.5"},
		{"15000元", "", "1.5"},
		{"15000", UnitYuan, "1.5"},
		{"15000.00", UnitYuan, "1.5"},
		{"0.01", UnitYuan, "0.000001"},
		{"0.005", UnitYuan, "0.000001"}, // half up
		{"0.0049", UnitYuan, "0"},       // below half
		{"1.0000005", "", "1.000001"},   // 7th decimal rounds half up
		{"1.0000004999", "", "1"},       // …and below half rounds down
		{"0.0000005", "", "0.000001"},   // all digits dropped, rounds up
		{"0.00000049", "", "0"},         // all dropped, below half
		{"0.999999951", "", "1"},        // carry into the integer
		{"￥1,500", UnitYuan, "0.15"},
		{"¥ 1 500 元", "", "0.15"},
		{"1.5e3", "", "1500"},
		{"1.5E-3", "", "0.0015"},
		{"2e4", UnitYuan, "2"},
		{"+3", "", "3"},
		{".5", "", "0.5"},
		{"5.", "", "5"},
		{"0", "", "0"},
		{"000", "", "0"},
		{"0.000", UnitYuan, "0"},
		{"9000000000000", "", "9000000000000"},
		{" 20 万元 ", "", "20"},
	}
	for _, c := range ok {
		got, err := ParseAmount(c.in, c.unit)
		if err != nil {
			t.Errorf("ParseAmount(%q, %q): %v", c.in, c.unit, err)
			continue
		}
		if got.String() != c.want {
			t.Errorf("ParseAmount(%q, %q) = %s, want %s", c.in, c.unit, got, c.want)
		}
	}
	bad := []struct{ in, unit string }{
		{"-1", ""}, {"-0", ""}, {"－5", ""}, {"", ""}, {"元", ""}, {"abc", ""},
		{"1.2.3", ""}, {"1,23", ""}, {"1234,567", ""}, {",123", ""}, {"1,,234", ""}, {"1,234,5", ""},
		{"12,34.5", ""}, {"1e", ""}, {"1e999", ""}, {"1e+", ""}, {"9000000000001", ""},
		{"90000000000000000000000", ""}, {"1", "千元"}, {"1美元", ""}, {".", ""}, {"1..0", ""},
		{"1.5 亿元", ""},
	}
	for _, c := range bad {
		if got, err := ParseAmount(c.in, c.unit); err == nil {
			t.Errorf("ParseAmount(%q, %q) = %s, want an error", c.in, c.unit, got)
		}
	}
}

func FuzzParseAmount(f *testing.F) {
	for _, s := range []string{"1234.5", "1,234.50", "１２３", "1.5万元", "15000元", "1.0000005", "1.5e3", "-1"} {
		f.Add(s, "")
		f.Add(s, UnitYuan)
	}
	f.Fuzz(func(t *testing.T, s, unit string) {
		a, err := ParseAmount(s, unit)
		if err != nil {
			return
		}
		if a < 0 {
			t.Fatalf("ParseAmount(%q, %q) = %d: negative", s, unit, a)
		}
		for _, u := range []string{"", UnitWanYuan} {
			if again, err := ParseAmount(a.String(), u); err != nil || again != a {
				t.Fatalf("ParseAmount(%q, %q) = %s, but ParseAmount(%q) = %s, %v", s, unit, a, a.String(), again, err)
			}
		}
		if back, err := record.ParseAmount(a.String()); err != nil || back != a {
			t.Fatalf("record.ParseAmount(%q) = %d, %v; want %d", a.String(), back, err, a)
		}
	})
}
