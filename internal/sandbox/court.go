package sandbox

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
)

// Defaults of CourtOptions.
const (
	DefaultCourtTopic      = "court.events"
	DefaultCourtPartitions = 3
)

// CourtEvent is one event of the court (法院) system's feed: a 司法判决 (court
// judgment against an agency) or a 失信被执行人 listing (the agency is a
// dishonest judgment debtor). Field names are the source's own; syncd maps
// them by config. Amounts are strings in yuan, as the court system sends
// them. Empty fields are left out of the message.
type CourtEvent struct {
	EventID   string `json:"event_id"`
	UpdatedAt string `json:"updated_at"` // RFC 3339, +08:00
	Type      string `json:"type"`       // 司法判决 | 失信被执行人
	CaseNo    string `json:"case_no,omitempty"`
	Court     string `json:"court,omitempty"`      // 执行法院 / 审理法院
	CourtCode string `json:"court_code,omitempty"` // the court's 统一社会信用代码
	Party     string `json:"party,omitempty"`      // the agency: 被告 / 被执行人
	PartyCode string `json:"party_code,omitempty"` // its 统一社会信用代码
	LegalRep  string `json:"legal_rep,omitempty"`  // 法定代表人/负责人
	Region    string `json:"region,omitempty"`     // GB/T 2260
	Province  string `json:"province,omitempty"`
	Filed     string `json:"filed,omitempty"` // 立案时间
	Duty      string `json:"duty,omitempty"`  // 生效法律文书确定的义务 / 判决主文
	Amount    string `json:"amount,omitempty"`

	// 司法判决 only.
	Plaintiff    string `json:"plaintiff,omitempty"`
	Cause        string `json:"cause,omitempty"` // 案由
	JudgmentDate string `json:"judgment_date,omitempty"`
	Effective    string `json:"effective,omitempty"` // 已生效 | 未生效

	// 失信被执行人 only.
	BasisDoc     string `json:"basis_doc,omitempty"`    // 执行依据文号
	BasisUnit    string `json:"basis_unit,omitempty"`   // 做出执行依据单位
	Performance  string `json:"performance,omitempty"`  // 被执行人的履行情况
	Unperformed  string `json:"unperformed,omitempty"`  // 未履行部分
	Circumstance string `json:"circumstance,omitempty"` // 失信被执行人行为具体情形
	Published    string `json:"published,omitempty"`    // 发布时间

	Note string `json:"note,omitempty"`
}

// CourtOptions configures NewCourt. The zero value is a healthy court on a
// free loopback port.
type CourtOptions struct {
	// Addr is the loopback host:port the broker listens on; "" means
	// 127.0.0.1 on a free port.
	Addr       string
	Topic      string // default DefaultCourtTopic
	Partitions int    // default DefaultCourtPartitions
	// Poison is the fault switch: with it on, NewCourt publishes one
	// message that is not JSON in the middle of the seed.
	Poison bool
	// Seed seeds the choices of Add and Correct, so a trickle is repeatable.
	Seed int64
}

// Court simulates the court system's event feed: a Kafka-protocol broker
// (kfake, in process) with one topic of JSON events keyed by case number,
// so every event of a case lands on one partition in order. The embedded
// cluster is there for fault injection (Fault, Control, ShufflePartitionLeaders,
// ...). It is safe for concurrent use.
type Court struct {
	*kfake.Cluster
	topic  string
	writer *kafkago.Writer

	mu        sync.Mutex
	rng       *rand.Rand
	published []CourtEvent
	last      time.Time // greatest updated_at published, the floor for the next
	seq       int       // for event ids and case numbers of added events
}

