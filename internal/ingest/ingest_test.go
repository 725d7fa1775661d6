package ingest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/panjin-gov/syncd/internal/backoff"
	"github.com/panjin-gov/syncd/internal/connectors"
	"github.com/panjin-gov/syncd/internal/record"
	"github.com/panjin-gov/syncd/internal/store"
)

// slowNormalizer rejects payloads starting with "bad", sleeps a little at
// random so workers finish out of order, and counts concurrent calls.
type slowNormalizer struct {
	hashed            bool // implement HashedNormalizer
	active, maxActive atomic.Int32
	badHash           atomic.Int32
}

func (n *slowNormalizer) Normalize(raw *record.Raw, now time.Time) (record.Record, *record.Reject) {
	a := n.active.Add(1)
	defer n.active.Add(-1)
	for {
		m := n.maxActive.Load()
		if a <= m || n.maxActive.CompareAndSwap(m, a) {
			break
		}
	}
	if rand.IntN(8) == 0 {
		time.Sleep(time.Duration(rand.IntN(200)) * time.Microsecond)
	}
	p := string(raw.Payload)
	if strings.HasPrefix(p, "bad") {
		return record.Record{}, &record.Reject{Source: raw.Source, SourceKey: raw.Key, Reason: "bad_value", RawHash: raw.Hash(), RejectedAt: now}
	}
	return record.Record{RecordID: "id-" + p, SourceKey: raw.Key, RawHash: raw.Hash(), IngestedAt: now}, nil
}

type hashedNormalizer struct{ slowNormalizer }

func (n *hashedNormalizer) NormalizeHashed(raw *record.Raw, rawHash string, now time.Time) (record.Record, *record.Reject) {
	if rawHash != raw.Hash() {
		n.badHash.Add(1)
	}
	return n.Normalize(raw, now)
}

func raws(n int, keyPrefix string) []record.Raw {
	out := make([]record.Raw, n)
	for i := range out {
		p := strconv.Itoa(i)
		switch {
		case i%7 == 3:
			p = "bad" + p
		case i%11 == 5:
			out[i].Problem = "no key"
		}
		out[i].Source, out[i].Key, out[i].Payload = "src", keyPrefix+strconv.Itoa(i), []byte(p)
	}
	return out
}

// The parallel normalizer reassembles records, rejects and raws in fetch
// order whatever the number of workers and the order they finish in.
func TestPrepareKeepsOrder(t *testing.T) {
	for _, workers := range []int{0, 1, 2, 3, 8, 64} {
		for _, n := range []int{0, 1, 63, 64, 65, 1000, 4099} {
			for _, hashed := range []bool{false, true} {
				t.Run(fmt.Sprintf("workers=%d/n=%d/hashed=%v", workers, n, hashed), func(t *testing.T) {
					var norm Normalizer = &slowNormalizer{}
					hn := &hashedNormalizer{}
					if hashed {
						norm = hn
					}
					r := &Runner{Normalizer: norm, Workers: workers}
					in := raws(n, "k")
					p := prepared{fetched: connectors.Batch{Records: in}}
					r.prepare(&p, time.Now())

					var wantRecs, wantRejects []string
					for i, raw := range in {
						switch {
						case raw.Problem != "":
							wantRejects = append(wantRejects, raw.Key+" "+ReasonBadSourceItem)
						case strings.HasPrefix(string(raw.Payload), "bad"):
							wantRejects = append(wantRejects, raw.Key+" bad_value")
						default:
							wantRecs = append(wantRecs, raw.Key)
						}
						if p.raws[i].Key != raw.Key || p.raws[i].Hash != raw.Hash() {
							t.Fatalf("raw %d is %s (hash %s), want %s", i, p.raws[i].Key, p.raws[i].Hash, raw.Key)
						}
					}
					if len(p.raws) != n {
						t.Fatalf("%d raws, want %d", len(p.raws), n)
					}
					var gotRecs, gotRejects []string
					for _, rec := range p.recs {
						gotRecs = append(gotRecs, rec.SourceKey)
					}
					for _, rj := range p.rejects {
						gotRejects = append(gotRejects, rj.SourceKey+" "+rj.Reason)
						if rj.RawHash == "" {
							t.Fatalf("reject %s has no raw hash", rj.SourceKey)
						}
					}
					if strings.Join(gotRecs, ",") != strings.Join(wantRecs, ",") {
						t.Fatalf("records in order %v, want %v", gotRecs, wantRecs)
					}
					if strings.Join(gotRejects, ",") != strings.Join(wantRejects, ",") {
						t.Fatalf("rejects in order %v, want %v", gotRejects, wantRejects)
					}
					if hn.badHash.Load() != 0 {
						t.Fatalf("%d payloads normalized with a wrong hash", hn.badHash.Load())
					}
				})
			}
		}
	}
}

