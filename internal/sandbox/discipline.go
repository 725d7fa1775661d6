package sandbox

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Paging limits of GET /api/v1/decisions.
const (
	DefaultLimit = 100
	MaxLimit     = 1000 // larger limits are lowered to this, as many real APIs do
)

// beijing is the +08:00 offset the source writes its timestamps in. A fixed
// zone, so the simulator needs no tzdata.
var beijing = time.FixedZone("CST", 8*3600)

// Discipline simulates the discipline-inspection (纪检监察) source system: a
// store of decisions (纪律处分 and 问责处理) served in (updated_at, id) order
// behind GET /api/v1/decisions. Items keep the source's own field names; syncd
// maps them by config. It is safe for concurrent use.
type Discipline struct {
	faults injector
	now    func() time.Time

	mu      sync.RWMutex
	entries []*decision          // sorted by (at, id)
	byID    map[string]*decision // id -> its entry in entries
	last    time.Time            // greatest at, the floor for the next Upsert
	token   string
	seq     int // for ids given to items that come without one
	log     *zap.Logger
}

// decision is one stored item, kept encoded: the API serves it as is.
type decision struct {
	at  time.Time
	id  string
	raw json.RawMessage
}

func (e *decision) less(o *decision) bool {
	if c := e.at.Compare(o.at); c != 0 {
		return c < 0
	}
	return e.id < o.id
}

// NewDiscipline returns a source holding items, as loaded by LoadSeed. Each
// item should carry "id" (string) and "updated_at" (RFC 3339); an item without
// an id gets "auto-N", one without a parsable updated_at is stamped as by
// Upsert, and of two items with one id the later in the slice wins.
func NewDiscipline(items []map[string]any) *Discipline {
	d := &Discipline{
		now:  time.Now,
		byID: make(map[string]*decision, len(items)),
		log:  zap.NewNop(),
	}
	var unstamped []map[string]any
	for _, it := range items {
		it = d.withID(it)
		at, err := parseUpdatedAt(it["updated_at"])
		if err != nil {
			unstamped = append(unstamped, it)
			continue
		}
		e, err := encodeDecision(it, at)
		if err != nil {
			panic(fmt.Sprintf("sandbox: item %v cannot be encoded: %v", it["id"], err))
		}
		if old, ok := d.byID[e.id]; ok {
			*old = *e // replaced below by sorting
			continue
		}
		d.byID[e.id] = e
		d.entries = append(d.entries, e)
	}
	slices.SortFunc(d.entries, func(a, b *decision) int {
		if a.less(b) {
			return -1
		}
		if b.less(a) {
			return 1
		}
		return 0
	})
	if n := len(d.entries); n > 0 {
		d.last = d.entries[n-1].at
	}
	for _, it := range unstamped {
		d.Upsert(it)
	}
	return d
}

// LoadSeed reads a JSON-lines file: one JSON object per line, blank lines
// skipped. Numbers are kept as json.Number so "3000.50" is served unchanged.
func LoadSeed(path string) ([]map[string]any, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load seed: %w", err)
	}
	defer f.Close()
	var items []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for line := 1; sc.Scan(); line++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var it map[string]any
		if err := dec.Decode(&it); err != nil {
			return nil, fmt.Errorf("load seed %s line %d: %w", path, line, err)
		}
		if it == nil {
			return nil, fmt.Errorf("load seed %s line %d: not a JSON object", path, line)
		}
		items = append(items, it)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("load seed %s: %w", path, err)
	}
	return items, nil
}

// RequireToken makes the decisions API answer 401 unless a request carries
// "Authorization: Bearer tok". An empty tok turns authentication off. The
// /admin endpoints never require it: they are the sandbox's, not the source's.
func (d *Discipline) RequireToken(tok string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.token = tok
}

// SetLogger sets where the source logs; the default discards.
func (d *Discipline) SetLogger(l *zap.Logger) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.log = l
}

// SetFaults replaces the faults injected into the decisions API and restarts
// the random source from f.Seed. RejectRate is ignored.
func (d *Discipline) SetFaults(f Faults) { d.faults.set(f) }

// Faults returns the faults currently injected.
func (d *Discipline) Faults() Faults { return d.faults.get() }

// Len returns the number of items held.
func (d *Discipline) Len() int {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return len(d.entries)
}

// Upsert adds item, or replaces the item with the same "id" (a correction). It
// sets updated_at to max(now, greatest updated_at held + 1ms), so the item
// sorts after everything a client has seen. The caller's map is not modified
// or retained. An item without an id gets "auto-N". Values must be JSON
// encodable (as anything decoded from JSON is); otherwise Upsert panics.
func (d *Discipline) Upsert(item map[string]any) {
	if _, err := d.upsert(item); err != nil {
		panic("sandbox: " + err.Error())
	}
}

// upsert is Upsert returning the stored form.
func (d *Discipline) upsert(item map[string]any) (json.RawMessage, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	item = d.withID(item)
	at := d.now().Truncate(time.Millisecond)
	if floor := d.last.Add(time.Millisecond); at.Before(floor) {
		at = floor
	}
	item["updated_at"] = at.In(beijing).Format(time.RFC3339Nano)
	e, err := encodeDecision(item, at)
	if err != nil {
		return nil, fmt.Errorf("item %q cannot be encoded: %w", item["id"], err)
	}
	if old, ok := d.byID[e.id]; ok {
		i := d.index(old)
		d.entries = slices.Delete(d.entries, i, i+1)
	}
	// at is the greatest, so the item goes last.
	d.entries = append(d.entries, e)
	d.byID[e.id] = e
	d.last = at
	return e.raw, nil
}

