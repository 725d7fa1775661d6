package sandbox

import (
	"context"
	"encoding/json"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/panjin-gov/syncd/internal/connectors"
	"github.com/panjin-gov/syncd/internal/connectors/kafka"
)

const courtSeedPath = "../../testdata/sandbox/court.jsonl"

// What is wrong with court.jsonl on purpose (the rest must be clean):
var (
	courtBadCheck  = map[string]bool{"fy-evt-0105": true, "fy-evt-0114": true} // party_code check character
	courtFullWidth = "fy-evt-0120"                                             // full-width party_code and case_no; folds to valid
	courtNoCaseNo  = "fy-evt-0126"
	courtBadAmount = "fy-evt-0129" // 壹佰贰拾万元
	courtDuplicate = "fy-evt-0117" // published twice, byte for byte
	// correction event id → the event it corrects (same case_no, later updated_at)
	courtCorrections = map[string]string{"fy-evt-0138": "fy-evt-0106", "fy-evt-0139": "fy-evt-0112"}
)

func courtFold(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '！' && r <= '～' {
			return r - 0xFEE0
		}
		return r
	}, s)
}

func TestCourtSeedFile(t *testing.T) {
	evs, err := LoadCourtSeed(courtSeedPath)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 40 {
		t.Fatalf("%d events, want 40", len(evs))
	}
	byID := map[string]CourtEvent{}
	count := map[string]int{}
	for _, ev := range evs {
		count[ev.EventID]++
		if prev, ok := byID[ev.EventID]; ok && prev != ev {
			t.Errorf("%s appears twice with different content", ev.EventID)
		}
		byID[ev.EventID] = ev
	}
	for id, n := range count {
		if n > 1 && id != courtDuplicate {
			t.Errorf("%s appears %d times", id, n)
		}
	}
	if count[courtDuplicate] != 2 {
		t.Errorf("%s appears %d times, want 2", courtDuplicate, count[courtDuplicate])
	}
	for _, ev := range evs {
		id := ev.EventID
		if ev.Type != "司法判决" && ev.Type != "失信被执行人" {
			t.Errorf("%s: type %q", id, ev.Type)
		}
		if _, err := time.Parse(time.RFC3339, ev.UpdatedAt); err != nil || !strings.HasSuffix(ev.UpdatedAt, "+08:00") {
			t.Errorf("%s: updated_at %q", id, ev.UpdatedAt)
		}
		if ev.Region != "211100" || !validUSCC(ev.CourtCode) {
			t.Errorf("%s: region %q, court_code %q", id, ev.Region, ev.CourtCode)
		}
		switch code := ev.PartyCode; {
		case courtBadCheck[id]:
			if validUSCC(code) {
				t.Errorf("%s: party_code %s should fail its check", id, code)
			}
		case id == courtFullWidth:
			if validUSCC(code) || !validUSCC(courtFold(code)) || courtFold(ev.CaseNo) == ev.CaseNo {
				t.Errorf("%s: want full-width party_code and case_no that fold to valid ones", id)
			}
		default:
			if !validUSCC(code) {
				t.Errorf("%s: party_code %s invalid", id, code)
			}
		}
		if (ev.CaseNo == "") != (id == courtNoCaseNo) {
			t.Errorf("%s: case_no %q", id, ev.CaseNo)
		}
		if _, err := strconv.ParseFloat(ev.Amount, 64); (err != nil) != (id == courtBadAmount) {
			t.Errorf("%s: amount %q", id, ev.Amount)
		}
		if ev.Type == "失信被执行人" && (ev.Circumstance == "" || ev.Performance == "" || ev.BasisDoc == "") {
			t.Errorf("%s: 失信被执行人 without circumstance, performance or basis", id)
		}
	}
	for corr, orig := range courtCorrections {
		c, o := byID[corr], byID[orig]
		ct, _ := time.Parse(time.RFC3339, c.UpdatedAt)
		ot, _ := time.Parse(time.RFC3339, o.UpdatedAt)
		if c.CaseNo == "" || c.CaseNo != o.CaseNo || !ct.After(ot) || c.Performance == o.Performance {
			t.Errorf("%s does not correct %s", corr, orig)
		}
	}
}

// courtSource opens the syncd Kafka connector on the court's topic.
func courtSource(t *testing.T, c *Court, group string) *kafka.Source {
	t.Helper()
	src, err := kafka.New("court", kafka.Config{Brokers: []string{c.Addr()}, Topic: c.Topic(), GroupID: group,
		MaxWait: 200 * time.Millisecond, KeyField: "event_id", UpdatedField: "updated_at"}, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close(context.Background()) })
	return src
}

