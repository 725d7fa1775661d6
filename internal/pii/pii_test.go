package pii

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"testing"
)

func key(b byte) []byte { return bytes.Repeat([]byte{b}, KeySize) }

func newTest(t testing.TB, enc ...[]byte) *Protector {
	t.Helper()
	if len(enc) == 0 {
		enc = [][]byte{key(2)}
	}
	p, err := New(key(1), enc...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// A synthetic 公民身份号码 (region 211102 双台子区, check char computed), not a real person's.
const testID = "211102198503120018"

func TestNewRejectsBadKeys(t *testing.T) {
	cases := []struct {
		name string
		hash []byte
		enc  [][]byte
		want error
	}{
		{"short hash key", key(1)[:16], [][]byte{key(2)}, ErrKeySize},
		{"no enc key", key(1), nil, ErrNoKey},
		{"short enc key", key(1), [][]byte{key(2)[:31]}, ErrKeySize},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := New(c.hash, c.enc...); !errors.Is(err, c.want) {
				t.Fatalf("New: err = %v, want %v", err, c.want)
			}
		})
	}
	if _, err := New(key(1), key(2), key(2)); err == nil {
		t.Error("New with a duplicate encryption key: no error")
	}
	if _, err := New(key(1), key(1)); err == nil {
		t.Error("New with encryption key == hash key: no error")
	}
}

func TestHashNormalizes(t *testing.T) {
	p := newTest(t)
	want := p.Hash(testID)
	if len(want) != 64 {
		t.Fatalf("Hash length = %d, want 64 hex chars", len(want))
	}
	for _, in := range []string{
		" 211102198503120018 ",
		"２１１１０２１９８５０３１２００１８",
		"211102 19850312 0018",
	} {
		if got := p.Hash(in); got != want {
			t.Errorf("Hash(%q) = %s, want %s", in, got, want)
		}
	}
	if p.Hash("21110219850312001X") != p.Hash("21110219850312001x") {
		t.Error("Hash is case-sensitive on the check char")
	}
	other, _ := New(key(3), key(2))
	if other.Hash(testID) == want {
		t.Error("Hash does not depend on the key")
	}
	if strings.Contains(want, testID) {
		t.Error("hash contains the clear id")
	}
}

