// Package kafka reads a Kafka topic of JSON messages (法院 judicial events)
// as a connectors.Source through a consumer group.
//
// The position lives in the consumer group: Fetch hands out messages, Commit
// commits their offsets once the runner has stored the batch. A batch never
// committed is delivered again when a new Source joins the group. The cursor
// Fetch returns (the last offsets per partition) is informational, except
// that a Fetch repeated with the cursor of the last uncommitted batch's
// start gets that batch again, so a runner retrying a failed store loses
// nothing.
//
// A Fetch that gets nothing within max_wait asks the broker whether
// anything is waiting past the group's committed offsets before it reports
// "caught up": after a broker outage or a rebalance the reader is silent
// while it rejoins, and that silence must come back as a (transient) error
// the runner retries, not as the end of the run. A commit sent into a group
// generation that died with the connection is retried until the reader has
// joined the next one (bounded by session_timeout).
//
// It depends on connectors and record only.
package kafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/panjin-gov/syncd/internal/connectors"
	"github.com/panjin-gov/syncd/internal/httpauth"
	"github.com/panjin-gov/syncd/internal/record"
)

// SASL mechanisms.
const (
	MechanismPlain       = "plain"
	MechanismSCRAMSHA256 = "scram-sha-256"
	MechanismSCRAMSHA512 = "scram-sha-512"
)

// joinTimeout bounds how long a Fetch waits for the consumer group to hand
// this Source its partitions before MaxWait starts counting. It is raised
// to the session timeout plus a margin when that is longer: a member that
// died without leaving (kill -9) holds its partitions until it times out.
const joinTimeout = 30 * time.Second

// commitBackoff is the first pause between commit attempts; it doubles up
// to a second.
const commitBackoff = 50 * time.Millisecond

// TLSConfig is the client TLS of a Kafka source: the same keys as an HTTP
// source's (ca_file, cert_file, key_file, server_name, insecure_skip_verify).
type TLSConfig = httpauth.TLS

// SASLConfig is the SASL authentication of a Kafka source.
type SASLConfig struct {
	Mechanism string `mapstructure:"mechanism"` // plain | scram-sha-256 | scram-sha-512
	Username  string `mapstructure:"username"`
	// PasswordEnv names the environment variable holding the password; the
	// password itself never sits in the config file.
	PasswordEnv string `mapstructure:"password_env"`
}

// Config is the Kafka source's part of a source's config.
type Config struct {
	Brokers []string `mapstructure:"brokers"`
	Topic   string   `mapstructure:"topic"`
	GroupID string   `mapstructure:"group_id"`
	// MaxWait is how long a Fetch waits for the next message before
	// returning what it has.
	MaxWait time.Duration `mapstructure:"max_wait"`
	// KeyField is the JSON field used as Raw.Key; empty means the message
	// key, else "topic/partition/offset".
	KeyField string `mapstructure:"key_field"`
	// UpdatedField, if set, is an RFC 3339 field read into Raw.UpdatedAt.
	UpdatedField string `mapstructure:"updated_field"`
	// SessionTimeout is how long the group coordinator waits without a
	// heartbeat before it declares this member dead and hands its
	// partitions to another member (default 30s, kafka-go's and Kafka's
	// default). Heartbeats come from a background goroutine, so a slow
	// ClickHouse insert does not count against it; a network outage or a
	// stalled process does.
	//
	// The trade-off: shorter means a crashed (kill -9) syncd's partitions
	// are released sooner, so the next pull run joins the group sooner (a
	// new member waits up to about this long for the dead one to be
	// evicted); longer means a broker or network blip shorter than the
	// timeout passes without a rebalance, whereas each rebalance redelivers
	// every handed-out but uncommitted batch (harmless duplicates, but work)
	// and makes the in-flight commit wait for the new generation. The
	// broker bounds it (group.min/max.session.timeout.ms, 6s and 30m by
	// default) and rejects a join outside them.
	SessionTimeout time.Duration `mapstructure:"session_timeout"`
	TLS            *TLSConfig    `mapstructure:"tls"`
	SASL           *SASLConfig   `mapstructure:"sasl"`
}

