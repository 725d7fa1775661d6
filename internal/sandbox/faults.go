package sandbox

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Faults says how badly a simulator behaves. The zero value is a healthy server.
type Faults struct {
	FailRate float64       // share of requests answered 500 (the platform applies nothing of such a batch)
	Delay    time.Duration // added before answering
	DropRate float64       // share of requests whose connection is closed after half the response body
	Seed     int64         // seed of the random source, so a run of requests is repeatable
	// RejectRate is the share of otherwise-valid records the platform rejects
	// with E900. It is decided by hashing the record's key with Seed, so a retry
	// of the same key gets the same answer. The discipline source ignores it.
	RejectRate float64
}

// faultsJSON is the admin wire form: durations as strings such as "200ms".
type faultsJSON struct {
	FailRate   float64 `json:"fail_rate"`
	Delay      string  `json:"delay"`
	DropRate   float64 `json:"drop_rate"`
	Seed       int64   `json:"seed"`
	RejectRate float64 `json:"reject_rate"`
}

// MarshalJSON writes the admin form, with Delay as a duration string.
func (f Faults) MarshalJSON() ([]byte, error) {
	return json.Marshal(faultsJSON{
		FailRate:   f.FailRate,
		Delay:      f.Delay.String(),
		DropRate:   f.DropRate,
		Seed:       f.Seed,
		RejectRate: f.RejectRate,
	})
}

// UnmarshalJSON reads the admin form. Delay is a duration string ("200ms");
// a bare number is taken as nanoseconds. Missing fields are zero.
func (f *Faults) UnmarshalJSON(b []byte) error {
	var w struct {
		faultsJSON
		Delay json.RawMessage `json:"delay"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return err
	}
	var d time.Duration
	if len(w.Delay) > 0 && string(w.Delay) != "null" {
		var s string
		if err := json.Unmarshal(w.Delay, &s); err == nil {
			if s != "" {
				var perr error
				if d, perr = time.ParseDuration(s); perr != nil {
					return fmt.Errorf("delay: %w", perr)
				}
			}
		} else {
			n, perr := strconv.ParseInt(string(w.Delay), 10, 64)
			if perr != nil {
				return fmt.Errorf("delay: want a duration string such as \"200ms\", got %s", w.Delay)
			}
			d = time.Duration(n)
		}
	}
	*f = Faults{FailRate: w.FailRate, Delay: d, DropRate: w.DropRate, Seed: w.Seed, RejectRate: w.RejectRate}
	return nil
}

// Validate reports rates outside [0, 1] and negative delays.
func (f Faults) Validate() error {
	for _, r := range []struct {
		name string
		v    float64
	}{{"fail_rate", f.FailRate}, {"drop_rate", f.DropRate}, {"reject_rate", f.RejectRate}} {
		if !(r.v >= 0 && r.v <= 1) {
			return fmt.Errorf("%s %v: want a share between 0 and 1", r.name, r.v)
		}
	}
	if f.Delay < 0 {
		return fmt.Errorf("delay %v: must not be negative", f.Delay)
	}
	return nil
}

// injector draws the per-request fault decisions from one seeded source.
type injector struct {
	mu  sync.Mutex
	f   Faults
	rng *rand.Rand
}

func (in *injector) set(f Faults) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.f = f
	in.rng = rand.New(rand.NewPCG(uint64(f.Seed), 0x9e3779b97f4a7c15))
}

func (in *injector) get() Faults {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.f
}

// roll decides one request's fate. Both draws are made every time, so the
// sequence of decisions depends only on the seed and the number of requests.
func (in *injector) roll() (f Faults, fail, drop bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.rng == nil {
		return in.f, false, false
	}
	a, b := in.rng.Float64(), in.rng.Float64()
	return in.f, a < in.f.FailRate, b < in.f.DropRate
}

// sleep waits d or until ctx ends, whichever is first.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// writeJSON answers with v encoded as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"encode response"}`)
	}
	writeBody(w, status, b)
}

func writeBody(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// writeDropped promises the whole body, sends half of it and closes the
// connection, so the client sees an unexpected EOF in the middle of the JSON.
func writeDropped(w http.ResponseWriter, status int, body []byte) {
	half := body[:len(body)/2]
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// Not hijackable (HTTP/2, or a wrapping writer): abort the response
		// after half the body instead, which the client sees the same way.
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(status)
		_, _ = w.Write(half)
		_ = http.NewResponseController(w).Flush()
		panic(http.ErrAbortHandler)
	}
	defer conn.Close()
	fmt.Fprintf(buf, "HTTP/1.1 %d %s\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n",
		status, http.StatusText(status), len(body))
	_, _ = buf.Write(half)
	_ = buf.Flush()
}

// bearerOK reports whether r carries "Authorization: Bearer token". An empty
// token means no authentication is required.
func bearerOK(r *http.Request, token string) bool {
	if token == "" {
		return true
	}
	return subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte("Bearer "+token)) == 1
}

func writeUnauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="sandbox"`)
	writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
}

// decodeFaults reads an admin faults body.
func decodeFaults(w http.ResponseWriter, r *http.Request) (Faults, error) {
	var f Faults
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&f); err != nil {
		return Faults{}, fmt.Errorf("faults: %w", err)
	}
	if err := f.Validate(); err != nil {
		return Faults{}, fmt.Errorf("faults: %w", err)
	}
	return f, nil
}

// mountAdmin adds the admin endpoints every HTTP platform simulator serves:
// GET /admin/holdings, GET /admin/stats, GET and POST /admin/faults.
func mountAdmin(mux *http.ServeMux, holdings, stats func() any, in *injector, logger func() *zap.Logger) {
	mux.HandleFunc("GET /admin/holdings", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, holdings())
	})
	mux.HandleFunc("GET /admin/stats", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, stats())
	})
	mux.HandleFunc("GET /admin/faults", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, in.get())
	})
	mux.HandleFunc("POST /admin/faults", func(w http.ResponseWriter, r *http.Request) {
		f, err := decodeFaults(w, r)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		in.set(f)
		logger().Info("faults set", zap.Float64("fail_rate", f.FailRate), zap.Duration("delay", f.Delay),
			zap.Float64("drop_rate", f.DropRate), zap.Float64("reject_rate", f.RejectRate), zap.Int64("seed", f.Seed))
		writeJSON(w, http.StatusOK, f)
	})
}

// cloneHoldings copies holdings, data included, for a caller holding no lock.
func cloneHoldings(h map[string]Holding) map[string]Holding {
	out := make(map[string]Holding, len(h))
	for k, v := range h {
		v.Data = maps.Clone(v.Data)
		out[k] = v
	}
	return out
}
