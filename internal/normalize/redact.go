package normalize

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/panjin-gov/syncd/internal/pii"
	"github.com/panjin-gov/syncd/internal/record"
)

// RedactedPlaceholder replaces a payload that may hold an ID number but
// cannot be parsed to mask it; its sealed copy keeps the original.
const RedactedPlaceholder = `{"_redacted":"payload may hold a person's ID number and could not be masked; a sealed copy is kept"}`

// Redact returns the payload as it may be stored and shown: with the mapped
// ID number (subject_id_number) masked, and any other 公民身份号码 found in it
// (an unmapped field, free text) masked too. hadPII says the payload held,
// or may hold, an ID number, so the caller must keep only a sealed copy of
// the original (pii.Protector.SealBytes) — raw payloads are never stored
// with an ID number in clear (DESIGN.md §2).
func (n *Normalizer) Redact(raw *record.Raw) (shown []byte, hadPII bool) {
	shown, hadPII = n.redactMapped(raw)
	if masked, found := pii.MaskIDsIn(shown); found {
		return masked, true
	}
	return shown, hadPII
}

// redactMapped masks the value at the mapped subject_id_number path.
func (n *Normalizer) redactMapped(raw *record.Raw) (shown []byte, hadPII bool) {
	path := n.sp.fields[fSubjectIDNumber].path
	if path == "" {
		return raw.Payload, false
	}
	enc := strings.ToLower(raw.Encoding)
	if enc != "" && enc != "utf-8" && enc != "utf8" {
		return []byte(RedactedPlaceholder), true
	}
	dec := json.NewDecoder(bytes.NewReader(raw.Payload))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return []byte(RedactedPlaceholder), true
	}
	parts := strings.Split(path, ".")
	obj := doc
	for _, p := range parts[:len(parts)-1] {
		next, ok := lookupFold(obj, p).(map[string]any)
		if !ok {
			return raw.Payload, false
		}
		obj = next
	}
	last := parts[len(parts)-1]
	key := keyFold(obj, last)
	v, ok := obj[key]
	if !ok || v == nil {
		return raw.Payload, false
	}
	s, isStr := v.(string)
	if !isStr {
		s = strings.TrimSpace(string(mustJSON(v)))
	}
	if strings.TrimSpace(s) == "" {
		return raw.Payload, false
	}
	obj[key] = pii.Mask(s)
	var buf bytes.Buffer
	e := json.NewEncoder(&buf)
	e.SetEscapeHTML(false)
	if err := e.Encode(doc); err != nil {
		return []byte(RedactedPlaceholder), true
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), true
}

func keyFold(obj map[string]any, k string) string {
	if _, ok := obj[k]; ok {
		return k
	}
	for key := range obj {
		if strings.EqualFold(key, k) {
			return key
		}
	}
	return k
}

func lookupFold(obj map[string]any, k string) any { return obj[keyFold(obj, k)] }

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