// DefaultSessionTimeout is session_timeout when unset.
const DefaultSessionTimeout = 30 * time.Second

// SetDefaults fills unset fields.
func (c *Config) SetDefaults() {
	if c.MaxWait == 0 {
		c.MaxWait = 500 * time.Millisecond
	}
	if c.SessionTimeout == 0 {
		c.SessionTimeout = DefaultSessionTimeout
	}
}

// Validate checks the config without I/O.
func (c *Config) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("brokers: required"))
	}
	for _, b := range c.Brokers {
		if _, port, err := net.SplitHostPort(b); err != nil || port == "" {
			errs = append(errs, fmt.Errorf("brokers: %q is not host:port", b))
		}
	}
	if c.Topic == "" {
		errs = append(errs, errors.New("topic: required"))
	}
	if c.GroupID == "" {
		errs = append(errs, errors.New("group_id: required"))
	}
	if c.MaxWait < 0 {
		errs = append(errs, errors.New("max_wait: must be positive"))
	}
	if c.SessionTimeout < 0 {
		errs = append(errs, errors.New("session_timeout: must be positive"))
	} else if c.SessionTimeout > 0 && c.SessionTimeout < time.Second {
		// Below a second the heartbeat interval (a third of it) leaves no
		// room for a round trip; brokers refuse it anyway.
		errs = append(errs, fmt.Errorf("session_timeout: %s is below 1s", c.SessionTimeout))
	}
	if t := c.TLS; t != nil {
		if err := t.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if s := c.SASL; s != nil {
		switch s.Mechanism {
		case MechanismPlain, MechanismSCRAMSHA256, MechanismSCRAMSHA512:
		case "":
			errs = append(errs, errors.New("sasl.mechanism: required"))
		default:
			errs = append(errs, fmt.Errorf("sasl.mechanism: %q is not plain, scram-sha-256 or scram-sha-512", s.Mechanism))
		}
		if s.Username == "" {
			errs = append(errs, errors.New("sasl.username: required"))
		}
		if s.PasswordEnv == "" {
			errs = append(errs, errors.New("sasl.password_env: required"))
		}
	}
	return errors.Join(errs...)
}

// Source reads one topic through one consumer group.
type Source struct {
	name   string
	cfg    Config
	reader *kafkago.Reader
	// client asks the brokers directly, apart from the reader's group
	// session, where the partitions end and what the group committed.
	client    *kafkago.Client
	transport *kafkago.Transport
	dialer    *kafkago.Dialer // the reader's: TLS and SASL as configured

	mu     sync.Mutex // guards the fields below; Fetch and Commit may race
	joined bool
	// pending is the last batch handed out and not yet committed, and
	// pendingFrom the cursor it was fetched after.
	pending     *connectors.Batch
	pendingFrom string
	// next is, per partition, the offset after the last message handed out.
	next map[int]int64
}

var (
	_ connectors.Source    = (*Source)(nil)
	_ connectors.Committer = (*Source)(nil)
)

