package push

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// ReceiptShape says where a platform's answer (an HTTP response, a receipt
// file) keeps its per-record receipts and what their fields are called, so
// a platform answering {"data":{"results":[{"ywid":…,"zt":"1","cwdm":…}]}}
// needs config only.
type ReceiptShape struct {
	// ItemsPath is a dotted path to the list of receipts; "." when the
	// answer is the list itself.
	ItemsPath string `mapstructure:"items_path"` // default "receipts"
	// KeyField holds the idempotency key sent (record_id:version).
	KeyField    string `mapstructure:"key_field"`    // default "key"
	StatusField string `mapstructure:"status_field"` // default "status"
	// AcceptedValues are the statuses that mean accepted (compared trimmed
	// and case-insensitively); any other is a rejection.
	AcceptedValues []string `mapstructure:"accepted_values"` // default ["accepted"]
	CodeField      string   `mapstructure:"code_field"`      // default "code"
	MessageField   string   `mapstructure:"message_field"`   // default "message"
}

// SetDefaults fills unset fields.
func (s *ReceiptShape) SetDefaults() {
	for _, f := range []struct {
		p   *string
		def string
	}{{&s.ItemsPath, "receipts"}, {&s.KeyField, "key"}, {&s.StatusField, "status"}, {&s.CodeField, "code"}, {&s.MessageField, "message"}} {
		if *f.p == "" {
			*f.p = f.def
		}
	}
	if len(s.AcceptedValues) == 0 {
		s.AcceptedValues = []string{"accepted"}
	}
}

// Parse reads the receipts in a decoded answer (maps, lists, strings and
// json.Number, as encoding/json with UseNumber or an XML-to-map decoder
// gives). Receipts without a key are skipped: they cannot be matched to a
// record, which then stays unfinished and is sent again next run.
func (s ReceiptShape) Parse(doc any) ([]Receipt, error) {
	items, err := s.Items(doc)
	if err != nil {
		return nil, err
	}
	out := make([]Receipt, 0, len(items))
	for _, it := range items {
		m, ok := it.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("a receipt at %q is not an object", s.ItemsPath)
		}
		key := Scalar(m[s.KeyField])
		if key == "" {
			continue
		}
		status := strings.TrimSpace(Scalar(m[s.StatusField]))
		rc := Receipt{
			Key:      key,
			Accepted: slices.ContainsFunc(s.AcceptedValues, func(a string) bool { return strings.EqualFold(strings.TrimSpace(a), status) }),
			Code:     Scalar(m[s.CodeField]),
			Message:  Scalar(m[s.MessageField]),
		}
		if !rc.Accepted && rc.Code == "" && rc.Message == "" {
			rc.Message = "status " + status
		}
		out = append(out, rc)
	}
	return out, nil
}

// Items walks ItemsPath and returns the list found there. An XML answer's
// list can arrive as a wrapper element holding one repeated child, or a
// lone child: both are read as a list.
func (s ReceiptShape) Items(doc any) ([]any, error) {
	path := s.ItemsPath
	cur := doc
	if path != "." && path != "" {
		for _, seg := range strings.Split(path, ".") {
			m, ok := cur.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("no receipts at %q: %q is inside a non-object", path, seg)
			}
			if cur, ok = m[seg]; !ok {
				return nil, fmt.Errorf("no receipts at %q: no %q", path, seg)
			}
		}
	}
	switch x := cur.(type) {
	case nil:
		return nil, nil
	case []any:
		return x, nil
	case string:
		if strings.TrimSpace(x) == "" { // an empty XML wrapper, <receipts/>
			return nil, nil
		}
	case map[string]any:
		if len(x) == 1 {
			for _, v := range x {
				switch w := v.(type) {
				case []any:
					return w, nil
				case map[string]any:
					return []any{w}, nil
				}
			}
		}
		return []any{x}, nil // a lone receipt element
	}
	return nil, fmt.Errorf("receipts at %q are not a list", path)
}

// Scalar renders a receipt field as text; an XML element with attributes
// gives its text.
func Scalar(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case json.Number:
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	case map[string]any:
		if s, ok := x["#text"].(string); ok {
			return s
		}
	}
	b, _ := json.Marshal(v)
	return string(b)
}
