package normalize

import (
	"strings"
	"testing"

	"github.com/panjin-gov/syncd/internal/pii"
	"github.com/panjin-gov/syncd/internal/record"
)

func TestRedactMasksTheMappedIDNumber(t *testing.T) {
	p, err := pii.New(make([]byte, 32), []byte(strings.Repeat("e", 32)))
	if err != nil {
		t.Fatal(err)
	}
	id := "11010519491231002X" // GB 11643 published example
	m := Mapping{Kind: "disciplinary_action", Fields: map[string]string{
		"subject_name": "party.name", "subject_id_number": "Party.ID_No", "doc_no": "case_no",
		"decision_date": "d", "authority_name": "a"}}
	n, err := New("s", m, p)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, payload, enc string
		had                bool
		mustNotContain     string
		mustContain        string
	}{
		{"nested, case-folded path", `{"party":{"name":"张某","id_no":"` + id + `"},"case_no":"盘纪处〔2026〕1号"}`, "utf-8", true, id, "110105********002X"},
		{"no id in this payload", `{"party":{"name":"盘锦市某局"}}`, "utf-8", false, "", "盘锦市某局"},
		{"not JSON", `party id ` + id, "utf-8", true, id, "_redacted"},
		{"GBK bytes are not parsed", `{"x":1}`, "gbk", true, "", "_redacted"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			shown, had := n.Redact(&record.Raw{Payload: []byte(c.payload), Encoding: c.enc})
			if had != c.had {
				t.Fatalf("hadPII = %v", had)
			}
			if c.mustNotContain != "" && strings.Contains(string(shown), c.mustNotContain) {
				t.Fatalf("clear ID left in %s", shown)
			}
			if !strings.Contains(string(shown), c.mustContain) {
				t.Fatalf("%s lacks %s", shown, c.mustContain)
			}
		})
	}
	// A mapping without ID numbers still finds them: in a field it does not
	// map, and in free text.
	delete(m.Fields, "subject_id_number")
	n2, _ := New("s", m, nil)
	for _, payload := range []string{`{"id_no":"` + id + `"}`, `{"facts":"当事人（身份证号` + id + `）"}`} {
		if shown, had := n2.Redact(&record.Raw{Payload: []byte(payload)}); !had || strings.Contains(string(shown), id) {
			t.Fatalf("clear ID left in %s", shown)
		}
	}
	// A payload without one is left alone.
	plain := `{"facts":"案号（2026）辽1102执123456789012号"}`
	if shown, had := n2.Redact(&record.Raw{Payload: []byte(plain)}); had || string(shown) != plain {
		t.Fatalf("payload without an ID number changed: %s", shown)
	}
}

func TestSealBytesRoundTrip(t *testing.T) {
	p, _ := pii.New(make([]byte, 32), []byte(strings.Repeat("k", 32)))
	orig := []byte(`{"id_no":" 11010519491231002x "}`)
	got, err := p.OpenBytes(p.SealBytes(orig))
	if err != nil || string(got) != string(orig) {
		t.Fatalf("round trip = %q, %v (must not normalize)", got, err)
	}
}
