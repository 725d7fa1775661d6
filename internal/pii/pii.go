// Package pii protects a person's ID number (公民身份号码) so that it is never
// kept, logged or shown in clear.
//
// A Protector turns one ID number into three forms:
//
//   - Hash: hex HMAC-SHA256 under a hash key, for exact search. The same ID
//     always gives the same hash under the same key, so rotating the hash key
//     changes every hash (and every record's content hash): treat it as a
//     long-lived key.
//   - Mask: for display, e.g. 211102********1234. It needs no key.
//   - Seal/Open: AES-256-GCM, for the push path only.
//
// Every form is computed from the normalized ID: surrounding and inner
// whitespace removed, full-width ASCII (１２３ＡＢＣ) folded to half-width, ASCII
// letters upper-cased (so a check char "x" becomes "X").
//
// # Ciphertext layout and key rotation
//
//	byte 0      format version, 1
//	bytes 1..4  key id: the first 4 bytes of HMAC-SHA256(key, "syncd pii key id v1")
//	bytes 5..   12-byte random nonce, then the GCM ciphertext and 16-byte tag
//
// The 5-byte header is the GCM additional data, so it cannot be altered
// without Open failing. New takes the encryption keys newest first: Seal uses
// encKeys[0]; Open picks the key whose id matches the ciphertext header, so an
// old key stays usable for reading for as long as it is listed, whatever its
// position. The key id is derived from the key, not from its position, so
// reordering or dropping keys never makes Open try the wrong key. The id is a
// one-way function of the key and reveals nothing usable about it.
//
// A key must not seal more than 2^32 values (random 96-bit nonces); rotate
// well before that.
//
// This package must not depend on any other syncd package: it sits below
// normalize and push.
package pii

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"
)

// KeySize is the size in bytes of the hash key and of every encryption key.
const KeySize = 32

const (
	formatV1   = 1
	keyIDSize  = 4
	headerSize = 1 + keyIDSize
	keyIDLabel = "syncd pii key id v1"
)

// Errors returned by New and Open.
var (
	ErrKeySize    = errors.New("pii: key must be 32 bytes")
	ErrNoKey      = errors.New("pii: no encryption key")
	ErrMalformed  = errors.New("pii: malformed ciphertext")
	ErrUnknownKey = errors.New("pii: ciphertext sealed with a key not configured")
	ErrOpen       = errors.New("pii: ciphertext does not authenticate")
)

// Protector hashes, masks and seals ID numbers. It is immutable after New and
// safe for concurrent use.
type Protector struct {
	hashKey []byte
	keys    []sealKey // keys[0] seals
}

type sealKey struct {
	id   [keyIDSize]byte
	aead cipher.AEAD
}

// New returns a Protector. hashKey and each encKey are 32 bytes; encKeys[0] is
// the current key used by Seal, and all of them are tried by Open (see the
// package doc for how a ciphertext names its key). The keys are copied.
func New(hashKey []byte, encKeys ...[]byte) (*Protector, error) {
	if len(hashKey) != KeySize {
		return nil, fmt.Errorf("hash key is %d bytes: %w", len(hashKey), ErrKeySize)
	}
	if len(encKeys) == 0 {
		return nil, ErrNoKey
	}
	p := &Protector{hashKey: bytes.Clone(hashKey)}
	for i, k := range encKeys {
		if len(k) != KeySize {
			return nil, fmt.Errorf("encryption key %d is %d bytes: %w", i, len(k), ErrKeySize)
		}
		if hmac.Equal(k, hashKey) {
			return nil, fmt.Errorf("encryption key %d equals the hash key: use independent keys", i)
		}
		block, err := aes.NewCipher(bytes.Clone(k))
		if err != nil {
			return nil, fmt.Errorf("encryption key %d: %w", i, err)
		}
		aead, err := cipher.NewGCMWithRandomNonce(block)
		if err != nil {
			return nil, fmt.Errorf("encryption key %d: %w", i, err)
		}
		sk := sealKey{id: keyID(k), aead: aead}
		for j, prev := range p.keys {
			if prev.id == sk.id {
				return nil, fmt.Errorf("encryption key %d has the same key id as key %d (duplicate key?)", i, j)
			}
		}
		p.keys = append(p.keys, sk)
	}
	return p, nil
}

func keyID(key []byte) [keyIDSize]byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(keyIDLabel))
	var id [keyIDSize]byte
	copy(id[:], m.Sum(nil))
	return id
}

// Hash returns the hex HMAC-SHA256 of the normalized id.
func (p *Protector) Hash(id string) string {
	m := hmac.New(sha256.New, p.hashKey)
	m.Write([]byte(normalize(id)))
	var sum [sha256.Size]byte
	return hex.EncodeToString(m.Sum(sum[:0]))
}

// Seal encrypts the normalized id with the current key under a fresh random
// nonce. The result starts with the format version and the key id.
func (p *Protector) Seal(id string) ([]byte, error) {
	return p.SealBytes([]byte(normalize(id))), nil
}

// SealBytes encrypts plain as is (no normalization) with the current key, in
// the same format as Seal. Ingest uses it to keep a sealed copy of a raw
// payload that holds an ID number, while the stored payload shows it masked.
func (p *Protector) SealBytes(plain []byte) []byte {
	k := &p.keys[0]
	out := make([]byte, headerSize, headerSize+len(plain)+k.aead.Overhead())
	out[0] = formatV1
	copy(out[1:], k.id[:])
	// The header is the additional data: it is authenticated, not encrypted.
	return k.aead.Seal(out, nil, plain, out[:headerSize])
}

// Open decrypts a ciphertext made by Seal under any configured key.
func (p *Protector) Open(ct []byte) (string, error) {
	b, err := p.OpenBytes(ct)
	return string(b), err
}

