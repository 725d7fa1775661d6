package httpauth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emmansun/gmsm/sm3"
)

// Signature algorithms of the appkey auth type.
const (
	AlgHMACSHA256 = "hmac-sha256"
	AlgHMACSM3    = "hmac-sm3" // 国密 SM3 (GB/T 32905) in HMAC
)

// Headers of an app-key signed request.
const (
	HeaderAppKey    = "X-App-Key"
	HeaderTimestamp = "X-Timestamp" // unix milliseconds
	HeaderNonce     = "X-Nonce"     // random, never reused within the skew window
	HeaderSignature = "X-Signature" // lower-case hex HMAC of the canonical string
)

// DefaultMaxSkew is how far a request's timestamp may be from the server's
// clock when Verify is given no bound.
const DefaultMaxSkew = 5 * time.Minute

// Signer signs requests with an app key and secret.
//
// The signed (canonical) string is six lines joined by "\n":
//
//	METHOD                 upper case, e.g. POST
//	PATH                   escaped path as sent on the request line; "/" if empty
//	QUERY                  every key=value pair, each side url.QueryEscape'd,
//	                       sorted by key then value, joined by "&" ("" if none)
//	TIMESTAMP              the X-Timestamp value
//	NONCE                  the X-Nonce value
//	hex(SHA-256(body))     of the exact body bytes ("e3b0…b855" for none)
//
// and X-Signature = hex(HMAC(secret, canonical)) with SHA-256 or SM3. The
// query is re-encoded rather than taken raw so that "a=1&b=2" and
// "b=2&a=1", or "%20" and "+", sign alike.
type Signer struct {
	AppKey    string
	Secret    string
	Algorithm string           // AlgHMACSHA256 ("" too) or AlgHMACSM3
	Now       func() time.Time // nil: time.Now
}

