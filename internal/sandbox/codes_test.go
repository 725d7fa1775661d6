package sandbox

import "testing"

func TestCheckDigits(t *testing.T) {
	for _, c := range []struct {
		code  string
		valid func(string) bool
		want  bool
	}{
		{"91350100M000100Y43", validUSCC, true},
		{"914403001922038216", validUSCC, true},
		{"91110108795101314G", validUSCC, true},
		{"91350211M0000XUF46", validUSCC, false}, // legal early code that fails the check
		{"91350100M000100Y44", validUSCC, false},
		{"91350100m000100Y43", validUSCC, false},
		{"91350100M000100Y4", validUSCC, false},
		{"91350100I000100Y43", validUSCC, false}, // I is not in the charset
		{"11010519491231002X", validIDNo, true},
		{"440524188001010014", validIDNo, true},
		{"110105194912310021", validIDNo, false},
		{"11010519490231002X", validIDNo, false}, // 1949-02-31
		{"11010519491231002", validIDNo, false},
		{"1101051949123100 X", validIDNo, false},
	} {
		if got := c.valid(c.code); got != c.want {
			t.Errorf("%s: valid %v, want %v", c.code, got, c.want)
		}
	}
	for _, c := range []struct{ code, want string }{
		{"M000100Y", "4"}, {"19220382", "1"}, {"79510131", "4"},
	} {
		if got, ok := orgCodeCheck(c.code); !ok || string(got) != c.want {
			t.Errorf("组织机构代码 %s: check %q, want %s", c.code, got, c.want)
		}
	}
	if code := agencyCode("11", "211100", "00112233"); !validUSCC(code) || code[:8] != "11211100" {
		t.Errorf("agencyCode built %s", code)
	}
}