func TestMask(t *testing.T) {
	cases := []struct{ in, want string }{
		{testID, "211102********0018"},
		{"21110219850312001x", "211102********001X"},
		{"２１１１０２１９８５０３１２００１８", "211102********0018"},
		{"211102********0018", "211102********0018"},
		{"3423011964****3224", "342301********3224"},
		{"211102850312001", "21***********01"}, // 15-digit first-generation number
		{"E12345678", "E1*****78"},             // passport
		{"12345678", "12****78"},
		{"1234567", "*******"},
		{"12", "**"},
		{"", ""},
		{"护照号码甲乙丙丁", "护照****丙丁"},
	}
	for _, c := range cases {
		if got := Mask(c.in); got != c.want {
			t.Errorf("Mask(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestSealOpen(t *testing.T) {
	p := newTest(t)
	ct1, err := p.Seal(testID)
	if err != nil {
		t.Fatal(err)
	}
	ct2, _ := p.Seal(testID)
	if bytes.Equal(ct1, ct2) {
		t.Error("two seals of the same id are equal: nonce not random")
	}
	if bytes.Contains(ct1, []byte(testID)) {
		t.Error("ciphertext contains the clear id")
	}
	got, err := p.Open(ct1)
	if err != nil || got != testID {
		t.Fatalf("Open = %q, %v; want %q", got, err, testID)
	}
	if got, _ := p.Open(mustSeal(t, p, " ２１１１０２１９８５０３１２００１８")); got != testID {
		t.Errorf("Open(Seal(full-width)) = %q, want normalized %q", got, testID)
	}
}

func mustSeal(t *testing.T, p *Protector, id string) []byte {
	t.Helper()
	ct, err := p.Seal(id)
	if err != nil {
		t.Fatal(err)
	}
	return ct
}

func TestOpenTamper(t *testing.T) {
	p := newTest(t)
	ct := mustSeal(t, p, testID)
	for i := range ct {
		bad := bytes.Clone(ct)
		bad[i] ^= 0x01
		if _, err := p.Open(bad); err == nil {
			t.Fatalf("Open accepted a ciphertext with byte %d flipped", i)
		}
	}
	for _, bad := range [][]byte{nil, {1}, ct[:headerSize], ct[:headerSize+10], append([]byte{2}, ct[1:]...)} {
		if _, err := p.Open(bad); err == nil {
			t.Errorf("Open(%x) accepted", bad)
		}
	}
}

func TestRotation(t *testing.T) {
	old := newTest(t, key(2))
	ctOld := mustSeal(t, old, testID)

	rotated := newTest(t, key(4), key(2)) // new key first, old still listed
	if got, err := rotated.Open(ctOld); err != nil || got != testID {
		t.Fatalf("rotated Open(old) = %q, %v", got, err)
	}
	ctNew := mustSeal(t, rotated, testID)
	if !bytes.Equal(ctNew[1:headerSize], func() []byte { id := keyID(key(4)); return id[:] }()) {
		t.Error("Seal did not use encKeys[0]")
	}
	if _, err := old.Open(ctNew); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("old Open(new) err = %v, want ErrUnknownKey", err)
	}
	// Reordered keys still open both.
	reordered := newTest(t, key(2), key(4))
	for _, ct := range [][]byte{ctOld, ctNew} {
		if got, err := reordered.Open(ct); err != nil || got != testID {
			t.Errorf("reordered Open = %q, %v", got, err)
		}
	}
	// Dropping the old key makes old ciphertexts unreadable, with a clear error.
	dropped := newTest(t, key(4))
	if _, err := dropped.Open(ctOld); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("dropped Open(old) err = %v, want ErrUnknownKey", err)
	}
}

func TestConcurrentUse(t *testing.T) {
	p := newTest(t)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				ct, _ := p.Seal(testID)
				if got, err := p.Open(ct); err != nil || got != testID {
					t.Errorf("Open = %q, %v", got, err)
					return
				}
				_ = p.Hash(testID)
			}
		})
	}
	wg.Wait()
}

func FuzzMask(f *testing.F) {
	for _, s := range []string{testID, "3423011964****3224", "E12345678", "", "１２ab", "\xff\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m := Mask(s)
		if again := Mask(m); again != m {
			t.Fatalf("Mask not idempotent: Mask(%q) = %q, Mask of that = %q", s, m, again)
		}
		n := normalize(s)
		if len([]rune(m)) != len([]rune(n)) {
			t.Fatalf("Mask(%q) = %q changes the length of %q", s, m, n)
		}
		if len([]rune(n)) >= 8 && !strings.Contains(m, "****") {
			t.Fatalf("Mask(%q) = %q masks too little", s, m)
		}
	})
}

func FuzzOpen(f *testing.F) {
	p := newTest(f)
	ct, _ := p.Seal(testID)
	f.Add(ct)
	f.Add([]byte{1, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = p.Open(b) // must not panic
	})
}

func FuzzSealOpen(f *testing.F) {
	p := newTest(f)
	f.Add(testID)
	f.Add("ｘ 12")
	f.Fuzz(func(t *testing.T, s string) {
		ct, err := p.Seal(s)
		if err != nil {
			t.Fatal(err)
		}
		got, err := p.Open(ct)
		if err != nil || got != normalize(s) {
			t.Fatalf("Open(Seal(%q)) = %q, %v; want %q", s, got, err, normalize(s))
		}
		if p.Hash(s) != p.Hash(got) {
			t.Fatalf("Hash(%q) != Hash(normalized)", s)
		}
	})
}

