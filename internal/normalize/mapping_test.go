package normalize

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMappingBad loads every testdata/mapping/<name>.bad.json and expects
// Validate to fail with the message in <name>.err.
func TestMappingBad(t *testing.T) {
	files, err := filepath.Glob("testdata/mapping/*.bad.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no bad mappings: %v", err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".bad.json")
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var m Mapping
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&m); err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(strings.TrimSuffix(file, ".bad.json") + ".err")
			if err != nil {
				t.Fatal(err)
			}
			err = m.Validate()
			if err == nil {
				t.Fatalf("Validate: no error, want %q", want)
			}
			if !strings.Contains(err.Error(), strings.TrimSpace(string(want))) {
				t.Fatalf("Validate: %v\nwant it to contain %q", err, strings.TrimSpace(string(want)))
			}
			if _, err := New("bad", m, testProtector(t)); err == nil {
				t.Fatal("New accepted a mapping Validate rejects")
			}
		})
	}
}

func TestMappingValidateReportsAll(t *testing.T) {
	m := Mapping{
		Fields:      map[string]string{"subjekt_name": "xm", "doc_no": "wh"},
		AmountUnits: map[string]string{"fine_amount": "美元"},
	}
	err := m.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	lines := strings.Split(err.Error(), "\n")
	want := []string{
		`amount_units.fine_amount: unknown unit "美元" (want 元 or 万元)`,
		"fields.authority_name: required: authority_name or authority_uscc needs a source path or constant",
		"fields.decision_date: required field has no source path or constant",
		"fields.subject_name: required field has no source path or constant",
		"fields.subjekt_name: unknown canonical field",
		"kind: no kind: set kind, kind_field, fields.kind or constants.kind",
	}
	if len(lines) != len(want) {
		t.Fatalf("Validate reported %d problems, want %d:\n%v", len(lines), len(want), err)
	}
	for i := range want {
		if !strings.HasPrefix(lines[i], want[i]) {
			t.Errorf("problem %d = %q, want %q", i, lines[i], want[i])
		}
	}
}

// viper lower-cases map keys: a mapping as viper hands it over must mean the
// same as the one written in config.
func TestMappingViperLowercasedKeys(t *testing.T) {
	m := Mapping{
		KindField: "CFLX",
		KindMap:   map[string]string{"da": "disciplinary_action"}, // written "DA"
		Fields: map[string]string{
			"subject_name": "CF_XDR_MC", "doc_no": "CF_WSH", "decision_date": "CF_JDRQ", "authority_name": "CF_CFJG",
			"status": "CF_ZT",
		},
		ValueMaps:   map[string]map[string]string{"status": {"yx": "active"}}, // written "YX"
		AmountUnits: map[string]string{"Fine_Amount": "元"},
	}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	n, err := New("viper", m, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec, rej := n.Normalize(rawOf(`{"CFLX":"DA","CF_XDR_MC":"盘锦市双台子区人民政府","CF_WSH":"盘纪处〔2026〕1号","CF_JDRQ":"2026-01-05","CF_CFJG":"中共盘锦市纪律检查委员会","CF_ZT":"YX"}`), goldenNow)
	if rej != nil {
		t.Fatalf("reject: %+v", rej)
	}
	if rec.Kind != "disciplinary_action" || rec.Status != "active" {
		t.Errorf("kind %q status %q", rec.Kind, rec.Status)
	}
}

func TestNewNeedsProtectorForIDs(t *testing.T) {
	m := Mapping{Kind: "admin_penalty", Fields: map[string]string{
		"subject_name": "mc", "subject_id_number": "sfz", "doc_no": "wh", "decision_date": "rq", "authority_name": "jg"}}
	if _, err := New("ids", m, nil); err == nil {
		t.Fatal("New without a protector accepted a mapping with subject_id_number")
	}
	if _, err := New("", m, testProtector(t)); err == nil {
		t.Fatal("New accepted an empty source name")
	}
}