// New makes a source named name. saslPassword is the resolved SASL
// password ("" without SASL). It does not connect: the first Fetch joins
// the group.
func New(name string, cfg Config, saslPassword string) (*Source, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	dialer := &kafkago.Dialer{Timeout: 10 * time.Second, DualStack: true}
	transport := &kafkago.Transport{DialTimeout: 10 * time.Second, ClientID: "syncd"}
	if cfg.TLS != nil {
		tc, err := cfg.TLS.ClientConfig()
		if err != nil {
			return nil, err
		}
		dialer.TLS, transport.TLS = tc, tc
	}
	if cfg.SASL != nil {
		m, err := mechanism(cfg.SASL, saslPassword)
		if err != nil {
			return nil, err
		}
		dialer.SASLMechanism, transport.SASL = m, m
	}
	r := kafkago.NewReader(kafkago.ReaderConfig{
		Brokers:        cfg.Brokers,
		GroupID:        cfg.GroupID,
		Topic:          cfg.Topic,
		Dialer:         dialer,
		MinBytes:       1,
		MaxBytes:       4 << 20,
		CommitInterval: 0, // synchronous: Commit returns once the group has the offsets
		StartOffset:    kafkago.FirstOffset,
		// The broker long-poll; Close waits for the one in flight, so it
		// is kept as short as a Fetch's own wait.
		MaxWait:        cfg.MaxWait,
		SessionTimeout: cfg.SessionTimeout,
		// Kafka's rule of thumb: at most a third of the session timeout,
		// so two heartbeats may be lost before the member is evicted.
		HeartbeatInterval: min(3*time.Second, cfg.SessionTimeout/3),
		// kafka-go waits 5s between failed joins; after an outage that is
		// 5s of a pull run spent idle for every failed attempt. A join is
		// one cheap request, so try every second.
		JoinGroupBackoff: time.Second,
	})
	client := &kafkago.Client{Addr: kafkago.TCP(cfg.Brokers...), Timeout: 10 * time.Second, Transport: transport}
	return &Source{name: name, cfg: cfg, reader: r, client: client, transport: transport, dialer: dialer, next: map[int]int64{}}, nil
}

func mechanism(s *SASLConfig, password string) (sasl.Mechanism, error) {
	switch s.Mechanism {
	case MechanismPlain:
		return plain.Mechanism{Username: s.Username, Password: password}, nil
	case MechanismSCRAMSHA256:
		return scram.Mechanism(scram.SHA256, s.Username, password)
	default:
		return scram.Mechanism(scram.SHA512, s.Username, password)
	}
}

// cursor is the informational position: the last offset handed out per
// partition.
type cursor struct {
	Topic   string           `json:"topic"`
	Offsets map[string]int64 `json:"offsets"`
}

// token is the Batch.Token: the last message of each partition in the
// batch, which is all CommitMessages needs.
type token []kafkago.Message

// Fetch returns up to max messages, waiting at most MaxWait for each next
// one. The first Fetch also waits (up to 30 s) for the group to assign
// partitions. Messages that are not JSON objects come back as Raws with
// Problem set, so a poison message never blocks its partition.
func (s *Source) Fetch(ctx context.Context, cur string, max int) (connectors.Batch, error) {
	if max <= 0 {
		max = 100
	}
	s.mu.Lock()
	if p := s.pending; p != nil && cur == s.pendingFrom {
		// The runner is retrying after failing to store the batch: the
		// group will not redeliver it to this member, so we do.
		b := *p
		s.mu.Unlock()
		return b, nil
	}
	s.mu.Unlock()

	if err := s.awaitJoin(ctx); err != nil {
		return connectors.Batch{}, err
	}
	var msgs []kafkago.Message
	var fetchErr error
	for len(msgs) < max {
		fc, cancel := context.WithTimeout(ctx, s.cfg.MaxWait)
		m, err := s.reader.FetchMessage(fc)
		cancel()
		if err != nil {
			if !errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
				fetchErr = err
			}
			break
		}
		msgs = append(msgs, m)
	}
	if len(msgs) == 0 {
		switch {
		case fetchErr == nil:
			// Nothing within MaxWait: caught up, or cut off from the
			// broker, or between two group generations, which look the
			// same from here. Only the first may end a pull run.
			if err := s.caughtUp(ctx); err != nil {
				return connectors.Batch{}, err
			}
			return connectors.Batch{Next: cur}, nil
		case errors.Is(fetchErr, io.EOF):
			return connectors.Batch{}, fmt.Errorf("source %s: reader closed: %w", s.name, connectors.ErrPermanent)
		default:
			return connectors.Batch{}, fmt.Errorf("source %s: fetch from %s: %w", s.name, s.cfg.Topic, fetchErr)
		}
	}
	// Messages already taken from the reader are returned even if the
	// fetch then failed: the reader will not hand them out again.
	b := s.batch(msgs, max)
	s.mu.Lock()
	s.pending, s.pendingFrom = &b, cur
	s.mu.Unlock()
	return b, nil
}

