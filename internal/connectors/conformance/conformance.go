// Package conformance is the test suite every source connector must pass:
// open/close, every record at least once, resume from a saved cursor after a
// kill, carry on after the source system drops, and bounded memory on a
// large backlog. A connector's test calls Run with a Harness over its real
// source system (a PostgreSQL table, a Kafka topic, a folder, an HTTP API).
package conformance

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/panjin-gov/syncd/internal/connectors"
)

// Harness adapts one connector and its source system to the suite.
type Harness struct {
	// Open opens a new connector over the source system, as a restarted
	// process would. Each subtest starts on an empty source system: Reset
	// is called first.
	Open func(t *testing.T) connectors.Source
	// Reset empties the source system (and any consumer-group or claim
	// state) so a subtest starts clean.
	Reset func(t *testing.T)
	// Produce adds n records with new, distinct keys to the source system
	// and returns the keys (as the connector will report them in Raw.Key).
	Produce func(t *testing.T, n int) []string
	// Disrupt, if not nil, makes the source system fail (drop connections,
	// stop answering) and returns a function that restores it.
	Disrupt func(t *testing.T) (restore func())
	// BatchSize is the max passed to Fetch (default 100).
	BatchSize int
	// Backlog is the record count of the bounded-memory test (default
	// 20000); MaxHeapGrowth bounds heap growth while draining it (default
	// 64 MiB).
	Backlog       int
	MaxHeapGrowth uint64
}

