package kafka_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/panjin-gov/syncd/internal/connectors/kafka"
)

// The bounded-memory check on a large backlog (DESIGN.md §6: peak RSS ≤ 256
// MiB whatever the backlog). The broker keeps its log in a temporary folder
// (kfake.DataDir), so the backlog sits on disk and in the page cache, not
// in this process's heap: what grows while draining is the connector (and
// the broker's per-fetch buffers).
//
//	go test -count=1 -run TestBacklogMemory -v ./internal/connectors/kafka/           # 100,000 messages
//	go test -count=1 -run '^$' -bench BacklogDrain -benchtime=1x ./internal/connectors/kafka/  # 100k and 1M

// Bounds with generous headroom over the measured figures (see the report
// in the test log): a connector that buffered the backlog would need
// hundreds of MiB for 100k messages and gigabytes for 1M.
const (
	backlogMaxHeapGrowth = 96 << 20
	backlogMaxRSS        = 256 << 20
)

// courtPayload writes a realistic 失信被执行人 / 司法判决 event of about 400
// bytes into buf.
func courtPayload(buf *bytes.Buffer, i int) {
	buf.Reset()
	courts := [...]string{"盘锦市中级人民法院", "盘锦市双台子区人民法院", "盘锦市兴隆台区人民法院", "大洼区人民法院", "盘山县人民法院"}
	agencies := [...]string{"盘锦市某局", "盘锦市某中心", "双台子区某街道办事处", "兴隆台区某管理处", "盘山县某镇人民政府"}
	kind := "失信被执行人"
	if i%3 == 0 {
		kind = "司法判决"
	}
	fmt.Fprintf(buf, `{"event_id":"ev-%09d","type":%q,"case_no":"（2025）辽11执%d号","court":%q,`+
		`"party":"%s%d","party_code":"11211100MB%07dX","filed":"2025-%02d-%02d","amount":"%d.%02d",`+
		`"duty":"支付工程款%d元及逾期利息","status":"未履行","circumstance":"有履行能力而拒不履行生效法律文书确定义务",`+
		`"updated_at":"2025-%02d-%02dT10:%02d:%02d+08:00"}`,
		i, kind, 1000+i, courts[i%len(courts)], agencies[i%len(agencies)], i%997, i%10000000,
		1+i%12, 1+i%28, 10000+i%900000, i%100, 10000+i%900000,
		1+i%12, 1+i%28, i%60, (i/60)%60)
}

// produceBacklog writes n court payloads to topic, generating them in
// chunks so the producer never holds the backlog either.
func produceBacklog(tb testing.TB, brokers []string, topic string, n int) {
	tb.Helper()
	w := &kafkago.Writer{Addr: kafkago.TCP(brokers...), Topic: topic, Balancer: &kafkago.RoundRobin{},
		BatchSize: 2000, BatchBytes: 4 << 20, BatchTimeout: time.Millisecond, RequiredAcks: kafkago.RequireOne}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	const chunk = 10_000
	msgs := make([]kafkago.Message, 0, chunk)
	var buf bytes.Buffer
	for i := 0; i < n; {
		msgs = msgs[:0]
		for ; i < n && len(msgs) < chunk; i++ {
			courtPayload(&buf, i)
			msgs = append(msgs, kafkago.Message{Key: []byte("ev-" + strconv.Itoa(i)), Value: bytes.Clone(buf.Bytes())})
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			tb.Fatalf("produce: %v", err)
		}
	}
}

// rssKiB reads a field (VmRSS, VmHWM) of /proc/self/status; 0 where there
// is no procfs.
func rssKiB(field string) uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			n, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

// memPeak samples the heap every 20 ms until stop is called.
type memPeak struct {
	heapInuse, heapSys, rss uint64
	stop                    func()
}

func sampleMem() *memPeak {
	p := &memPeak{}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	sample := func() {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		p.heapInuse = max(p.heapInuse, m.HeapInuse)
		p.heapSys = max(p.heapSys, m.HeapSys)
		p.rss = max(p.rss, rssKiB("VmRSS")<<10)
	}
	go func() {
		defer wg.Done()
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				sample()
				return
			case <-t.C:
				sample()
			}
		}
	}()
	p.stop = func() { close(done); wg.Wait() }
	return p
}

type backlogResult struct {
	n                       int
	baseHeap, peakHeap, rss uint64
	rate                    float64
}

