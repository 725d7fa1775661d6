package normalize

import (
	"bufio"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
)

// Independent formulations of the three check-digit standards, written from
// the arithmetic rather than from the weight tables checkdigit.go uses, so
// a wrong weight or mapping there cannot be mirrored here:
//
//   - GB 32100: the weights 1 3 9 27 19 26 … are 3^i mod 31, so the weighted
//     sum is a base-3 polynomial evaluated by Horner's rule from the last
//     body char; check = (31 − sum) mod 31.
//   - GB 11714: the weights 3 7 9 10 5 8 4 2 are 2^(9−i) mod 11, Horner in
//     base 2; C9 = 11 − (sum mod 11), 10 → X, 11 → 0.
//   - GB 11643: python-stdnum's cn.ric formulation (arthurdejong/python-stdnum,
//     stdnum/cn/ric.py): check = (1 − 2·N) mod 11 where N is the 17-digit
//     body read as a base-13 number; 10 → X.

func oracleUSCC(first17 string) (byte, bool) {
	const set = "0123456789ABCDEFGHJKLMNPQRTUWXY"
	h := 0
	for i := 16; i >= 0; i-- {
		v := strings.IndexByte(set, first17[i])
		if v < 0 {
			return 0, false
		}
		h = (h*3 + v) % 31
	}
	return set[(31-h)%31], true
}

func oracleOrg(first8 string) byte {
	h := 0
	for i := 0; i < 8; i++ {
		c := first8[i]
		v := int(c - '0')
		if c >= 'A' {
			v = int(c-'A') + 10
		}
		h = (h*2 + v) % 11
	}
	sum := h * 2 % 11
	switch c := 11 - sum; c {
	case 10:
		return 'X'
	case 11:
		return '0'
	default:
		return byte('0' + c)
	}
}

func oracleID(first17 string) byte {
	n := 0
	for i := 0; i < 17; i++ {
		n = (n*13 + int(first17[i]-'0')) % 11
	}
	c := ((1-2*n)%11 + 11) % 11
	if c == 10 {
		return 'X'
	}
	return byte('0' + c)
}

// TestCheckDigitsAgreeWithIndependentFormulations compares the generators
// and validators with the oracles on 60,000 random bodies and their
// one-char mutations.
func TestCheckDigitsAgreeWithIndependentFormulations(t *testing.T) {
	rng := rand.New(rand.NewPCG(211100, 20261127))
	const n = 20000
	for range n {
		body := randString(rng, usccChars, 17)
		got, ok1 := USCCCheckChar(body)
		want, ok2 := oracleUSCC(body)
		if ok1 != ok2 || got != want {
			t.Fatalf("USCC %s: check %c, independent %c", body, got, want)
		}
		code := body + string(want)
		other := mutate(rng, code, usccChars)
		wantValid := other[17] == func() byte { c, _ := oracleUSCC(other[:17]); return c }()
		if ValidUSCC(other) != wantValid {
			t.Fatalf("ValidUSCC(%s) = %v, independent says %v", other, !wantValid, wantValid)
		}
	}
	const orgSet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	for range n {
		body := randString(rng, orgSet, 8)
		got, _ := OrgCodeCheckChar(body)
		if want := oracleOrg(body); got != want {
			t.Fatalf("org code %s: check %c, independent %c", body, got, want)
		}
	}
	for range n {
		body := randString(rng, "0123456789", 17)
		got, _ := IDCheckChar(body)
		if want := oracleID(body); got != want {
			t.Fatalf("ID body %s: check %c, independent %c", body, got, want)
		}
	}
}

// TestPublishedUSCCs checks codes published as valid (real organisations'
// registration numbers, python-stdnum's test list).
func TestPublishedUSCCs(t *testing.T) {
	f, err := os.Open("testdata/published_uscc.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		code := strings.TrimSpace(sc.Text())
		if code == "" || strings.HasPrefix(code, "#") {
			continue
		}
		n++
		if !ValidUSCC(code) {
			t.Errorf("published code %s: %s", code, usccProblem(code))
		}
		if c, _ := oracleUSCC(code[:17]); c != code[17] {
			t.Errorf("published code %s fails the independent formulation", code)
		}
	}
	if n < 100 {
		t.Fatalf("only %d published codes read", n)
	}
}