// NewCourt starts the broker, creates the topic and publishes seed in order
// (with the poison message in the middle when opts.Poison is set).
func NewCourt(ctx context.Context, seed []CourtEvent, opts CourtOptions) (*Court, error) {
	if opts.Topic == "" {
		opts.Topic = DefaultCourtTopic
	}
	if opts.Partitions <= 0 {
		opts.Partitions = DefaultCourtPartitions
	}
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	host, _, err := net.SplitHostPort(opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("court: addr %q: %w", opts.Addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("court: addr %q is not a loopback address", opts.Addr)
	}
	// kfake listens on 127.0.0.1 by itself; listening ourselves honours
	// the address asked for, and kfake advertises whatever we return.
	listen := func(network, _ string) (net.Listener, error) { return net.Listen(network, opts.Addr) }
	cl, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.ListenFn(listen),
		kfake.SeedTopics(int32(opts.Partitions), opts.Topic), kfake.DefaultNumPartitions(opts.Partitions))
	if err != nil {
		return nil, fmt.Errorf("court: start broker on %s: %w", opts.Addr, err)
	}
	c := &Court{
		Cluster: cl,
		topic:   opts.Topic,
		writer: &kafkago.Writer{
			Addr:     kafkago.TCP(cl.ListenAddrs()...),
			Topic:    opts.Topic,
			Balancer: &kafkago.Hash{}, // by key: one case, one partition
			// Each Publish is one synchronous round trip, in order.
			BatchTimeout: time.Millisecond,
			RequiredAcks: kafkago.RequireAll,
		},
		rng: rand.New(rand.NewPCG(uint64(opts.Seed), 0x5eed_c0de)),
	}
	half := len(seed) / 2
	if err := c.Publish(ctx, seed[:half]...); err != nil {
		c.Close()
		return nil, err
	}
	if opts.Poison {
		if err := c.PublishPoison(ctx); err != nil {
			c.Close()
			return nil, err
		}
	}
	if err := c.Publish(ctx, seed[half:]...); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// LoadCourtSeed reads a JSON-lines file of CourtEvents, such as
// testdata/sandbox/court.jsonl. Unknown fields are errors, so a typo in the
// seed does not silently vanish.
func LoadCourtSeed(path string) ([]CourtEvent, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load court seed: %w", err)
	}
	defer f.Close()
	var evs []CourtEvent
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for line := 1; sc.Scan(); line++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		var ev CourtEvent
		if err := dec.Decode(&ev); err != nil {
			return nil, fmt.Errorf("load court seed %s line %d: %w", path, line, err)
		}
		evs = append(evs, ev)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("load court seed %s: %w", path, err)
	}
	return evs, nil
}

// Addr returns the bootstrap address (host:port) of the broker.
func (c *Court) Addr() string { return c.ListenAddrs()[0] }

// Topic returns the topic the events are published to.
func (c *Court) Topic() string { return c.topic }

// Publish writes events as given, in order, each keyed by its case number
// (by its event id when it has none), and returns once the broker has them.
func (c *Court) Publish(ctx context.Context, events ...CourtEvent) error {
	if len(events) == 0 {
		return nil
	}
	msgs := make([]kafkago.Message, len(events))
	for i, ev := range events {
		v, err := json.Marshal(ev)
		if err != nil {
			return fmt.Errorf("court: encode %s: %w", ev.EventID, err)
		}
		key := ev.CaseNo
		if key == "" {
			key = ev.EventID
		}
		msgs[i] = kafkago.Message{Key: []byte(key), Value: v}
	}
	if err := c.writer.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("court: publish %d events: %w", len(events), err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.published = append(c.published, events...)
	for _, ev := range events {
		if t, err := time.Parse(time.RFC3339, ev.UpdatedAt); err == nil && t.After(c.last) {
			c.last = t
		}
	}
	return nil
}

// courtPoison is the poison message: an HTML error page where JSON belongs,
// as a misconfigured gateway in front of the court system sends.
const courtPoison = "<html><body><h1>502 Bad Gateway</h1></body></html>"

// PublishPoison writes one message that is not JSON, keyed "poison".
func (c *Court) PublishPoison(ctx context.Context) error {
	if err := c.writer.WriteMessages(ctx, kafkago.Message{Key: []byte("poison"), Value: []byte(courtPoison)}); err != nil {
		return fmt.Errorf("court: publish poison: %w", err)
	}
	return nil
}

// Published returns a copy of every event published so far, in order.
func (c *Court) Published() []CourtEvent {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]CourtEvent(nil), c.published...)
}

// courtErrEmpty is Correct's answer when there is nothing to correct.
var courtErrEmpty = errors.New("court: nothing published to correct")

