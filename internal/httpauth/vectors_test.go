package httpauth

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/emmansun/gmsm/sm3"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// HMAC-SHA256 against RFC 4231 (test case 5, a truncated MAC, is left out).
func TestHMACSHA256RFC4231(t *testing.T) {
	aa131 := bytes.Repeat([]byte{0xaa}, 131)
	key4 := unhex(t, "0102030405060708090a0b0c0d0e0f10111213141516171819")
	cases := []struct {
		name      string
		key, data []byte
		want      string
	}{
		{"1", bytes.Repeat([]byte{0x0b}, 20), []byte("Hi There"),
			"b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
		{"2", []byte("Jefe"), []byte("what do ya want for nothing?"),
			"5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
		{"3", bytes.Repeat([]byte{0xaa}, 20), bytes.Repeat([]byte{0xdd}, 50),
			"773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
		{"4", key4, bytes.Repeat([]byte{0xcd}, 50),
			"82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
		{"6", aa131, []byte("Test Using Larger Than Block-Size Key - Hash Key First"),
			"60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
		{"7", aa131, []byte("This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm."),
			"9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
	}
	h, err := hashFor(AlgHMACSHA256)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		if got := hex.EncodeToString(mac(h, c.key, c.data)); got != c.want {
			t.Errorf("RFC 4231 case %s: %s, want %s", c.name, got, c.want)
		}
	}
}

// SM3 against the examples of GB/T 32905-2016 (appendix A).
func TestSM3GBT32905(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"abc", "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"},
		{strings.Repeat("abcd", 16), "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"},
	} {
		sum := sm3.Sum([]byte(c.in))
		if got := hex.EncodeToString(sum[:]); got != c.want {
			t.Errorf("SM3(%q) = %s, want %s", c.in, got, c.want)
		}
	}
}

// HMAC-SM3 against GM/T 0042-2015 appendix D.3 and the Bouncy Castle
// vector (RFC 4231 case 1's key and data).
func TestHMACSM3(t *testing.T) {
	h, err := hashFor(AlgHMACSM3)
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 37)
	for i := range key {
		key[i] = byte(i + 1)
	}
	for _, c := range []struct {
		key, data []byte
		want      string
	}{
		{key, bytes.Repeat([]byte{0xcd}, 50), "220bf579ded555393f0159f66c99877822a3ecf610d1552154b41d44b94db3ae"},
		{bytes.Repeat([]byte{0x0b}, 20), []byte("Hi There"), "51b00d1fb49832bfb01c3ce27848e59f871d9ba938dc563b338ca964755cce70"},
	} {
		if got := hex.EncodeToString(mac(h, c.key, c.data)); got != c.want {
			t.Errorf("HMAC-SM3 = %s, want %s", got, c.want)
		}
	}
}

func TestCanonical(t *testing.T) {
	got, err := Canonical("post", "", "b=2&a=x+y&a=1", "1700000000000", "n1", []byte("{}"))
	if err != nil {
		t.Fatal(err)
	}
	want := "POST\n/\na=1&a=x+y&b=2\n1700000000000\nn1\n44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
	if got != want {
		t.Fatalf("canonical\n%q\nwant\n%q", got, want)
	}
	// The same query written differently signs alike.
	other, _ := Canonical("POST", "/", "a=1&b=2&a=x%20y", "1700000000000", "n1", []byte("{}"))
	if other != got {
		t.Fatalf("re-ordered query canonicalises differently:\n%q\n%q", other, got)
	}
}