// awaitJoin waits until the reader has joined the group once, so MaxWait
// is not spent on the join.
func (s *Source) awaitJoin(ctx context.Context) error {
	s.mu.Lock()
	joined := s.joined
	s.mu.Unlock()
	if joined {
		return nil
	}
	if err := s.probe(ctx); err != nil {
		return err
	}
	wait := max(joinTimeout, s.cfg.SessionTimeout+10*time.Second)
	deadline := time.Now().Add(wait)
	for {
		// FetchMessage starts the reader; a short fetch that returns a
		// message cannot be put back, so only poll the stats here.
		if s.reader.Stats().Rebalances > 0 {
			s.mu.Lock()
			s.joined = true
			s.mu.Unlock()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("source %s: group %s not joined after %s", s.name, s.cfg.GroupID, wait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// probe connects to a broker as the reader does, TLS handshake and SASL
// authentication included, before waiting for the group: the reader itself
// retries a refused login silently, so a wrong password or an untrusted
// certificate would otherwise surface as "group not joined" after the join
// timeout. Those are permanent errors; an unreachable broker is not.
func (s *Source) probe(ctx context.Context) error {
	var last error
	for _, b := range s.cfg.Brokers {
		conn, err := s.dialer.DialContext(ctx, "tcp", b)
		if err == nil {
			conn.Close()
			return nil
		}
		var unknownCA x509.UnknownAuthorityError
		var hostErr x509.HostnameError
		var certErr *tls.CertificateVerificationError
		if errors.Is(err, kafkago.SASLAuthenticationFailed) || errors.Is(err, kafkago.UnsupportedSASLMechanism) ||
			errors.As(err, &unknownCA) || errors.As(err, &hostErr) || errors.As(err, &certErr) {
			return fmt.Errorf("source %s: broker %s refused the connection's credentials: %w: %w", s.name, b, err, connectors.ErrPermanent)
		}
		last = err
	}
	return fmt.Errorf("source %s: no broker reachable: %w", s.name, last)
}

func (s *Source) batch(msgs []kafkago.Message, max int) connectors.Batch {
	now := time.Now()
	b := connectors.Batch{Records: make([]record.Raw, 0, len(msgs))}
	last := map[int]int{} // partition → index in msgs
	for i, m := range msgs {
		b.Records = append(b.Records, s.raw(m, now))
		last[m.Partition] = i
	}
	s.mu.Lock()
	for p, i := range last {
		s.next[p] = msgs[i].Offset + 1
	}
	s.mu.Unlock()
	c := cursor{Topic: s.cfg.Topic, Offsets: make(map[string]int64, len(last))}
	tok := make(token, 0, len(last))
	for p, i := range last {
		m := msgs[i]
		c.Offsets[strconv.Itoa(p)] = m.Offset
		tok = append(tok, m)
		if m.HighWaterMark > m.Offset+1 {
			b.More = true
		}
	}
	slices.SortFunc(tok, func(a, b kafkago.Message) int { return a.Partition - b.Partition })
	if len(msgs) == max {
		b.More = true
	}
	nb, _ := json.Marshal(c)
	b.Next, b.Token = string(nb), tok
	return b
}

func (s *Source) raw(m kafkago.Message, now time.Time) record.Raw {
	r := record.Raw{Source: s.name, Payload: m.Value, Encoding: "utf-8", FetchedAt: now}
	r.Key = string(m.Key)
	if r.Key == "" {
		r.Key = fmt.Sprintf("%s/%d/%d", m.Topic, m.Partition, m.Offset)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(m.Value, &fields); err != nil || fields == nil {
		r.Problem = fmt.Sprintf("message %s/%d/%d is not a JSON object", m.Topic, m.Partition, m.Offset)
		return r
	}
	if f := s.cfg.KeyField; f != "" {
		k, err := keyString(fields[f])
		if err != nil {
			r.Problem = fmt.Sprintf("message %s/%d/%d: %q %v", m.Topic, m.Partition, m.Offset, f, err)
			return r
		}
		r.Key = k
	}
	if f := s.cfg.UpdatedField; f != "" {
		var us string
		if err := json.Unmarshal(fields[f], &us); err != nil {
			r.Problem = fmt.Sprintf("message %s has no string %q", r.Key, f)
			return r
		}
		t, err := time.Parse(time.RFC3339Nano, us)
		if err != nil {
			r.Problem = fmt.Sprintf("message %s: %q %q is not RFC 3339", r.Key, f, us)
			return r
		}
		r.UpdatedAt = t
	}
	return r
}

func keyString(raw json.RawMessage) (string, error) {
	var key any
	if err := json.Unmarshal(raw, &key); err != nil || key == nil {
		return "", errors.New("is missing")
	}
	switch k := key.(type) {
	case string:
		return k, nil
	case float64:
		return strconv.FormatFloat(k, 'f', -1, 64), nil
	default:
		return "", errors.New("is not a string or number")
	}
}

// Commit commits the batch's offsets to the consumer group. The runner
// calls it only after the batch is stored.
func (s *Source) Commit(ctx context.Context, b connectors.Batch) error {
	if b.Token == nil {
		return nil
	}
	tok, ok := b.Token.(token)
	if !ok {
		return fmt.Errorf("source %s: commit of a batch it did not fetch: %w", s.name, connectors.ErrPermanent)
	}
	if err := s.commit(ctx, tok); err != nil {
		return err
	}
	s.mu.Lock()
	if s.pending != nil && s.pending.Next == b.Next {
		s.pending = nil
	}
	s.mu.Unlock()
	return nil
}

// commit commits through the reader's current group generation. A commit
// sent into a generation that has just died (its coordinator connection
// dropped, a rebalance started) fails, and the reader joins a new one on
// its own, so a failed commit is retried, with backoff, until it lands in
// the new generation or the session timeout passes: by then the group has
// certainly either taken this member back or evicted it.
func (s *Source) commit(ctx context.Context, tok token) error {
	deadline := time.Now().Add(s.cfg.SessionTimeout)
	wait := commitBackoff
	for attempt := 1; ; attempt++ {
		cc, cancel := context.WithDeadline(ctx, deadline)
		err := s.reader.CommitMessages(cc, tok...)
		cancel()
		if err == nil {
			return nil
		}
		switch {
		case errors.Is(err, io.ErrClosedPipe):
			return fmt.Errorf("source %s: commit after close: %w", s.name, connectors.ErrPermanent)
		case ctx.Err() != nil:
			return fmt.Errorf("source %s: commit offsets of group %s: %w", s.name, s.cfg.GroupID, ctx.Err())
		case !time.Now().Add(wait).Before(deadline):
			return fmt.Errorf("source %s: commit offsets of group %s (%d attempts in %s): %w",
				s.name, s.cfg.GroupID, attempt, s.cfg.SessionTimeout, err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("source %s: commit offsets of group %s: %w", s.name, s.cfg.GroupID, ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, time.Second)
	}
}

// caughtUp asks the broker whether anything is waiting past both the
// group's committed offsets and what this Source has handed out, and
// returns an error (transient) if so or if the broker cannot be asked.
//
// All partitions count, not only this member's: the runner's lease makes
// this Source the group's only member while a pull runs. A second member
// busy with its own partitions would make this report "waiting" until it
// commits, which costs a retry, never a record.
func (s *Source) caughtUp(ctx context.Context) error {
	md, err := s.client.Metadata(ctx, &kafkago.MetadataRequest{Topics: []string{s.cfg.Topic}})
	if err != nil {
		return fmt.Errorf("source %s: nothing fetched within %s and the broker does not answer: %w", s.name, s.cfg.MaxWait, err)
	}
	var parts []int
	for _, t := range md.Topics {
		if t.Name != s.cfg.Topic {
			continue
		}
		if t.Error != nil {
			return fmt.Errorf("source %s: metadata of %s: %w", s.name, s.cfg.Topic, t.Error)
		}
		for _, p := range t.Partitions {
			parts = append(parts, p.ID)
		}
	}
	if len(parts) == 0 {
		return nil // no topic yet, nothing to read
	}
	ends, err := s.offsets(ctx, parts, kafkago.LastOffsetOf)
	if err != nil {
		return err
	}
	starts, err := s.offsets(ctx, parts, kafkago.FirstOffsetOf)
	if err != nil {
		return err
	}
	of, err := s.client.OffsetFetch(ctx, &kafkago.OffsetFetchRequest{GroupID: s.cfg.GroupID, Topics: map[string][]int{s.cfg.Topic: parts}})
	if err == nil {
		err = of.Error
	}
	if err != nil {
		return fmt.Errorf("source %s: committed offsets of group %s: %w", s.name, s.cfg.GroupID, err)
	}
	committed := map[int]int64{}
	for _, p := range of.Topics[s.cfg.Topic] {
		if p.Error != nil {
			return fmt.Errorf("source %s: committed offset of %s/%d: %w", s.name, s.cfg.Topic, p.Partition, p.Error)
		}
		committed[p.Partition] = p.CommittedOffset
	}
	var waiting int64
	s.mu.Lock()
	for _, p := range parts {
		pos := starts[p]
		if c, ok := committed[p]; ok && c >= 0 {
			pos = max(pos, c)
		}
		if n, ok := s.next[p]; ok {
			pos = max(pos, n)
		}
		waiting += max(0, ends[p]-pos)
	}
	s.mu.Unlock()
	if waiting > 0 {
		return fmt.Errorf("source %s: %d messages of %s waiting for group %s but none fetched within %s: rebalancing or reconnecting",
			s.name, waiting, s.cfg.Topic, s.cfg.GroupID, s.cfg.MaxWait)
	}
	return nil
}

// offsets lists one end of each partition.
func (s *Source) offsets(ctx context.Context, parts []int, end func(int) kafkago.OffsetRequest) (map[int]int64, error) {
	reqs := make([]kafkago.OffsetRequest, len(parts))
	for i, p := range parts {
		reqs[i] = end(p)
	}
	res, err := s.client.ListOffsets(ctx, &kafkago.ListOffsetsRequest{Topics: map[string][]kafkago.OffsetRequest{s.cfg.Topic: reqs}})
	if err != nil {
		return nil, fmt.Errorf("source %s: offsets of %s: %w", s.name, s.cfg.Topic, err)
	}
	out := make(map[int]int64, len(parts))
	for _, p := range res.Topics[s.cfg.Topic] {
		if p.Error != nil {
			return nil, fmt.Errorf("source %s: offsets of %s/%d: %w", s.name, s.cfg.Topic, p.Partition, p.Error)
		}
		out[p.Partition] = max(p.FirstOffset, p.LastOffset)
	}
	return out, nil
}

// Close leaves the group and closes the reader; uncommitted messages go to
// the next member.
func (s *Source) Close(ctx context.Context) error {
	defer s.transport.CloseIdleConnections()
	done := make(chan error, 1)
	go func() { done <- s.reader.Close() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("source %s: close: %w", s.name, err)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