// withID returns a shallow copy of item with a string "id". Callers hold d.mu
// or own d exclusively.
func (d *Discipline) withID(item map[string]any) map[string]any {
	c := make(map[string]any, len(item)+1)
	for k, v := range item {
		c[k] = v
	}
	if id, ok := c["id"].(string); !ok || id == "" {
		d.seq++
		c["id"] = "auto-" + strconv.Itoa(d.seq)
	}
	return c
}

// index finds e in the sorted entries.
func (d *Discipline) index(e *decision) int {
	i, _ := slices.BinarySearchFunc(d.entries, e, func(a, b *decision) int {
		if a.less(b) {
			return -1
		}
		if b.less(a) {
			return 1
		}
		return 0
	})
	return i
}

func encodeDecision(item map[string]any, at time.Time) (*decision, error) {
	raw, err := json.Marshal(item)
	if err != nil {
		return nil, err
	}
	return &decision{at: at, id: item["id"].(string), raw: raw}, nil
}

func parseUpdatedAt(v any) (time.Time, error) {
	s, ok := v.(string)
	if !ok {
		return time.Time{}, errors.New("updated_at is not a string")
	}
	return time.Parse(time.RFC3339Nano, s)
}

// page returns the encoded response for the items strictly after (since,
// afterID) in (updated_at, id) order, at most limit of them.
func (d *Discipline) page(since time.Time, afterID string, limit int) (body []byte, n int) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	start, _ := slices.BinarySearchFunc(d.entries, struct{}{}, func(e *decision, _ struct{}) int {
		if c := e.at.Compare(since); c != 0 {
			return c
		}
		if e.id > afterID {
			return 1
		}
		return -1
	})
	end := min(start+limit, len(d.entries))
	var b bytes.Buffer
	b.WriteString(`{"items":[`)
	for i, e := range d.entries[start:end] {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(e.raw)
	}
	b.WriteString(`],"has_more":`)
	b.WriteString(strconv.FormatBool(end < len(d.entries)))
	b.WriteString("}")
	return b.Bytes(), end - start
}

// Handler serves the source's API and the sandbox's admin endpoints:
//
//	GET  /api/v1/decisions?updated_since=&after_id=&limit=
//	GET  /admin/faults, POST /admin/faults   Faults as JSON, delay as "200ms"
//	POST /admin/decisions                    one item, stored by Upsert
//	GET  /admin/decisions/count
func (d *Discipline) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/decisions", d.serveDecisions)
	mux.HandleFunc("GET /admin/faults", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, d.Faults())
	})
	mux.HandleFunc("POST /admin/faults", func(w http.ResponseWriter, r *http.Request) {
		f, err := decodeFaults(w, r)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		d.SetFaults(f)
		d.logger().Info("faults set", zap.Float64("fail_rate", f.FailRate), zap.Duration("delay", f.Delay),
			zap.Float64("drop_rate", f.DropRate), zap.Int64("seed", f.Seed))
		writeJSON(w, http.StatusOK, f)
	})
	mux.HandleFunc("POST /admin/decisions", d.serveAdminUpsert)
	mux.HandleFunc("GET /admin/decisions/count", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]int{"count": d.Len()})
	})
	return mux
}

func (d *Discipline) logger() *zap.Logger {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.log
}

func (d *Discipline) serveDecisions(w http.ResponseWriter, r *http.Request) {
	d.mu.RLock()
	token := d.token
	d.mu.RUnlock()
	if !bearerOK(r, token) {
		writeUnauthorized(w)
		return
	}
	q := r.URL.Query()
	var since time.Time
	if s := q.Get("updated_since"); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			msg := "updated_since: want an RFC 3339 time such as 2026-03-05T09:30:00.123+08:00"
			if strings.Contains(s, " ") {
				msg += " (a space where '+' was: URL-encode the offset as %2B)"
			}
			writeError(w, http.StatusBadRequest, msg)
			return
		}
		since = t
	}
	limit := DefaultLimit
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			writeError(w, http.StatusBadRequest, "limit: want a whole number from 1 to "+strconv.Itoa(MaxLimit))
			return
		}
		limit = min(n, MaxLimit)
	}
	f, fail, drop := d.faults.roll()
	if err := sleep(r.Context(), f.Delay); err != nil {
		return // the client went away
	}
	if fail {
		d.logger().Warn("request failed (simulated 500)")
		writeError(w, http.StatusInternalServerError, "simulated failure")
		return
	}
	body, n := d.page(since, q.Get("after_id"), limit)
	if drop {
		d.logger().Warn("dropping connection mid-body (simulated)", zap.Int("items", n))
		writeDropped(w, http.StatusOK, body)
		return
	}
	if n > 0 {
		d.logger().Info("decisions served", zap.Int("items", n), zap.String("updated_since", q.Get("updated_since")))
	}
	writeBody(w, http.StatusOK, body)
}

func (d *Discipline) serveAdminUpsert(w http.ResponseWriter, r *http.Request) {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.UseNumber()
	var item map[string]any
	if err := dec.Decode(&item); err != nil || item == nil {
		writeError(w, http.StatusBadRequest, "want one JSON object")
		return
	}
	if id, ok := item["id"].(string); !ok || id == "" {
		writeError(w, http.StatusBadRequest, `want a non-empty string "id"`)
		return
	}
	raw, err := d.upsert(item)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	d.logger().Info("decision upserted", zap.Any("id", item["id"]))
	writeBody(w, http.StatusOK, raw)
}