// drainBacklog drains topic through a new group with batches of batch
// messages, committing each, as the ingest runner does.
func drainBacklog(tb testing.TB, brokers []string, topic, group string, n, batch int) backlogResult {
	tb.Helper()
	src := open(tb, kafka.Config{Brokers: brokers, Topic: topic, GroupID: group, KeyField: "event_id", UpdatedField: "updated_at"})
	defer src.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	peak := sampleMem()
	start := time.Now()
	got, cur := 0, ""
	for got < n {
		b, err := src.Fetch(ctx, cur, batch)
		if err != nil {
			tb.Fatalf("fetch after %d: %v", got, err)
		}
		if len(b.Records) > batch {
			tb.Fatalf("batch of %d, max %d", len(b.Records), batch)
		}
		if len(b.Records) == 0 && !b.More {
			tb.Fatalf("caught up after %d of %d", got, n)
		}
		for i := range b.Records {
			if b.Records[i].Problem != "" {
				tb.Fatalf("record %s: %s", b.Records[i].Key, b.Records[i].Problem)
			}
		}
		if err := src.Commit(ctx, b); err != nil {
			tb.Fatal(err)
		}
		got += len(b.Records)
		cur = b.Next
	}
	elapsed := time.Since(start)
	peak.stop()
	return backlogResult{n: got, baseHeap: base.HeapInuse, peakHeap: peak.heapInuse, rss: peak.rss,
		rate: float64(got) / elapsed.Seconds()}
}

func (r backlogResult) check(tb testing.TB) {
	tb.Helper()
	growth := uint64(0)
	if r.peakHeap > r.baseHeap {
		growth = r.peakHeap - r.baseHeap
	}
	tb.Logf("drained %d messages at %.0f msgs/s; heap in use %.1f MiB before, peak %.1f MiB (+%.1f MiB); peak RSS %.1f MiB",
		r.n, r.rate, mib(r.baseHeap), mib(r.peakHeap), mib(growth), mib(r.rss))
	if growth > backlogMaxHeapGrowth {
		tb.Errorf("heap grew by %.1f MiB draining %d messages (bound %d MiB): the connector buffers the backlog",
			mib(growth), r.n, backlogMaxHeapGrowth>>20)
	}
	// RSS is the whole test process's (the in-process broker and earlier
	// tests included), and the race detector multiplies it: bound it only
	// without the detector.
	if r.rss > backlogMaxRSS && !raceDetector {
		tb.Errorf("peak RSS %.1f MiB draining %d messages (bound %d MiB)", mib(r.rss), r.n, backlogMaxRSS>>20)
	}
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// backlogBroker starts a broker that keeps its log on disk and fills topic
// with n messages.
func backlogBroker(tb testing.TB, topic string, n int) []string {
	tb.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DefaultNumPartitions(partitions), kfake.DataDir(tb.TempDir()),
		kfake.SeedTopics(partitions, topic))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Close)
	brokers := c.ListenAddrs()
	start := time.Now()
	produceBacklog(tb, brokers, topic, n)
	tb.Logf("produced %d messages in %s", n, time.Since(start).Round(time.Millisecond))
	return brokers
}

// TestBacklogMemory drains 100,000 court messages in batches of 1,000 and
// bounds the heap and RSS. The 1,000,000 case is BenchmarkBacklogDrain.
func TestBacklogMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("produces 100,000 messages")
	}
	const n = 100_000
	brokers := backlogBroker(t, "court-backlog", n)
	drainBacklog(t, brokers, "court-backlog", "syncd", n, 1000).check(t)
}

// BenchmarkBacklogDrain reports msgs/s, peak heap and peak RSS for 100k
// and 1M messages; run it with -benchtime=1x.
func BenchmarkBacklogDrain(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			brokers := backlogBroker(b, "court-backlog", n)
			i := 0
			var last backlogResult
			for b.Loop() {
				i++
				last = drainBacklog(b, brokers, "court-backlog", fmt.Sprintf("bench-%d", i), n, 1000)
			}
			last.check(b)
			b.ReportMetric(last.rate, "msgs/s")
			b.ReportMetric(mib(last.peakHeap), "peak-heap-MiB")
			b.ReportMetric(mib(last.rss), "peak-rss-MiB")
		})
	}
}