func TestMaskIDsIn(t *testing.T) {
	cases := []struct{ in, want string }{
		{`{"facts":"当事人张某（身份证号11010519491231002X）未按规定申报"}`, `{"facts":"当事人张某（身份证号110105********002X）未按规定申报"}`},
		{`{"a":"440524188001010014","b":"x"}`, `{"a":"440524********0014","b":"x"}`},
		{`{"n":"11010519491231002x"}`, `{"n":"110105********002x"}`},
		{`no id 440524188001010015 (bad check char)`, `no id 440524188001010015 (bad check char)`},
		{`longer 4405241880010100140 digits`, `longer 4405241880010100140 digits`},
		{`prefix 9440524188001010014`, `prefix 9440524188001010014`},
		{`two 440524188001010014,11010519491231002X.`, `two 440524********0014,110105********002X.`},
		{`short 12345`, `short 12345`},
		{`440524188001010014`, `440524********0014`},
		{``, ``},
	}
	for _, c := range cases {
		got, found := MaskIDsIn([]byte(c.in))
		if string(got) != c.want {
			t.Errorf("MaskIDsIn(%s) = %s, want %s", c.in, got, c.want)
		}
		if found != (c.in != c.want) {
			t.Errorf("MaskIDsIn(%s): found = %v", c.in, found)
		}
		if s, _ := MaskIDsInString(c.in); s != c.want {
			t.Errorf("MaskIDsInString(%s) = %s", c.in, s)
		}
	}
	// The input is never modified.
	in := []byte(`440524188001010014`)
	MaskIDsIn(in)
	if string(in) != `440524188001010014` {
		t.Fatal("input modified")
	}
}

func FuzzMaskIDsIn(f *testing.F) {
	f.Add([]byte(`{"facts":"身份证号11010519491231002X"}`))
	f.Add([]byte(`440524188001010014440524188001010014`))
	f.Fuzz(func(t *testing.T, b []byte) {
		out, found := MaskIDsIn(b)
		if len(out) != len(b) {
			t.Fatalf("length changed: %d → %d", len(b), len(out))
		}
		if !found && string(out) != string(b) {
			t.Fatal("changed without finding")
		}
		again, _ := MaskIDsIn(out)
		if string(again) != string(out) {
			t.Fatal("masking is not idempotent")
		}
	})
}

// naiveMaskIDs checks every position with no skipping: the reference
// MaskIDsIn's skip-ahead scan must agree with.
func naiveMaskIDs(b []byte) []byte {
	out := append([]byte(nil), b...)
	for i := 0; i+18 <= len(b); i++ {
		if i > 0 && isDigit(b[i-1]) {
			continue
		}
		ok := true
		for k := i; k < i+17; k++ {
			ok = ok && isDigit(b[k])
		}
		last := b[i+17]
		ok = ok && (isDigit(last) || last == 'X' || last == 'x') && (i+18 == len(b) || !isDigit(b[i+18])) && validID(b[i:i+18])
		if ok {
			for k := i + 6; k < i+14; k++ {
				out[k] = '*'
			}
		}
	}
	return out
}

func FuzzMaskIDsInAgreesWithNaive(f *testing.F) {
	f.Add([]byte(`{"facts":"身份证号11010519491231002X"}`), uint8(3))
	f.Add([]byte(`中文440524188001010014中文`), uint8(0))
	f.Fuzz(func(t *testing.T, b []byte, shift uint8) {
		// Plant a valid ID at a position the fuzzer picks.
		id := []byte("440524188001010014")
		pos := int(shift) % (len(b) + 1)
		planted := append(append(append([]byte(nil), b[:pos]...), id...), b[pos:]...)
		for _, in := range [][]byte{b, planted} {
			got, _ := MaskIDsIn(in)
			if want := naiveMaskIDs(in); string(got) != string(want) {
				t.Fatalf("MaskIDsIn(%q) = %q, naive %q", in, got, want)
			}
		}
	})
}
