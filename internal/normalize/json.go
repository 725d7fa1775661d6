package normalize

import (
	"errors"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// The payload is read with a small single-pass JSON scanner instead of
// encoding/json into map[string]any: it walks the object once, validates all
// of it, and keeps only the values at the configured source paths, as slices
// of the payload (no allocation for what is skipped).

// pathNode is a node in a trie of source paths.
type pathNode struct {
	fields   []field              // fields read from the value at this node
	children map[string]*pathNode // by key
	// leafSame marks a leaf of the exact trie whose case-folded twin is a
	// leaf with the same fields: a key matched exactly here needs no
	// case-insensitive lookup (the exact match wins anyway).
	leafSame bool
}

func (n *pathNode) child(key string) *pathNode {
	if n.children == nil {
		n.children = make(map[string]*pathNode)
	}
	c := n.children[key]
	if c == nil {
		c = &pathNode{}
		n.children[key] = c
	}
	return c
}

// add adds a dotted path for f; a dotted path is also a key of the root
// object, for sources whose keys themselves contain dots.
func (n *pathNode) add(path string, f field) {
	node := n
	for seg := range strings.SplitSeq(path, ".") {
		node = node.child(seg)
	}
	node.fields = append(node.fields, f)
	if strings.Contains(path, ".") {
		lit := n.child(path)
		lit.fields = append(lit.fields, f)
	}
}

// pathTrie holds the source paths twice: as written, and ASCII-lower-cased.
// The scanner walks both at once, so a payload key matches a path segment
// exactly or, at a lower priority, case-insensitively; paths that differ
// only in case ("meta.type", "Meta.Note") share the lower-cased nodes.
type pathTrie struct {
	exact, fold *pathNode
}

func newPathTrie() *pathTrie {
	return &pathTrie{exact: &pathNode{}, fold: &pathNode{}}
}

func (t *pathTrie) add(path string, f field) {
	t.exact.add(path, f)
	t.fold.add(lookupKey(path), f)
}

// finish marks the exact leaves that need no case-insensitive lookup; call
// it after the last add.
func (t *pathTrie) finish() { markLeafSame(t.exact, t.fold) }

func markLeafSame(e, f *pathNode) {
	for k, ec := range e.children {
		fc := f.children[lookupKey(k)]
		if fc == nil {
			continue
		}
		ec.leafSame = ec.children == nil && fc.children == nil && len(ec.fields) == len(fc.fields)
		markLeafSame(ec, fc)
	}
}

// JSON value kinds as jsonValue.kind.
const (
	jsonNone   = 0
	jsonString = '"'
	jsonNumber = '0'
	jsonTrue   = 't'
	jsonFalse  = 'f'
	jsonNull   = 'n'
	jsonObject = '{'
	jsonArray  = '['
)

// Match priorities: a path matched key by key exactly beats one matched
// case-insensitively; among equals the last in the payload wins, as in
// encoding/json.
const (
	prioFold  = 1
	prioExact = 2
)

// jsonValue is a value found at a source path, still in the payload.
type jsonValue struct {
	raw  []byte // string: between the quotes, escapes as sent; others: the text
	kind byte
	esc  bool // string contains escapes
	prio uint8
}

// plain reports whether the value's text is its raw bytes as they are: a
// string without escapes, a number, true or false.
func (v *jsonValue) plain() bool {
	switch v.kind {
	case jsonString:
		return !v.esc
	case jsonNumber, jsonTrue, jsonFalse:
		return true
	}
	return false
}

// text returns the value as a string, ok false for null or absent.
func (v *jsonValue) text() (s string, ok bool) {
	switch v.kind {
	case jsonNone, jsonNull:
		return "", false
	case jsonString:
		if v.esc {
			return unescape(v.raw), true
		}
	}
	return string(v.raw), true
}

// maxDepth bounds object and array nesting.
const maxDepth = 512

var (
	errNotObject = errors.New("not a JSON object")
	errSyntax    = errors.New("invalid JSON")
	errTooDeep   = errors.New("JSON nested too deep")
	errNotUTF8   = errors.New("not valid UTF-8")
)

type scanner struct {
	data  []byte
	pos   int
	depth int
	vals  *[numFields]jsonValue
	buf   [64]byte // for lower-casing keys
}

// scanObject validates data as one JSON object in UTF-8 and fills vals with
// the values found at the trie's paths. Outside strings JSON is ASCII, so
// checking the strings' bytes checks the whole payload's UTF-8.
func scanObject(data []byte, paths *pathTrie, vals *[numFields]jsonValue) error {
	s := scanner{data: data, vals: vals}
	s.ws()
	if s.pos >= len(data) || data[s.pos] != '{' {
		return errNotObject
	}
	if err := s.object(paths.exact, paths.fold); err != nil {
		return err
	}
	s.ws()
	if s.pos != len(data) {
		return errSyntax
	}
	return nil
}

func (s *scanner) ws() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// value reads any value; exact and fold are where it sits in the two path
// tries (nil when no path goes there).
func (s *scanner) value(exact, fold *pathNode) error {
	s.ws()
	if s.pos >= len(s.data) {
		return errSyntax
	}
	start := s.pos
	var v jsonValue
	switch c := s.data[s.pos]; {
	case c == '{':
		if err := s.object(exact, fold); err != nil {
			return err
		}
		v = jsonValue{kind: jsonObject, raw: s.data[start:s.pos]}
	case c == '[':
		if err := s.array(); err != nil {
			return err
		}
		v = jsonValue{kind: jsonArray, raw: s.data[start:s.pos]}
	case c == '"':
		raw, esc, err := s.str()
		if err != nil {
			return err
		}
		v = jsonValue{kind: jsonString, raw: raw, esc: esc}
	case c == 't':
		if err := s.literal("true"); err != nil {
			return err
		}
		v = jsonValue{kind: jsonTrue, raw: s.data[start:s.pos]}
	case c == 'f':
		if err := s.literal("false"); err != nil {
			return err
		}
		v = jsonValue{kind: jsonFalse, raw: s.data[start:s.pos]}
	case c == 'n':
		if err := s.literal("null"); err != nil {
			return err
		}
		v = jsonValue{kind: jsonNull}
	case c == '-' || isDigit(c):
		if err := s.number(); err != nil {
			return err
		}
		v = jsonValue{kind: jsonNumber, raw: s.data[start:s.pos]}
	default:
		return errSyntax
	}
	if fold != nil {
		s.assign(fold.fields, v, prioFold)
	}
	if exact != nil {
		s.assign(exact.fields, v, prioExact)
	}
	return nil
}

func (s *scanner) assign(fields []field, v jsonValue, prio uint8) {
	v.prio = prio
	for _, f := range fields {
		if prio >= s.vals[f].prio {
			s.vals[f] = v
		}
	}
}

func (s *scanner) object(exact, fold *pathNode) error {
	s.depth++
	if s.depth > maxDepth {
		return errTooDeep
	}
	s.pos++ // '{'
	s.ws()
	if s.pos < len(s.data) && s.data[s.pos] == '}' {
		s.pos++
		s.depth--
		return nil
	}
	for {
		s.ws()
		if s.pos >= len(s.data) || s.data[s.pos] != '"' {
			return errSyntax
		}
		key, esc, err := s.str()
		if err != nil {
			return err
		}
		s.ws()
		if s.pos >= len(s.data) || s.data[s.pos] != ':' {
			return errSyntax
		}
		s.pos++
		var ce, cf *pathNode
		if exact != nil && exact.children != nil || fold != nil && fold.children != nil {
			if esc {
				key = []byte(unescape(key))
			}
			ce, cf = s.lookup(exact, fold, key)
		}
		if err := s.value(ce, cf); err != nil {
			return err
		}
		s.ws()
		if s.pos >= len(s.data) {
			return errSyntax
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
		case '}':
			s.pos++
			s.depth--
			return nil
		default:
			return errSyntax
		}
	}
}

// lookup finds key's children in both tries.
func (s *scanner) lookup(exact, fold *pathNode, key []byte) (ce, cf *pathNode) {
	if exact != nil {
		ce = exact.children[string(key)]
		if ce != nil && ce.leafSame {
			return ce, nil
		}
	}
	if fold == nil || fold.children == nil {
		return ce, nil
	}
	var lower []byte
	if len(key) <= len(s.buf) {
		lower = s.buf[:len(key)]
	} else {
		lower = make([]byte, len(key))
	}
	for i, c := range key {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		lower[i] = c
	}
	return ce, fold.children[string(lower)]
}

func (s *scanner) array() error {
	s.depth++
	if s.depth > maxDepth {
		return errTooDeep
	}
	s.pos++ // '['
	s.ws()
	if s.pos < len(s.data) && s.data[s.pos] == ']' {
		s.pos++
		s.depth--
		return nil
	}
	for {
		if err := s.value(nil, nil); err != nil {
			return err
		}
		s.ws()
		if s.pos >= len(s.data) {
			return errSyntax
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
		case ']':
			s.pos++
			s.depth--
			return nil
		default:
			return errSyntax
		}
	}
}

// str reads a string at s.pos (on the opening quote) and returns its
// contents with escapes as sent.
func (s *scanner) str() (raw []byte, esc bool, err error) {
	s.pos++
	start := s.pos
	d := s.data
	for s.pos < len(d) {
		for s.pos < len(d) {
			c := d[s.pos]
			if !strStop[c] {
				s.pos++
				continue
			}
			// Most of the text is CJK: 3-byte runes led by E1..EC take
			// no bounds of their own on the second byte.
			if c >= 0xE1 && c <= 0xEC && s.pos+2 < len(d) && d[s.pos+1]&0xC0 == 0x80 && d[s.pos+2]&0xC0 == 0x80 {
				s.pos += 3
				continue
			}
			break
		}
		if s.pos >= len(d) {
			break
		}
		c := d[s.pos]
		switch {
		case c == '"':
			raw = s.data[start:s.pos]
			s.pos++
			return raw, esc, nil
		case c == '\\':
			esc = true
			s.pos++
			if s.pos >= len(s.data) {
				return nil, false, errSyntax
			}
			switch s.data[s.pos] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.pos++
			case 'u':
				if s.pos+4 >= len(s.data) {
					return nil, false, errSyntax
				}
				for _, h := range s.data[s.pos+1 : s.pos+5] {
					if hexVal(h) < 0 {
						return nil, false, errSyntax
					}
				}
				s.pos += 5
			default:
				return nil, false, errSyntax
			}
		case c < 0x20:
			return nil, false, errSyntax
		default:
			n := utf8SeqLen(s.data[s.pos:])
			if n == 0 {
				return nil, false, errNotUTF8
			}
			s.pos += n
		}
	}
	return nil, false, errSyntax
}