// OpenBytes decrypts a ciphertext made by Seal or SealBytes.
func (p *Protector) OpenBytes(ct []byte) ([]byte, error) {
	if len(ct) < headerSize || ct[0] != formatV1 {
		return nil, ErrMalformed
	}
	var id [keyIDSize]byte
	copy(id[:], ct[1:headerSize])
	for i := range p.keys {
		k := &p.keys[i]
		if k.id != id {
			continue
		}
		if len(ct) < headerSize+k.aead.Overhead() {
			return nil, ErrMalformed
		}
		plain, err := k.aead.Open(nil, nil, ct[headerSize:], ct[:headerSize])
		if err != nil {
			return nil, ErrOpen
		}
		return plain, nil
	}
	return nil, ErrUnknownKey
}

// Mask returns the display form of an ID number: for the 18-char 公民身份号码
// the first 6 (region) and last 4 chars around 8 '*', e.g. 211102********1234.
// Other lengths keep the first 2 and last 2 chars and mask the rest, and
// anything shorter than 8 chars is masked whole, so the clear middle is never
// shown. The id is normalized first; an already masked id masks to itself.
func Mask(id string) string {
	s := normalize(id)
	n := utf8.RuneCountInString(s)
	if n == 0 {
		return ""
	}
	keepHead, keepTail := 2, 2
	switch {
	case n == 18:
		keepHead, keepTail = 6, 4
	case n < 8:
		keepHead, keepTail = 0, 0
	}
	buf := make([]byte, 0, len(s))
	i := 0
	for _, r := range s {
		if i < keepHead || i >= n-keepTail {
			buf = utf8.AppendRune(buf, r)
		} else {
			buf = append(buf, '*')
		}
		i++
	}
	return string(buf)
}

// normalize removes whitespace, folds full-width ASCII to half-width and
// upper-cases ASCII letters. It mirrors normalize.CleanCode, which pii cannot
// import; a test there keeps the two in step.
func normalize(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf || c <= ' ' || (c >= 'a' && c <= 'z') {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	buf := make([]byte, 0, len(s))
	for _, r := range s {
		switch {
		case unicode.IsSpace(r) || r == '\u200b' || r == '\u200c' || r == '\u200d' || r == '\u2060' || r == '\ufeff':
			continue
		case r >= 0xFF01 && r <= 0xFF5E:
			r -= 0xFEE0
		}
		if r >= 'a' && r <= 'z' {
			r -= 'a' - 'A'
		}
		buf = utf8.AppendRune(buf, r)
	}
	return string(buf)
}

// idWeights are the GB 11643 weights of the first 17 digits.
var idWeights = [17]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}

// MaskIDsIn returns b with every 公民身份号码 in it masked as Mask does
// (211102********1234), and whether it found one. An ID number is 17 ASCII
// digits and a digit or X with a valid GB 11643 check char and a plausible
// birth date, not touching other digits: one in free text ("身份证号
// 211102198001010011，") or in a field no mapping names is found too. b is
// not modified; when nothing is found it is returned as is. ASCII digits
// never occur inside a GBK or GB18030 multi-byte character, so the scan is
// safe on those encodings as well as UTF-8.
func MaskIDsIn(b []byte) ([]byte, bool) {
	start, end := nextID(b, 0)
	if start < 0 {
		return b, false
	}
	out := append([]byte(nil), b...)
	for start >= 0 {
		for k := start + 6; k < start+14; k++ {
			out[k] = '*'
		}
		start, end = nextID(b, end)
	}
	return out, true
}

// MaskIDsInString is MaskIDsIn for a string; it allocates only when it
// masks something.
func MaskIDsInString(s string) (string, bool) {
	start, end := nextID(s, 0)
	if start < 0 {
		return s, false
	}
	out := []byte(s)
	for start >= 0 {
		for k := start + 6; k < start+14; k++ {
			out[k] = '*'
		}
		start, end = nextID(s, end)
	}
	return string(out), true
}

// nextID finds the next ID number in b at or after i: its start and end, or
// -1.
func nextID[T ~string | ~[]byte](b T, i int) (start, end int) {
	for i+18 <= len(b) {
		// Every ID number starting in [i, i+17] covers position i+17 with a
		// digit (or its final X): if that byte is neither, skip them all.
		if p := b[i+17]; !isDigit(p) && p != 'X' && p != 'x' {
			i += 18
			continue
		}
		if !isDigit(b[i]) || (i > 0 && isDigit(b[i-1])) {
			i++
			continue
		}
		j := i
		for j < len(b) && j-i < 17 && isDigit(b[j]) {
			j++
		}
		if j-i < 17 || j >= len(b) {
			i = j + 1
			continue
		}
		last, end := b[j], j+1
		if (isDigit(last) || last == 'X' || last == 'x') && (end == len(b) || !isDigit(b[end])) && validID(b[i:end]) {
			return i, end
		}
		i = j
	}
	return -1, -1
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// validID checks an 18-char candidate: check char and a birth month 01–12
// and day 01–31 (region codes are not checked: a wrong one still identifies
// a person).
func validID[T ~string | ~[]byte](id T) bool {
	sum := 0
	for k := 0; k < 17; k++ {
		sum += int(id[k]-'0') * idWeights[k]
	}
	want := "10X98765432"[sum%11]
	got := id[17]
	if got == 'x' {
		got = 'X'
	}
	if got != want {
		return false
	}
	month := int(id[10]-'0')*10 + int(id[11]-'0')
	day := int(id[12]-'0')*10 + int(id[13]-'0')
	return month >= 1 && month <= 12 && day >= 1 && day <= 31
}
