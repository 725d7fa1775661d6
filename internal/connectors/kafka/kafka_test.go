package kafka_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/panjin-gov/syncd/internal/connectors"
	"github.com/panjin-gov/syncd/internal/connectors/conformance"
	"github.com/panjin-gov/syncd/internal/connectors/kafka"
)

const partitions = 3

// broker starts an in-process Kafka-protocol broker for the test.
func broker(t testing.TB) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(partitions))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

var seq atomic.Int64

// produce writes the messages to topic; a nil key means none.
func produce(t testing.TB, brokers []string, topic string, msgs []kafkago.Message) {
	t.Helper()
	w := &kafkago.Writer{
		Addr:                   kafkago.TCP(brokers...),
		Topic:                  topic,
		Balancer:               &kafkago.Hash{},
		BatchSize:              1000,
		BatchTimeout:           time.Millisecond,
		AllowAutoTopicCreation: true,
		RequiredAcks:           kafkago.RequireAll,
	}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for len(msgs) > 0 {
		n := min(len(msgs), 5000)
		var err error
		for range 50 { // the topic may still be being created
			if err = w.WriteMessages(ctx, msgs[:n]...); err == nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("produce: %v", err)
		}
		msgs = msgs[n:]
	}
}

// events makes n JSON messages keyed k-…, each a 司法判决 event.
func events(n int) ([]kafkago.Message, []string) {
	msgs := make([]kafkago.Message, n)
	keys := make([]string, n)
	for i := range msgs {
		keys[i] = fmt.Sprintf("k-%08d", seq.Add(1))
		v, _ := json.Marshal(map[string]any{
			"case_no":    keys[i],
			"updated_at": time.Now().UTC().Format(time.RFC3339Nano),
			"facts":      strings.Repeat("事实", 50),
		})
		msgs[i] = kafkago.Message{Key: []byte(keys[i]), Value: v}
	}
	return msgs, keys
}

func open(t testing.TB, cfg kafka.Config) *kafka.Source {
	t.Helper()
	s, err := kafka.New("court", cfg, "")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	brokers, gate := gatedBroker(t)
	var topic, group string
	n := 0
	conformance.Run(t, conformance.Harness{
		Reset: func(t *testing.T) {
			n++
			topic, group = fmt.Sprintf("court-events-%d", n), fmt.Sprintf("syncd-%d", n)
			// Create the topic up front so the group has partitions to assign.
			conn, err := kafkago.Dial("tcp", brokers[0])
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if err := conn.CreateTopics(kafkago.TopicConfig{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1}); err != nil {
				t.Fatal(err)
			}
		},
		Open: func(t *testing.T) connectors.Source {
			return open(t, kafka.Config{Brokers: brokers, Topic: topic, GroupID: group, UpdatedField: "updated_at"})
		},
		Produce: func(t *testing.T, n int) []string {
			msgs, keys := events(n)
			produce(t, brokers, topic, msgs)
			return keys
		},
		Disrupt: func(t *testing.T) func() {
			gate.Cut()
			return gate.Restore
		},
		Backlog: 20000,
	})
}

func fetchAll(t *testing.T, s *kafka.Source, want int) []connectors.Batch {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []connectors.Batch
	got, cur := 0, ""
	for got < want {
		b, err := s.Fetch(ctx, cur, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Records) == 0 && !b.More {
			t.Fatalf("caught up after %d of %d records", got, want)
		}
		if err := s.Commit(ctx, b); err != nil {
			t.Fatal(err)
		}
		got += len(b.Records)
		cur = b.Next
		out = append(out, b)
	}
	return out
}