func TestPrepareRunsWorkersInParallel(t *testing.T) {
	norm := &slowNormalizer{}
	r := &Runner{Normalizer: norm, Workers: 4}
	p := prepared{fetched: connectors.Batch{Records: raws(20000, "k")}}
	r.prepare(&p, time.Now())
	if got := norm.maxActive.Load(); got < 2 || got > 4 {
		t.Errorf("at most %d normalize calls at once, want 2..4 with 4 workers", got)
	}
}

// listSource serves batches of a fixed list; the cursor is the offset.
type listSource struct {
	mu      sync.Mutex
	items   []record.Raw
	log     *[]string
	fetched int // batches fetched
}

func (s *listSource) Fetch(_ context.Context, cur string, max int) (connectors.Batch, error) {
	off := 0
	if cur != "" {
		off, _ = strconv.Atoi(cur)
	}
	end := min(off+max, len(s.items))
	s.mu.Lock()
	s.fetched++
	*s.log = append(*s.log, fmt.Sprintf("fetch %d", off))
	s.mu.Unlock()
	return connectors.Batch{Records: s.items[off:end], Next: strconv.Itoa(end), More: end < len(s.items), Token: end}, nil
}

func (s *listSource) Commit(_ context.Context, b connectors.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	*s.log = append(*s.log, fmt.Sprintf("commit %v", b.Token))
	return nil
}

func (s *listSource) Close(context.Context) error { return nil }

// recordingStore keeps what was written, in order, in memory.
type recordingStore struct {
	src    *listSource
	log    *[]string
	keys   []string
	cursor string
	ahead  int // most batches fetched beyond those stored
	stored int
}

func (s *recordingStore) WriteBatch(_ context.Context, b *store.Batch) error {
	s.src.mu.Lock()
	defer s.src.mu.Unlock()
	s.stored++
	s.ahead = max(s.ahead, s.src.fetched-s.stored)
	for _, r := range b.Records {
		s.keys = append(s.keys, r.SourceKey)
	}
	*s.log = append(*s.log, fmt.Sprintf("store %d", len(b.Raws)))
	return nil
}

func (s *recordingStore) LatestVersions(context.Context, []string) (map[string]store.Latest, error) {
	return map[string]store.Latest{}, nil
}

func (s *recordingStore) Cursor(context.Context, string) (string, bool, error) {
	return s.cursor, s.cursor != "", nil
}

func (s *recordingStore) SaveCursor(_ context.Context, _, value string) error {
	s.src.mu.Lock()
	defer s.src.mu.Unlock()
	s.cursor = value
	*s.log = append(*s.log, "cursor "+value)
	return nil
}

// A run stores batches in source order, saves each cursor after its batch
// is stored and commits after the cursor, and fetches at most one batch
// ahead of the one being stored.
func TestRunOrderAndBoundedLookahead(t *testing.T) {
	var log []string
	src := &listSource{items: raws(1000, "k"), log: &log}
	st := &recordingStore{src: src, log: &log}
	r := &Runner{Name: "src", Source: src, Normalizer: &slowNormalizer{}, Store: st, BatchSize: 100,
		Workers: 3, Retry: backoff.Policy{MaxAttempts: 1}, Log: zap.NewNop()}
	stats, err := r.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if stats.Batches != 10 || stats.Pulled != 1000 {
		t.Fatalf("stats %+v", stats)
	}
	var want []string
	for _, raw := range src.items {
		if raw.Problem == "" && !strings.HasPrefix(string(raw.Payload), "bad") {
			want = append(want, raw.Key)
		}
	}
	if strings.Join(st.keys, ",") != strings.Join(want, ",") {
		t.Fatalf("stored keys out of order")
	}
	if st.ahead > 1 {
		t.Errorf("fetched up to %d batches beyond the one being stored, want at most 1", st.ahead)
	}
	// For each batch: store, then cursor, then commit, in that order.
	var seq []string
	for _, l := range log {
		if !strings.HasPrefix(l, "fetch") {
			seq = append(seq, l)
		}
	}
	for i := range 10 {
		end := strconv.Itoa((i + 1) * 100)
		got := strings.Join(seq[3*i:3*i+3], "; ")
		if want := "store 100; cursor " + end + "; commit " + end; got != want {
			t.Fatalf("batch %d: %s, want %s", i+1, got, want)
		}
	}
}
