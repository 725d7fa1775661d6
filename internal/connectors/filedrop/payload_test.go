package filedrop

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/transform"
)

// oldObjectPayload is how rows were encoded before objectEncoder: the
// reference its output must equal byte for byte.
func oldObjectPayload(header, values []string) row {
	var b bytes.Buffer
	b.WriteByte('{')
	bad := ""
	for i, h := range header {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(h)
		v, _ := json.Marshal(values[i])
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
		if bad == "" && !utf8.ValidString(values[i]) {
			bad = fmt.Sprintf("column %q is not valid UTF-8", h)
		}
	}
	b.WriteByte('}')
	return row{payload: b.Bytes(), problem: bad}
}

func checkJSONString(t *testing.T, s string) {
	t.Helper()
	want, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	got, valid := appendJSONString([]byte("prefix"), s)
	if !bytes.Equal(got[len("prefix"):], want) {
		t.Fatalf("appendJSONString(%q) = %s, encoding/json gives %s", s, got[len("prefix"):], want)
	}
	if valid != utf8.ValidString(s) {
		t.Fatalf("appendJSONString(%q) valid = %v", s, valid)
	}
}

func TestAppendJSONStringCases(t *testing.T) {
	for _, s := range []string{
		"", "plain", `quote " and backslash \`, "<script>&amp;</script>",
		"\b\f\n\r\t", "\x00\x01\x1f\x7f", "盘锦市市场监督管理局，罚款",
		"line\u2028sep\u2029para", "\xff", "a\xc3", "\xc3\x28", "\xe2\x82", "\xf0\x9f\x98", "\xed\xa0\x80", // surrogate
		"emoji 😀 ok", "\ufffd literal", "tail\xe6\x97",
	} {
		checkJSONString(t, s)
	}
	for c := range 256 {
		checkJSONString(t, string([]byte{byte(c)}))
		checkJSONString(t, "x"+string([]byte{byte(c)})+"y")
	}
}

func TestAppendJSONStringRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	pieces := []string{"a", "Z", " ", "\"", "\\", "<", ">", "&", "\n", "\x00", "\x1f", "\x7f", "é", "中", "😀",
		"\u2028", "\u2029", "\xff", "\xc3", "\xe4\xb8", "\xed\xa0\x80", "\ufffd"}
	for range 20000 {
		var b []byte
		for range rng.IntN(24) {
			if rng.IntN(4) == 0 {
				b = append(b, byte(rng.IntN(256)))
			} else {
				b = append(b, pieces[rng.IntN(len(pieces))]...)
			}
		}
		checkJSONString(t, string(b))
	}
}

func FuzzAppendJSONString(f *testing.F) {
	f.Add("盘锦 <&> \"\\\n\x00\xff\u2028")
	f.Fuzz(func(t *testing.T, s string) { checkJSONString(t, s) })
}

func TestObjectEncoderMatchesJSONMarshal(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	header := []string{"wsh", "mc", "处罚<类别>", "a\"b", "\u2028"}
	enc := newObjectEncoder(header)
	for range 5000 {
		values := make([]string, len(header))
		for i := range values {
			b := make([]byte, rng.IntN(12))
			for j := range b {
				b[j] = byte(rng.IntN(256))
			}
			if rng.IntN(3) > 0 {
				b = []byte(string(bytes.ToValidUTF8(b, []byte("中"))))
			}
			values[i] = string(b)
		}
		got, want := enc.row(values), oldObjectPayload(header, values)
		if !bytes.Equal(got.payload, want.payload) || got.problem != want.problem {
			t.Fatalf("row %q:\n got %s %q\nwant %s %q", values, got.payload, got.problem, want.payload, want.problem)
		}
		if want.problem == "" && !json.Valid(got.payload) {
			t.Fatalf("row %q: invalid JSON %s", values, got.payload)
		}
	}
}

// A file scan found valid is read without the UTF-8 decoder; it must read
// the same as through it, BOM or not.
func TestDecodedValidUTF8SkipsDecoder(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"plain.csv": "a,b\n盘锦,1\n",
		"bom.csv":   "\xef\xbb\xbfa,b\n盘锦,\xef\xbb\xbf1\n",
		"empty.csv": "",
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		_, enc, valid, err := scan(path, "auto")
		if err != nil {
			t.Fatal(err)
		}
		if !valid || enc != "utf-8" {
			t.Fatalf("%s: scan says %s, valid %v", name, enc, valid)
		}
		fh, r, err := decoded(path, enc, valid)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		fh.Close()
		if err != nil {
			t.Fatal(err)
		}
		want, err := io.ReadAll(transform.NewReader(bytes.NewReader([]byte(content)), unicode.UTF8BOM.NewDecoder()))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: read %q, the decoder gives %q", name, got, want)
		}
	}
}