func TestPoisonMessageBecomesProblem(t *testing.T) {
	brokers := broker(t)
	topic := "court-poison"
	msgs, _ := events(3)
	poison := []kafkago.Message{
		{Key: []byte("p-1"), Value: []byte("not json")},
		{Key: []byte("p-2"), Value: []byte(`["an","array"]`)},
		{Value: []byte(`{"no_key_field":1}`)},
		{Key: []byte("p-4"), Value: []byte(`{"case_no":"p-4","updated_at":"yesterday"}`)},
	}
	after, _ := events(3)
	// One partition, so the poison sits between good messages.
	for i := range poison {
		poison[i].Partition = 0
	}
	all := append(append(msgs, poison...), after...)
	w := &kafkago.Writer{Addr: kafkago.TCP(brokers...), Topic: topic, Balancer: &kafkago.RoundRobin{}, BatchTimeout: time.Millisecond, AllowAutoTopicCreation: true}
	conn, err := kafkago.Dial("tcp", brokers[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.CreateTopics(kafkago.TopicConfig{Topic: topic, NumPartitions: 1, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if err := w.WriteMessages(context.Background(), all...); err != nil {
		t.Fatal(err)
	}
	w.Close()

	s := open(t, kafka.Config{Brokers: brokers, Topic: topic, GroupID: "g", KeyField: "case_no", UpdatedField: "updated_at"})
	defer s.Close(context.Background())
	var problems []string
	good := 0
	for _, b := range fetchAll(t, s, len(all)) {
		for _, r := range b.Records {
			if r.Problem != "" {
				problems = append(problems, r.Key+": "+r.Problem)
				continue
			}
			if r.UpdatedAt.IsZero() || !strings.HasPrefix(r.Key, "k-") {
				t.Errorf("good record %q has updated_at %v", r.Key, r.UpdatedAt)
			}
			good++
		}
	}
	if good != 6 || len(problems) != 4 {
		t.Fatalf("%d good, problems %q", good, problems)
	}
	for i, want := range []string{"p-1: ", "p-2: ", "court-poison/0/5: ", "p-4: "} {
		if !strings.HasPrefix(problems[i], want) {
			t.Errorf("problem %d = %q, want prefix %q", i, problems[i], want)
		}
	}
}

func TestUncommittedBatchRedelivered(t *testing.T) {
	brokers := broker(t)
	topic := "court-redeliver"
	msgs, keys := events(30)
	produce(t, brokers, topic, msgs)
	cfg := kafka.Config{Brokers: brokers, Topic: topic, GroupID: "g"}
	ctx := context.Background()

	s := open(t, cfg)
	b, err := s.Fetch(ctx, "", 10)
	if err != nil || len(b.Records) == 0 {
		t.Fatalf("fetch: %d records, %v", len(b.Records), err)
	}
	// A runner retrying a failed store asks again from the same cursor.
	again, err := s.Fetch(ctx, "", 10)
	if err != nil || again.Next != b.Next || len(again.Records) != len(b.Records) {
		t.Fatalf("retry from the same cursor gave another batch: %v", err)
	}
	var cur map[string]any
	if err := json.Unmarshal([]byte(b.Next), &cur); err != nil || cur["topic"] != topic {
		t.Fatalf("cursor %q: %v", b.Next, err)
	}
	uncommitted := map[string]bool{}
	for _, r := range b.Records {
		uncommitted[r.Key] = true
	}
	s.Close(ctx) // killed before Commit

	s2 := open(t, cfg)
	defer s2.Close(ctx)
	seen := map[string]bool{}
	for _, b := range fetchAll(t, s2, len(keys)) {
		for _, r := range b.Records {
			seen[r.Key] = true
		}
	}
	for k := range uncommitted {
		if !seen[k] {
			t.Fatalf("uncommitted %s not redelivered", k)
		}
	}
	if len(seen) != len(keys) {
		t.Fatalf("%d of %d keys after reopening", len(seen), len(keys))
	}
}

func TestValidate(t *testing.T) {
	ok := kafka.Config{Brokers: []string{"localhost:9092"}, Topic: "t", GroupID: "g"}
	tests := []struct {
		name string
		edit func(*kafka.Config)
		want string // "" means valid
	}{
		{"ok", func(*kafka.Config) {}, ""},
		{"no brokers", func(c *kafka.Config) { c.Brokers = nil }, "brokers: required"},
		{"bad broker", func(c *kafka.Config) { c.Brokers = []string{"localhost"} }, `brokers: "localhost" is not host:port`},
		{"no topic", func(c *kafka.Config) { c.Topic = "" }, "topic: required"},
		{"no group", func(c *kafka.Config) { c.GroupID = "" }, "group_id: required"},
		{"negative wait", func(c *kafka.Config) { c.MaxWait = -time.Second }, "max_wait: must be positive"},
		{"negative session", func(c *kafka.Config) { c.SessionTimeout = -time.Second }, "session_timeout: must be positive"},
		{"tiny session", func(c *kafka.Config) { c.SessionTimeout = 100 * time.Millisecond }, "session_timeout: 100ms is below 1s"},
		{"session 10s", func(c *kafka.Config) { c.SessionTimeout = 10 * time.Second }, ""},
		{"cert without key", func(c *kafka.Config) { c.TLS = &kafka.TLSConfig{CertFile: "c.pem"} }, "tls: cert_file and key_file go together"},
		{"bad mechanism", func(c *kafka.Config) {
			c.SASL = &kafka.SASLConfig{Mechanism: "gssapi", Username: "u", PasswordEnv: "P"}
		}, `sasl.mechanism: "gssapi" is not plain`},
		{"sasl incomplete", func(c *kafka.Config) { c.SASL = &kafka.SASLConfig{Mechanism: "scram-sha-512"} }, "sasl.username: required\nsasl.password_env: required"},
		{"sasl ok", func(c *kafka.Config) {
			c.SASL = &kafka.SASLConfig{Mechanism: "scram-sha-256", Username: "u", PasswordEnv: "P"}
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.edit(&c)
			c.SetDefaults()
			err := c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
	var c kafka.Config
	c.SetDefaults()
	if c.MaxWait != 500*time.Millisecond || c.SessionTimeout != 30*time.Second {
		t.Fatalf("default max_wait %v, session_timeout %v", c.MaxWait, c.SessionTimeout)
	}
}

func BenchmarkFetch(b *testing.B) {
	brokers := broker(b)
	const backlog = 100_000
	msgs, _ := events(backlog)
	produce(b, brokers, "court-bench", msgs)
	ctx := context.Background()
	b.ResetTimer()
	total := 0
	start := time.Now()
	for i := 0; b.Loop(); i++ {
		s := open(b, kafka.Config{Brokers: brokers, Topic: "court-bench", GroupID: fmt.Sprintf("bench-%d", i)})
		got, cur := 0, ""
		for got < backlog {
			bt, err := s.Fetch(ctx, cur, 500)
			if err != nil {
				b.Fatal(err)
			}
			if len(bt.Records) == 0 && !bt.More {
				b.Fatalf("caught up after %d", got)
			}
			if err := s.Commit(ctx, bt); err != nil {
				b.Fatal(err)
			}
			got += len(bt.Records)
			cur = bt.Next
		}
		total += got
		s.Close(ctx)
	}
	b.ReportMetric(float64(total)/time.Since(start).Seconds(), "msgs/s")
}
