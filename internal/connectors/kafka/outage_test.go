package kafka_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/panjin-gov/syncd/internal/connectors"
	"github.com/panjin-gov/syncd/internal/connectors/kafka"
)

func createTopic(t testing.TB, broker, topic string) {
	t.Helper()
	conn, err := kafkago.Dial("tcp", broker)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.CreateTopics(kafkago.TopicConfig{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
}

// runner drives a Source as the ingest runner does: fetch, "store",
// commit, and on any error fetch again from the same cursor after a pause.
// It records every delivery and which keys were handed out in a batch that
// was not committed at once, the only ones allowed to come twice.
type runner struct {
	t        *testing.T
	src      *kafka.Source
	cur      string
	seen     map[string]int // key → batches it came in
	lastNext map[string]string
	// redeliverable holds keys of batches whose commit failed or that were
	// fetched while the broker was out.
	redeliverable map[string]bool
	errors        int
}

func newRunner(t *testing.T, src *kafka.Source) *runner {
	return &runner{t: t, src: src, seen: map[string]int{}, lastNext: map[string]string{}, redeliverable: map[string]bool{}}
}

// step fetches and commits one batch; it reports whether the source said
// it had caught up.
func (r *runner) step(ctx context.Context, out bool) (caughtUp bool) {
	r.t.Helper()
	b, err := r.src.Fetch(ctx, r.cur, 50)
	if err != nil {
		if errors.Is(err, connectors.ErrPermanent) {
			r.t.Fatalf("permanent error: %v", err)
		}
		r.errors++
		time.Sleep(20 * time.Millisecond)
		return false
	}
	for _, rec := range b.Records {
		// The same batch handed out again for a retry is one delivery.
		if r.lastNext[rec.Key] != b.Next {
			r.seen[rec.Key]++
			r.lastNext[rec.Key] = b.Next
		}
		if out {
			r.redeliverable[rec.Key] = true
		}
	}
	if len(b.Records) == 0 {
		return !b.More
	}
	if err := r.src.Commit(ctx, b); err != nil {
		if errors.Is(err, connectors.ErrPermanent) {
			r.t.Fatalf("permanent commit error: %v", err)
		}
		r.errors++
		for _, rec := range b.Records {
			r.redeliverable[rec.Key] = true
		}
		return false // fetch again from the same cursor: the batch comes back
	}
	r.cur = b.Next
	return false
}

// check says every key came, and only redeliverable ones more than once.
func (r *runner) check(keys []string) {
	r.t.Helper()
	dups := 0
	for _, k := range keys {
		switch n := r.seen[k]; {
		case n == 0:
			r.t.Fatalf("%s lost (%d of %d keys seen)", k, len(r.seen), len(keys))
		case n > 1 && !r.redeliverable[k]:
			r.t.Fatalf("%s delivered %d times though its batch was committed at once", k, n)
		case n > 1:
			dups++
		}
	}
	if len(r.seen) != len(keys) {
		r.t.Fatalf("%d distinct keys, %d produced", len(r.seen), len(keys))
	}
	r.t.Logf("%d keys, %d redelivered, %d failed fetches or commits", len(keys), dups, r.errors)
}

// TestCarriesOnThroughOutages cuts the broker off, once for less and once
// for more than the session timeout (so the group evicts the member and it
// must join again): first in the middle of a backlog, then while caught up
// with new messages arriving just after the restore, when a Source that
// took "nothing within max_wait" for "caught up" would end the run early.
// Nothing may be lost and only uncommitted batches may come twice.
func TestCarriesOnThroughOutages(t *testing.T) {
	for _, outage := range []time.Duration{300 * time.Millisecond, 2 * time.Second} {
		t.Run(outage.String(), func(t *testing.T) {
			brokers, gate := gatedBroker(t, kfake.GroupMinSessionTimeout(100*time.Millisecond))
			topic := "court-outage"
			createTopic(t, brokers[0], topic)
			msgs, keys := events(600)
			produce(t, brokers, topic, msgs)

			src := open(t, kafka.Config{Brokers: brokers, Topic: topic, GroupID: "g", MaxWait: 200 * time.Millisecond,
				SessionTimeout: time.Second})
			defer src.Close(context.Background())
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			r := newRunner(t, src)
			untilCaughtUp := func() {
				for !r.step(ctx, false) {
					if ctx.Err() != nil {
						t.Fatal("not caught up within a minute")
					}
				}
			}
			for range 3 {
				r.step(ctx, false)
			}
			gate.Cut()
			for end := time.Now().Add(outage); time.Now().Before(end); {
				r.step(ctx, true)
			}
			gate.Restore()
			untilCaughtUp()

			gate.Cut()
			for end := time.Now().Add(outage); time.Now().Before(end); {
				r.step(ctx, true)
			}
			gate.Restore()
			more, moreKeys := events(100)
			produce(t, brokers, topic, more)
			untilCaughtUp()
			r.check(append(keys, moreKeys...))
		})
	}
}

// TestCarriesOnAfterBrokerRestart stops the broker and starts it again on
// the same port from its data folder, as an operator restarting Kafka
// would: the group's committed offsets survive, its members do not.
func TestCarriesOnAfterBrokerRestart(t *testing.T) {
	dir := t.TempDir()
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.DefaultNumPartitions(partitions), kfake.DataDir(dir),
		kfake.GroupMinSessionTimeout(100 * time.Millisecond)}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	brokers := c.ListenAddrs()
	defer func() { c.Close() }()
	topic := "court-restart"
	createTopic(t, brokers[0], topic)
	msgs, keys := events(600)
	produce(t, brokers, topic, msgs)

	src := open(t, kafka.Config{Brokers: brokers, Topic: topic, GroupID: "g", MaxWait: 200 * time.Millisecond,
		SessionTimeout: time.Second})
	defer src.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := newRunner(t, src)
	for range 3 {
		r.step(ctx, false)
	}
	c.Close()
	for end := time.Now().Add(time.Second); time.Now().Before(end); {
		r.step(ctx, true)
	}
	_, port, _ := net.SplitHostPort(brokers[0])
	p, _ := strconv.Atoi(port)
	if c, err = kfake.NewCluster(append(opts, kfake.Ports(p))...); err != nil {
		t.Fatalf("restart on port %d: %v", p, err)
	}
	for !r.step(ctx, false) {
		if ctx.Err() != nil {
			t.Fatal("not caught up within a minute")
		}
	}
	r.check(keys)
}
