package normalize

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func TestValidUSCC(t *testing.T) {
	cases := []struct {
		code string
		want bool
	}{
		// DOMAIN.md published vectors.
		{"91350100M000100Y43", true},
		{"914403001922038216", true},
		{"91110108795101314G", true},
		{"91350211M0000XUF46", false}, // legal early code that fails the check
		// Mutations and malformed input.
		{"91350100M000100Y44", false},
		{"91350100M000100Y4", false},
		{"91350100M000100Y433", false},
		{"91350100m000100y43", false}, // not cleaned
		{"91350100I000100Y43", false}, // I is outside the set
		{"91350100O000100Y43", false},
		{"", false},
		{"９１３５０１００Ｍ０００１００Ｙ４３", false},
	}
	for _, c := range cases {
		if got := ValidUSCC(c.code); got != c.want {
			t.Errorf("ValidUSCC(%q) = %v, want %v", c.code, got, c.want)
		}
	}
	if !ValidUSCC(CleanCode("９１３５０１００ｍ０００１００ｙ４３")) {
		t.Error("ValidUSCC(CleanCode(full-width lower-case)) = false")
	}
}

func TestValidIDNumber(t *testing.T) {
	cases := []struct {
		id   string
		want bool
	}{
		// DOMAIN.md published vectors.
		{"11010519491231002X", true},
		{"440524188001010014", true},
		// Synthetic, region 211102 双台子区.
		{testID(t, "211102", "19850312", 1), true},
		{"11010519491231002x", false}, // not cleaned
		{"110105194912310021", false}, // check char
		{"440524188001010015", false},
		{"990524188001010014", false}, // no province 99 (check char recomputed below)
		{"11010519491231002", false},
		{"11010519491231002XX", false},
		{"1101051949123100 X", false},
		{"", false},
	}
	for _, c := range cases {
		if got := ValidIDNumber(c.id); got != c.want {
			t.Errorf("ValidIDNumber(%q) = %v, want %v", c.id, got, c.want)
		}
	}
	// Right check char, wrong content.
	for _, c := range []struct{ region, birth, why string }{
		{"991102", "19850312", "no province 99"},
		{"001102", "19850312", "no province 00"},
		{"211102", "20170230", "no such day"},
		{"211102", "19851301", "no month 13"},
		{"211102", "18700101", "before 1880"},
		{"211102", "29990101", "in the future"},
	} {
		id := testID(t, c.region, c.birth, 7)
		if ValidIDNumber(id) {
			t.Errorf("ValidIDNumber(%s) = true, want false (%s)", id, c.why)
		}
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, shanghai)
	if p := idNumberProblem(testID(t, "211102", "20260301", 1), now); p != "" {
		t.Errorf("born today: %s", p)
	}
	if p := idNumberProblem(testID(t, "211102", "20260302", 1), now); p == "" {
		t.Error("born tomorrow: valid")
	}
}

func TestValidOrgCode(t *testing.T) {
	cases := []struct {
		code string
		want bool
	}{
		{"M000100Y4", true}, // embedded in 91350100M000100Y43
		{"192203821", true}, // embedded in 914403001922038216
		{"795101314", true}, // embedded in 91110108795101314G
		{"19220382-1", true},
		{"192203822", false},
		{"19220382", false},
		{"19220382-", false},
		{"m000100y4", false},
		{"", false},
	}
	for _, c := range cases {
		if got := ValidOrgCode(c.code); got != c.want {
			t.Errorf("ValidOrgCode(%q) = %v, want %v", c.code, got, c.want)
		}
	}
	// The check chars 10 → X and 11 → 0 both occur.
	seen := map[byte]bool{}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		c, _ := OrgCodeCheckChar(randString(rng, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", 8))
		seen[c] = true
	}
	if !seen['X'] || !seen['0'] {
		t.Errorf("check chars seen: %v, want X and 0 among them", seen)
	}
}

func randString(rng *rand.Rand, set string, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = set[rng.IntN(len(set))]
	}
	return string(b)
}

// mutate changes one char of s to another char of set.
func mutate(rng *rand.Rand, s, set string) string {
	b := []byte(s)
	i := rng.IntN(len(b))
	for {
		c := set[rng.IntN(len(set))]
		if c != b[i] {
			b[i] = c
			return string(b)
		}
	}
}

// TestCheckDigitsGenerated generates thousands of codes, completes them with
// the generators and checks the validators agree; a one-char change must
// then fail. Every weight is coprime to the modulus, so every single-char
// substitution changes the sum.
func TestCheckDigitsGenerated(t *testing.T) {
	rng := rand.New(rand.NewPCG(20260301, 211100))
	const n = 5000
	for range n {
		first17 := randString(rng, usccChars, 17)
		c, ok := USCCCheckChar(first17)
		if !ok {
			t.Fatalf("USCCCheckChar(%q) not ok", first17)
		}
		code := first17 + string(c)
		if !ValidUSCC(code) {
			t.Fatalf("ValidUSCC(%q) = false for a generated code", code)
		}
		if bad := mutate(rng, code, usccChars); ValidUSCC(bad) {
			t.Fatalf("ValidUSCC(%q) = true after mutating %q", bad, code)
		}
	}
	const orgSet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	for range n {
		first8 := randString(rng, orgSet, 8)
		c, _ := OrgCodeCheckChar(first8)
		code := first8 + string(c)
		if !ValidOrgCode(code) {
			t.Fatalf("ValidOrgCode(%q) = false for a generated code", code)
		}
		// Mutate one char. Body values run 0..35 against mod 11, so a
		// change by a multiple of 11 (C→N, 1→C) is undetectable by design;
		// any other change must fail.
		i := rng.IntN(9)
		set := orgSet
		if i == 8 {
			set = "0123456789X"
		}
		b := []byte(code)
		old := b[i]
		b[i] = mutate(rng, string(old), set)[0]
		wantValid := i < 8 && (orgValue(old)-orgValue(b[i]))%11 == 0
		if got := ValidOrgCode(string(b)); got != wantValid {
			t.Fatalf("ValidOrgCode(%q) = %v after mutating %q, want %v", b, got, code, wantValid)
		}
	}
	now := time.Now()
	start := time.Date(1930, 1, 1, 0, 0, 0, 0, time.UTC)
	provinceCodes := []string{"11", "21", "31", "44", "65", "82"}
	for range n {
		birth := start.AddDate(0, 0, rng.IntN(90*365)).Format("20060102")
		region := provinceCodes[rng.IntN(len(provinceCodes))] + randString(rng, "0123456789", 4)
		id := testID(t, region, birth, rng.IntN(1000))
		if p := idNumberProblem(id, now); p != "" {
			t.Fatalf("generated %s: %s", id, p)
		}
		i := rng.IntN(18)
		set := "0123456789"
		if i == 17 {
			set = "0123456789X"
		}
		b := []byte(id)
		b[i] = mutate(rng, string(b[i]), set)[0]
		if ValidIDNumber(string(b)) {
			t.Fatalf("ValidIDNumber(%q) = true after mutating %q", b, id)
		}
	}
}

func TestPanjinCodes(t *testing.T) {
	for k, a := range panjin(t) {
		if !ValidUSCC(a.uscc) || !ValidOrgCode(a.uscc[8:17]) {
			t.Errorf("%s %s: generated USCC %s invalid", k, a.name, a.uscc)
		}
		if !strings.HasPrefix(a.uscc[2:], "2111") {
			t.Errorf("%s: %s not a Panjin region", k, a.uscc)
		}
	}
}

func orgValue(c byte) int {
	if c <= '9' {
		return int(c - '0')
	}
	return int(c-'A') + 10
}