// utf8SeqLen returns the length of the valid UTF-8 sequence (of 2 to 4
// bytes) b starts with, 0 when it is not one.
func utf8SeqLen(b []byte) int {
	c := b[0]
	n := 0
	lo, hi := byte(0x80), byte(0xBF)
	switch {
	case c >= 0xC2 && c <= 0xDF:
		n = 2
	case c >= 0xE0 && c <= 0xEF:
		n = 3
		switch c {
		case 0xE0:
			lo = 0xA0
		case 0xED:
			hi = 0x9F // no surrogates
		}
	case c >= 0xF0 && c <= 0xF4:
		n = 4
		switch c {
		case 0xF0:
			lo = 0x90
		case 0xF4:
			hi = 0x8F
		}
	default:
		return 0
	}
	if len(b) < n || b[1] < lo || b[1] > hi {
		return 0
	}
	for _, cc := range b[2:n] {
		if cc&0xC0 != 0x80 {
			return 0
		}
	}
	return n
}

// strStop marks the bytes that end a plain run inside a string: the quote,
// the backslash and control chars.
var strStop = func() (t [256]bool) {
	for c := range 0x20 {
		t[c] = true
	}
	for c := 0x80; c < 0x100; c++ {
		t[c] = true // checked as UTF-8
	}
	t['"'], t['\\'] = true, true
	return t
}()