// Run runs the whole suite.
func Run(t *testing.T, h Harness) {
	if h.BatchSize == 0 {
		h.BatchSize = 100
	}
	if h.Backlog == 0 {
		h.Backlog = 20000
	}
	if h.MaxHeapGrowth == 0 {
		h.MaxHeapGrowth = 64 << 20
	}
	t.Run("OpenClose", func(t *testing.T) { h.Reset(t); openClose(t, h) })
	t.Run("EveryRecordAtLeastOnce", func(t *testing.T) { h.Reset(t); everyRecord(t, h) })
	t.Run("ResumeAfterKill", func(t *testing.T) { h.Reset(t); resumeAfterKill(t, h) })
	t.Run("IncrementalAfterCatchUp", func(t *testing.T) { h.Reset(t); incremental(t, h) })
	if h.Disrupt != nil {
		t.Run("CarriesOnAfterSourceDrops", func(t *testing.T) { h.Reset(t); reconnect(t, h) })
	}
	t.Run("BoundedMemory", func(t *testing.T) { h.Reset(t); boundedMemory(t, h) })
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// drain reads until the source says it has caught up, committing each batch
// as the ingest runner does, and returns the keys in order and the cursor.
// fetchErrors counts failed fetches, which are retried up to 50 times.
func drain(t *testing.T, h Harness, src connectors.Source, cursor string, onKey func(string)) (string, int) {
	t.Helper()
	c := ctx(t)
	failures := 0
	for {
		b, err := src.Fetch(c, cursor, h.BatchSize)
		if err != nil {
			if errors.Is(err, connectors.ErrPermanent) {
				t.Fatalf("permanent error from a healthy source: %v", err)
			}
			failures++
			if failures > 50 {
				t.Fatalf("50 fetch failures in a row, last: %v", err)
			}
			time.Sleep(20 * time.Millisecond)
			continue
		}
		if len(b.Records) > h.BatchSize {
			t.Fatalf("Fetch returned %d records, max was %d", len(b.Records), h.BatchSize)
		}
		for i := range b.Records {
			onKey(b.Records[i].Key)
		}
		if cm, ok := src.(connectors.Committer); ok {
			if err := cm.Commit(c, b); err != nil {
				t.Fatalf("commit: %v", err)
			}
		}
		if len(b.Records) > 0 || b.Token != nil {
			cursor = b.Next
		}
		if !b.More && len(b.Records) == 0 {
			return cursor, failures
		}
		if !b.More {
			// Caught up per the source; one more fetch must find nothing new.
			continue
		}
	}
}

func closeSrc(t *testing.T, src connectors.Source) {
	t.Helper()
	if err := src.Close(ctx(t)); err != nil {
		t.Fatalf("close: %v", err)
	}
}

func openClose(t *testing.T, h Harness) {
	src := h.Open(t)
	b, err := src.Fetch(ctx(t), "", h.BatchSize)
	if err != nil {
		t.Fatalf("fetch from an empty source: %v", err)
	}
	if len(b.Records) != 0 || b.More {
		t.Fatalf("empty source gave %d records, more=%v", len(b.Records), b.More)
	}
	closeSrc(t, src)
}

func everyRecord(t *testing.T, h Harness) {
	keys := h.Produce(t, 5*h.BatchSize/2+7)
	src := h.Open(t)
	defer closeSrc(t, src)
	seen := map[string]int{}
	drain(t, h, src, "", func(k string) { seen[k]++ })
	for _, k := range keys {
		if seen[k] == 0 {
			t.Fatalf("record %s never delivered (%d of %d seen)", k, len(seen), len(keys))
		}
	}
	if len(seen) != len(keys) {
		t.Fatalf("%d distinct keys delivered, %d produced", len(seen), len(keys))
	}
}

// resumeAfterKill reads two batches, "crashes" after the second (its cursor
// never saved, not committed), reopens from the first batch's cursor and
// checks nothing is missing.
func resumeAfterKill(t *testing.T, h Harness) {
	keys := h.Produce(t, 4*h.BatchSize)
	c := ctx(t)
	src := h.Open(t)
	seen := map[string]int{}
	b1, err := src.Fetch(c, "", h.BatchSize)
	if err != nil || len(b1.Records) == 0 {
		t.Fatalf("first batch: %d records, %v", len(b1.Records), err)
	}
	for _, r := range b1.Records {
		seen[r.Key]++
	}
	if cm, ok := src.(connectors.Committer); ok {
		if err := cm.Commit(c, b1); err != nil {
			t.Fatal(err)
		}
	}
	saved := b1.Next
	b2, err := src.Fetch(c, saved, h.BatchSize)
	if err != nil || len(b2.Records) == 0 {
		t.Fatalf("second batch: %d records, %v", len(b2.Records), err)
	}
	for _, r := range b2.Records {
		seen[r.Key]++
	}
	// Kill: no cursor save, no commit, and the connector is abandoned
	// (closed, as a dead process's connections would be).
	src.Close(c)

	src2 := h.Open(t)
	defer closeSrc(t, src2)
	drain(t, h, src2, saved, func(k string) { seen[k]++ })
	for _, k := range keys {
		if seen[k] == 0 {
			t.Fatalf("record %s lost across the kill", k)
		}
	}
	for _, r := range b1.Records {
		if seen[r.Key] != 1 {
			t.Fatalf("record %s of the committed batch was delivered %d times", r.Key, seen[r.Key])
		}
	}
}

func incremental(t *testing.T, h Harness) {
	first := h.Produce(t, h.BatchSize+3)
	src := h.Open(t)
	defer closeSrc(t, src)
	seen := map[string]int{}
	cur, _ := drain(t, h, src, "", func(k string) { seen[k]++ })
	second := h.Produce(t, 11)
	newSeen := map[string]int{}
	drain(t, h, src, cur, func(k string) { newSeen[k]++ })
	for _, k := range second {
		if newSeen[k] != 1 {
			t.Fatalf("new record %s delivered %d times after catch-up", k, newSeen[k])
		}
	}
	for _, k := range first {
		if newSeen[k] != 0 {
			t.Fatalf("old record %s delivered again after its batch was committed", k)
		}
	}
}

func reconnect(t *testing.T, h Harness) {
	keys := h.Produce(t, 3*h.BatchSize)
	src := h.Open(t)
	defer closeSrc(t, src)
	c := ctx(t)
	seen := map[string]int{}
	b, err := src.Fetch(c, "", h.BatchSize)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range b.Records {
		seen[r.Key]++
	}
	if cm, ok := src.(connectors.Committer); ok {
		cm.Commit(c, b)
	}
	restore := h.Disrupt(t)
	// While the source is down, fetches fail (or return what the connector
	// had already buffered) but never with a permanent error and never lose
	// the position. A batch that does come back is handled as the runner
	// would: stored (counted), its cursor taken, and committed once the
	// source answers again.
	cursor := b.Next
	fc, cancel := context.WithTimeout(c, 2*time.Second)
	mid, err := src.Fetch(fc, cursor, h.BatchSize)
	cancel()
	got := err == nil && (len(mid.Records) > 0 || mid.Token != nil)
	if errors.Is(err, connectors.ErrPermanent) {
		t.Fatalf("a dropped source gave a permanent error: %v", err)
	}
	if got {
		for _, r := range mid.Records {
			seen[r.Key]++
		}
		cursor = mid.Next
	}
	restore()
	if cm, ok := src.(connectors.Committer); ok && got {
		cm.Commit(c, mid) // a failure here means the batch comes again
	}
	cursor, _ = drain(t, h, src, cursor, func(k string) { seen[k]++ })
	for _, k := range keys {
		if seen[k] == 0 {
			t.Fatalf("record %s lost across the source drop", k)
		}
	}
	// Caught up after the restore, the source keeps delivering new data.
	later := h.Produce(t, h.BatchSize)
	drain(t, h, src, cursor, func(k string) { seen[k]++ })
	for _, k := range later {
		if seen[k] == 0 {
			t.Fatalf("record %s, produced after the source came back, never arrived", k)
		}
	}
}

func boundedMemory(t *testing.T, h Harness) {
	h.Produce(t, h.Backlog)
	src := h.Open(t)
	defer closeSrc(t, src)
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak uint64
	n := 0
	batches := 0
	drain(t, h, src, "", func(string) {
		n++
		if n%h.BatchSize == 0 {
			batches++
			if batches%10 == 0 {
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				peak = max(peak, m.HeapInuse)
			}
		}
	})
	if n < h.Backlog {
		t.Fatalf("drained %d of %d", n, h.Backlog)
	}
	if peak > base.HeapInuse && peak-base.HeapInuse > h.MaxHeapGrowth {
		t.Fatalf("heap grew by %d MiB draining %d records (bound %d MiB): the connector buffers the backlog",
			(peak-base.HeapInuse)>>20, h.Backlog, h.MaxHeapGrowth>>20)
	}
	t.Logf("drained %d records; heap in use grew by at most %d KiB", n, (max(peak, base.HeapInuse)-base.HeapInuse)>>10)
}