// Correct publishes a correction of a published 失信被执行人 listing chosen
// by the seeded source (of any event if there is none): the same case
// number, a new event id, updated_at after everything published, and the
// debtor's performance moved on (part paid, or all paid and the listing
// withdrawn). It returns the correction.
func (c *Court) Correct(ctx context.Context) (CourtEvent, error) {
	c.mu.Lock()
	var debtors []int
	for i, ev := range c.published {
		if ev.Type == "失信被执行人" && ev.CaseNo != "" {
			debtors = append(debtors, i)
		}
	}
	if len(c.published) == 0 {
		c.mu.Unlock()
		return CourtEvent{}, courtErrEmpty
	}
	var ev CourtEvent
	if len(debtors) > 0 {
		ev = c.published[debtors[c.rng.IntN(len(debtors))]]
	} else {
		ev = c.published[c.rng.IntN(len(c.published))]
	}
	// The latest event of that case is what gets corrected.
	for _, p := range c.published {
		if p.CaseNo == ev.CaseNo {
			ev = p
		}
	}
	c.seq++
	ev.EventID = fmt.Sprintf("fy-corr-%04d", c.seq)
	ev.UpdatedAt = c.stampLocked()
	amount, err := strconv.ParseFloat(ev.Amount, 64)
	switch {
	case err != nil || ev.Performance == "部分未履行" || c.rng.IntN(2) == 0:
		ev.Performance, ev.Unperformed = "全部履行", "0.00"
		ev.Note = "被执行人已全部履行，失信信息已屏蔽"
	default:
		ev.Performance = "部分未履行"
		ev.Unperformed = strconv.FormatFloat(amount*float64(2+c.rng.IntN(6))/10, 'f', 2, 64)
		ev.Note = "被执行人已部分履行"
	}
	c.mu.Unlock()
	return ev, c.Publish(ctx, ev)
}

// courtAgency is a defendant the trickle reuses.
type courtAgency struct{ name, code, rep string }

// Add publishes a new 失信被执行人 listing against a Panjin agency and
// returns it: a new case number at a district court, a valid 统一社会信用代码,
// updated_at after everything published.
func (c *Court) Add(ctx context.Context) (CourtEvent, error) {
	agencies := [...]courtAgency{
		{"盘锦市住房和城乡建设局", "112111000024011746", "王某某"},
		{"盘锦市交通运输局", "11211100002401254R", "刘某"},
		{"盘锦市水利局", "11211100002401334D", "赵某某"},
		{"双台子区人民政府红旗街道办事处", "11211100002401908Q", "陈某某"},
		{"盘山县教育局", "11211100002402214W", "蒋某"},
	}
	courts := [...]struct{ name, code, prefix string }{
		{"盘锦市双台子区人民法院", "11211102000011025C", "辽1102"},
		{"盘锦市兴隆台区人民法院", "11211103000011033M", "辽1103"},
		{"盘锦市大洼区人民法院", "11211104000011041Y", "辽1104"},
		{"盘山县人民法院", "112111220000112280", "辽1122"},
	}
	c.mu.Lock()
	c.seq++
	a := agencies[c.rng.IntN(len(agencies))]
	ct := courts[c.rng.IntN(len(courts))]
	now := c.stampLocked()
	year := now[:4]
	amount := strconv.FormatFloat(float64(50_000+c.rng.IntN(2_000_000))+float64(c.rng.IntN(100))/100, 'f', 2, 64)
	ev := CourtEvent{
		EventID: fmt.Sprintf("fy-new-%04d", c.seq), UpdatedAt: now, Type: "失信被执行人",
		CaseNo: fmt.Sprintf("（%s）%s执%d号", year, ct.prefix, 5000+c.seq),
		Court:  ct.name, CourtCode: ct.code, Party: a.name, PartyCode: a.code, LegalRep: a.rep,
		Region: "211100", Province: "辽宁",
		BasisDoc: fmt.Sprintf("（%s）%s民初%d号", year, ct.prefix, 800+c.seq), BasisUnit: ct.name,
		Filed:        now[:10],
		Duty:         fmt.Sprintf("%s应向申请执行人盘锦某建筑工程有限公司支付工程款%s元及迟延履行期间的债务利息", a.name, amount),
		Amount:       amount,
		Performance:  "全部未履行",
		Unperformed:  amount,
		Circumstance: "有履行能力而拒不履行生效法律文书确定义务",
		Published:    now[:10],
	}
	c.mu.Unlock()
	return ev, c.Publish(ctx, ev)
}

// stampLocked returns an updated_at after everything published (now, or
// the greatest so far plus a second) and records it. c.mu is held.
func (c *Court) stampLocked() string {
	at := time.Now().Truncate(time.Second)
	if floor := c.last.Add(time.Second); at.Before(floor) {
		at = floor
	}
	c.last = at
	return at.In(beijing).Format(time.RFC3339)
}

// Close stops the producer and the broker.
func (c *Court) Close() {
	_ = c.writer.Close()
	c.Cluster.Close()
}