func (s *scanner) literal(word string) error {
	if len(s.data)-s.pos < len(word) || string(s.data[s.pos:s.pos+len(word)]) != word {
		return errSyntax
	}
	s.pos += len(word)
	return nil
}

// number reads -?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?
func (s *scanner) number() error {
	d := s.data
	if s.pos < len(d) && d[s.pos] == '-' {
		s.pos++
	}
	switch {
	case s.pos < len(d) && d[s.pos] == '0':
		s.pos++
	case s.pos < len(d) && d[s.pos] >= '1' && d[s.pos] <= '9':
		for s.pos < len(d) && isDigit(d[s.pos]) {
			s.pos++
		}
	default:
		return errSyntax
	}
	if s.pos < len(d) && d[s.pos] == '.' {
		s.pos++
		if s.pos >= len(d) || !isDigit(d[s.pos]) {
			return errSyntax
		}
		for s.pos < len(d) && isDigit(d[s.pos]) {
			s.pos++
		}
	}
	if s.pos < len(d) && (d[s.pos] == 'e' || d[s.pos] == 'E') {
		s.pos++
		if s.pos < len(d) && (d[s.pos] == '+' || d[s.pos] == '-') {
			s.pos++
		}
		if s.pos >= len(d) || !isDigit(d[s.pos]) {
			return errSyntax
		}
		for s.pos < len(d) && isDigit(d[s.pos]) {
			s.pos++
		}
	}
	return nil
}

func hexVal(c byte) rune {
	switch {
	case c >= '0' && c <= '9':
		return rune(c - '0')
	case c >= 'a' && c <= 'f':
		return rune(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return rune(c-'A') + 10
	}
	return -1
}

// unescape decodes the escapes of a string the scanner has validated. Like
// encoding/json, an unpaired surrogate becomes U+FFFD.
func unescape(raw []byte) string {
	var b strings.Builder
	b.Grow(len(raw))
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		i++
		switch raw[i] {
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'u':
			r := hex4(raw[i+1:])
			i += 4
			if utf16.IsSurrogate(r) {
				if i+6 < len(raw) && raw[i+1] == '\\' && raw[i+2] == 'u' {
					if r2 := utf16.DecodeRune(r, hex4(raw[i+3:])); r2 != utf8.RuneError {
						b.WriteRune(r2)
						i += 6
						continue
					}
				}
				r = utf8.RuneError
			}
			b.WriteRune(r)
		default: // " \ /
			b.WriteByte(raw[i])
		}
	}
	return b.String()
}

func hex4(b []byte) rune {
	return hexVal(b[0])<<12 | hexVal(b[1])<<8 | hexVal(b[2])<<4 | hexVal(b[3])
}