// Sign sets the four signature headers on r for body, which must be the
// exact bytes r will send.
func (s Signer) Sign(r *http.Request, body []byte) error {
	newHash, err := hashFor(s.Algorithm)
	if err != nil {
		return err
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	ts := strconv.FormatInt(now().UnixMilli(), 10)
	var nb [16]byte
	_, _ = rand.Read(nb[:]) // never fails (crypto/rand, Go 1.24+)
	nonce := hex.EncodeToString(nb[:])
	canonical, err := Canonical(r.Method, r.URL.EscapedPath(), r.URL.RawQuery, ts, nonce, body)
	if err != nil {
		return err
	}
	r.Header.Set(HeaderAppKey, s.AppKey)
	r.Header.Set(HeaderTimestamp, ts)
	r.Header.Set(HeaderNonce, nonce)
	r.Header.Set(HeaderSignature, hex.EncodeToString(mac(newHash, []byte(s.Secret), []byte(canonical))))
	return nil
}

// Canonical builds the string an app-key signature covers (see Signer).
func Canonical(method, escapedPath, rawQuery, timestamp, nonce string, body []byte) (string, error) {
	if escapedPath == "" {
		escapedPath = "/"
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return "", fmt.Errorf("sign: query: %w", err)
	}
	pairs := make([]string, 0, len(q))
	for k, vs := range q {
		for _, v := range vs {
			pairs = append(pairs, url.QueryEscape(k)+"="+url.QueryEscape(v))
		}
	}
	slices.Sort(pairs)
	sum := sha256.Sum256(body)
	return strings.Join([]string{
		strings.ToUpper(method), escapedPath, strings.Join(pairs, "&"), timestamp, nonce, hex.EncodeToString(sum[:]),
	}, "\n"), nil
}

func hashFor(alg string) (func() hash.Hash, error) {
	switch alg {
	case "", AlgHMACSHA256:
		return sha256.New, nil
	case AlgHMACSM3:
		return sm3.New, nil
	}
	return nil, fmt.Errorf("sign: algorithm %q is not %s or %s", alg, AlgHMACSHA256, AlgHMACSM3)
}

func mac(newHash func() hash.Hash, key, msg []byte) []byte {
	m := hmac.New(newHash, key)
	m.Write(msg)
	return m.Sum(nil)
}

// Reasons Verify refuses a request; each wraps ErrUnauthenticated.
var (
	ErrUnauthenticated = errors.New("request not authenticated")
	ErrMissingHeader   = fmt.Errorf("%w: missing signature header", ErrUnauthenticated)
	ErrUnknownAppKey   = fmt.Errorf("%w: unknown app key", ErrUnauthenticated)
	ErrClockSkew       = fmt.Errorf("%w: timestamp outside the allowed skew", ErrUnauthenticated)
	ErrBadSignature    = fmt.Errorf("%w: signature does not match", ErrUnauthenticated)
	ErrReplay          = fmt.Errorf("%w: nonce already used", ErrUnauthenticated)
)

// Verifier checks app-key signatures on a server and remembers the nonces
// it has accepted, so a captured request cannot be replayed. A nonce only
// needs remembering while its timestamp is within the skew window; beyond
// that the timestamp check refuses it anyway. The memory is bounded: when it
// is full of live nonces the oldest is forgotten and every request not newer
// than that nonce's timestamp is refused from then on, so overflow costs
// availability for late requests, never a replay.
type Verifier struct {
	// Algorithm is the one algorithm accepted; "" means AlgHMACSHA256. A
	// server does not let the client choose, or a weaker one could be asked for.
	Algorithm string
	Now       func() time.Time // nil: time.Now

	mu       sync.Mutex
	capacity int
	seen     map[string]int64 // appKey+"\x00"+nonce -> timestamp (ms)
	order    []nonceEntry     // seen in insertion order; order[head:] are live
	head     int
	floor    int64 // requests with a timestamp at or below are refused
}

type nonceEntry struct {
	key string
	ts  int64
}

// NewVerifier returns a verifier accepting alg that remembers up to capacity
// nonces (≤ 0: 100 000).
func NewVerifier(alg string, capacity int) *Verifier {
	if capacity <= 0 {
		capacity = 100_000
	}
	return &Verifier{Algorithm: alg, capacity: capacity, seen: make(map[string]int64)}
}

// Verify checks r's app-key signature over body (the bytes read from
// r.Body): the key is known to secrets, the timestamp is within maxSkew (≤ 0:
// DefaultMaxSkew) of now, the HMAC matches, and the nonce is new. The path
// and query are taken from r.RequestURI when set, so a handler mounted
// under http.StripPrefix checks what the client signed. Errors wrap
// ErrUnauthenticated and never say which part of a signature was wrong
// beyond the sentinel.
func (v *Verifier) Verify(r *http.Request, body []byte, secrets func(appKey string) (string, bool), maxSkew time.Duration) error {
	if maxSkew <= 0 {
		maxSkew = DefaultMaxSkew
	}
	newHash, err := hashFor(v.Algorithm)
	if err != nil {
		return err
	}
	appKey, tsText, nonce, sig := r.Header.Get(HeaderAppKey), r.Header.Get(HeaderTimestamp), r.Header.Get(HeaderNonce), r.Header.Get(HeaderSignature)
	if appKey == "" || tsText == "" || nonce == "" || sig == "" {
		return ErrMissingHeader
	}
	if len(nonce) > 128 {
		return fmt.Errorf("%w: nonce longer than 128 characters", ErrUnauthenticated)
	}
	secret, ok := secrets(appKey)
	if !ok {
		return ErrUnknownAppKey
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %s is not unix milliseconds", ErrClockSkew, HeaderTimestamp)
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	nowMS := now().UnixMilli()
	if d := nowMS - ts; d > maxSkew.Milliseconds() || -d > maxSkew.Milliseconds() {
		return ErrClockSkew
	}
	path, rawQuery := r.URL.EscapedPath(), r.URL.RawQuery
	if r.RequestURI != "" {
		if u, err := url.ParseRequestURI(r.RequestURI); err == nil {
			path, rawQuery = u.EscapedPath(), u.RawQuery
		}
	}
	canonical, err := Canonical(r.Method, path, rawQuery, tsText, nonce, body)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadSignature, err)
	}
	got, err := hex.DecodeString(sig)
	if err != nil || !hmac.Equal(got, mac(newHash, []byte(secret), []byte(canonical))) {
		return ErrBadSignature
	}
	// Only a correctly signed request may take a place in the nonce memory,
	// so nobody without the secret can flush it.
	return v.remember(appKey+"\x00"+nonce, ts, nowMS-maxSkew.Milliseconds())
}

func (v *Verifier) remember(key string, ts, expired int64) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.seen == nil {
		v.seen = make(map[string]int64)
		if v.capacity <= 0 {
			v.capacity = 100_000
		}
	}
	// Forget nonces whose timestamps the skew check now refuses.
	for v.head < len(v.order) && v.order[v.head].ts < expired {
		delete(v.seen, v.order[v.head].key)
		v.head++
	}
	if _, dup := v.seen[key]; dup || ts <= v.floor {
		return ErrReplay
	}
	for len(v.order)-v.head >= v.capacity {
		e := v.order[v.head]
		delete(v.seen, e.key)
		v.floor = max(v.floor, e.ts)
		v.head++
	}
	if ts <= v.floor {
		return ErrReplay
	}
	if v.head > len(v.order)/2 && v.head > 1024 {
		v.order = append(v.order[:0], v.order[v.head:]...)
		v.head = 0
	}
	v.order = append(v.order, nonceEntry{key: key, ts: ts})
	v.seen[key] = ts
	return nil
}
