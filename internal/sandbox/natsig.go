package sandbox

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emmansun/gmsm/sm3"
)

// The national platform's signature rule, as its interface document would
// state it, implemented here independently of syncd's signer so a mistake
// in one is not mirrored by the other:
//
//	X-App-Key, X-Timestamp (unix ms), X-Nonce, X-Signature headers;
//	X-Signature = lower-case hex HMAC(secret, METHOD "\n" path "\n"
//	sorted query "\n" timestamp "\n" nonce "\n" hex(SHA-256(body)))
//
// with HMAC-SHA256, or HMAC-SM3 (国密) for platforms that require it.
// A nonce may be used once within the accepted clock skew.

// natDefaultSkew is the accepted difference between the caller's clock and
// the platform's.
const natDefaultSkew = 5 * time.Minute

var errNatAuth = errors.New("unauthenticated")

type natVerifier struct {
	sm3 bool

	mu     sync.Mutex
	nonces map[string]int64 // key+nonce → timestamp ms
}

func (v *natVerifier) verify(r *http.Request, body []byte, secret func(string) (string, bool)) error {
	skew := natDefaultSkew
	key, ts, nonce, sig := r.Header.Get("X-App-Key"), r.Header.Get("X-Timestamp"), r.Header.Get("X-Nonce"), r.Header.Get("X-Signature")
	if key == "" || ts == "" || nonce == "" || sig == "" {
		return fmt.Errorf("%w: missing X-App-Key, X-Timestamp, X-Nonce or X-Signature", errNatAuth)
	}
	s, ok := secret(key)
	if !ok {
		return fmt.Errorf("%w: unknown app key %q", errNatAuth, key)
	}
	ms, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: X-Timestamp is not unix milliseconds", errNatAuth)
	}
	now := time.Now().UnixMilli()
	if d := now - ms; d > skew.Milliseconds() || -d > skew.Milliseconds() {
		return fmt.Errorf("%w: timestamp outside the allowed skew", errNatAuth)
	}
	// The path and query as the client sent them (before any prefix was
	// stripped by a mux).
	u, err := url.ParseRequestURI(r.RequestURI)
	if err != nil {
		u = r.URL
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return fmt.Errorf("%w: bad query", errNatAuth)
	}
	var pairs []string
	for k, vs := range q {
		for _, v := range vs {
			pairs = append(pairs, url.QueryEscape(k)+"="+url.QueryEscape(v))
		}
	}
	sort.Strings(pairs)
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	bodySum := sha256.Sum256(body)
	msg := strings.ToUpper(r.Method) + "\n" + path + "\n" + strings.Join(pairs, "&") + "\n" + ts + "\n" + nonce + "\n" + hex.EncodeToString(bodySum[:])
	newHash := sha256.New
	if v.sm3 {
		newHash = func() hash.Hash { return sm3.New() }
	}
	m := hmac.New(newHash, []byte(s))
	m.Write([]byte(msg))
	want := hex.EncodeToString(m.Sum(nil))
	if !hmac.Equal([]byte(strings.ToLower(sig)), []byte(want)) {
		return fmt.Errorf("%w: signature does not match", errNatAuth)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.nonces == nil {
		v.nonces = map[string]int64{}
	}
	for k, t := range v.nonces { // forget what the skew check refuses anyway
		if now-t > skew.Milliseconds() {
			delete(v.nonces, k)
		}
	}
	id := key + "\x00" + nonce
	if _, seen := v.nonces[id]; seen {
		return fmt.Errorf("%w: nonce already used", errNatAuth)
	}
	v.nonces[id] = ms
	return nil
}