// courtDrain reads until the connector has caught up, committing as the
// ingest runner does.
func courtDrain(t *testing.T, src *kafka.Source) []connectors.Batch {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []connectors.Batch
	cur := ""
	for {
		b, err := src.Fetch(ctx, cur, 16)
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Records) == 0 && !b.More {
			return out
		}
		if err := src.Commit(ctx, b); err != nil {
			t.Fatal(err)
		}
		cur = b.Next
		out = append(out, b)
	}
}

func courtStart(t *testing.T, opts CourtOptions) (*Court, []CourtEvent) {
	t.Helper()
	seed, err := LoadCourtSeed(courtSeedPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := NewCourt(ctx, seed, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, seed
}

func TestCourtSeedArrivesThroughKafkaConnector(t *testing.T) {
	c, seed := courtStart(t, CourtOptions{Poison: true})
	if c.Topic() != DefaultCourtTopic {
		t.Fatalf("topic %q", c.Topic())
	}
	seen := map[string]int{}
	var order []CourtEvent // per delivery, to check each case's order
	var problems []string
	for _, b := range courtDrain(t, courtSource(t, c, "syncd")) {
		for _, r := range b.Records {
			if r.Problem != "" {
				problems = append(problems, r.Key)
				continue
			}
			var ev CourtEvent
			if err := json.Unmarshal(r.Payload, &ev); err != nil {
				t.Fatalf("%s: %v", r.Key, err)
			}
			if r.Key != ev.EventID || r.UpdatedAt.IsZero() {
				t.Errorf("record key %q, updated_at %v for event %s", r.Key, r.UpdatedAt, ev.EventID)
			}
			seen[ev.EventID]++
			order = append(order, ev)
		}
	}
	if len(problems) != 1 || problems[0] != "poison" {
		t.Errorf("problems %q, want the one poison message", problems)
	}
	if len(order) != len(seed) {
		t.Errorf("%d events delivered, %d seeded", len(order), len(seed))
	}
	for _, ev := range seed {
		want := 1
		if ev.EventID == courtDuplicate {
			want = 2
		}
		if seen[ev.EventID] != want {
			t.Errorf("%s delivered %d times, want %d", ev.EventID, seen[ev.EventID], want)
		}
	}
	// Keyed by case number: a correction comes after what it corrects.
	pos := map[string]int{}
	for i, ev := range order {
		pos[ev.EventID] = i
	}
	for corr, orig := range courtCorrections {
		if pos[corr] < pos[orig] {
			t.Errorf("correction %s delivered before %s", corr, orig)
		}
	}
}

func TestCourtTrickle(t *testing.T) {
	c, seed := courtStart(t, CourtOptions{Seed: 7})
	src := courtSource(t, c, "syncd")
	courtDrain(t, src)
	ctx := context.Background()
	added, err := c.Add(ctx)
	if err != nil {
		t.Fatal(err)
	}
	corrected, err := c.Correct(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !validUSCC(added.PartyCode) || added.CaseNo == "" || added.Type != "失信被执行人" {
		t.Errorf("added %+v", added)
	}
	var orig *CourtEvent
	for i := range seed {
		if seed[i].CaseNo == corrected.CaseNo {
			orig = &seed[i]
		}
	}
	if orig == nil || corrected.EventID == orig.EventID || corrected.UpdatedAt <= orig.UpdatedAt {
		t.Fatalf("correction %+v of %+v", corrected, orig)
	}
	if ca, _ := time.Parse(time.RFC3339, corrected.UpdatedAt); !ca.After(courtMustTime(t, added.UpdatedAt)) {
		t.Errorf("correction updated_at %s not after the add's %s", corrected.UpdatedAt, added.UpdatedAt)
	}
	got := map[string]bool{}
	for _, b := range courtDrain(t, src) {
		for _, r := range b.Records {
			got[r.Key] = true
		}
	}
	if len(got) != 2 || !got[added.EventID] || !got[corrected.EventID] {
		t.Fatalf("after the trickle got %v, want %s and %s", got, added.EventID, corrected.EventID)
	}
	if n := len(c.Published()); n != len(seed)+2 {
		t.Errorf("Published() has %d events, want %d", n, len(seed)+2)
	}
}

func courtMustTime(t *testing.T, s string) time.Time {
	t.Helper()
	at, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return at
}

func TestCourtListensOnGivenLoopbackAddr(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c, _ := courtStart(t, CourtOptions{Addr: addr, Topic: "court.test", Partitions: 1})
	if c.Addr() != addr || c.Topic() != "court.test" {
		t.Fatalf("Addr %s, Topic %s; want %s, court.test", c.Addr(), c.Topic(), addr)
	}
	if _, err := NewCourt(context.Background(), nil, CourtOptions{Addr: "192.0.2.1:9092"}); err == nil {
		t.Fatal("a non-loopback address was accepted")
	}
}
