package main

// End-to-end tests: the real syncd binary, the real ClickHouse server
// (scripts/clickhouse.sh), and the sandbox's source and platform on loopback.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/panjin-gov/syncd/internal/normalize"
	"github.com/panjin-gov/syncd/internal/pii"
	"github.com/panjin-gov/syncd/internal/sandbox"
	"github.com/panjin-gov/syncd/internal/store"
	"github.com/panjin-gov/syncd/internal/store/storetest"
)

var syncdBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "syncd-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	syncdBin = filepath.Join(dir, "syncd")
	out, err := exec.Command("go", "build", "-o", syncdBin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build syncd: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// env is one test's world: a fresh database, a discipline source and a
// provincial platform, and a config pointing syncd at them.
type env struct {
	t          *testing.T
	cfgPath    string
	storeCfg   store.Config
	st         *store.Store
	discipline *sandbox.Discipline
	platform   *sandbox.Platform
	environ    []string
}

const platformToken = "e2e-platform-token"

func newEnv(t *testing.T, items []map[string]any, batchSize int) *env {
	t.Helper()
	return newEnvWith(t, items, batchSize, "")
}

// newEnvWith adds extraSources (YAML, indented as entries under sources:).
func newEnvWith(t *testing.T, items []map[string]any, batchSize int, extraSources string) *env {
	t.Helper()
	e := &env{t: t, discipline: sandbox.NewDiscipline(items), platform: sandbox.NewPlatform(platformToken)}
	src := httptest.NewServer(e.discipline.Handler())
	t.Cleanup(src.Close)
	plat := httptest.NewServer(e.platform.Handler())
	t.Cleanup(plat.Close)

	e.st = storetest.New(t) // a migrated, uniquely named database, dropped at the end
	e.storeCfg = store.Config{Addr: []string{storetest.Addr()}, Database: e.st.Database()}

	cfg := fmt.Sprintf(`log: {format: json, level: info}
clickhouse: {addr: [%q], database: %q}
admin: {listen: ""}
sources:
  discipline:
    type: http
    schedule: "@every 1h"
    batch_size: %d
    retry: {max_attempts: 6, initial: 20ms, max: 200ms}
    http: {url: %q, timeout: 5s, page_size: %d}
    mapping:
      kind_field: record_type
      fields:
        doc_no: case_no
        subject_name: party.name
        subject_type: party.type
        subject_id_number: party.id_no
        subject_uscc: party.credit_code
        violation_type: violation
        facts: facts
        legal_basis: basis
        category: sanction
        decision_date: decision_date
        authority_name: authority
        authority_uscc: authority_code
        region_code: region
        status: status
        fine_amount: fine_yuan
      value_maps:
        subject_type: {公务员: civil_servant, 机关: agency, 参公事业单位: public_institution}
      amount_units: {fine_amount: 元}
%s
targets:
  liaoning:
    type: http
    schedule: "@every 1h"
    batch_size: 50
    retry: {max_attempts: 8, initial: 10ms, max: 50ms}
    http: {url: %q, timeout: 5s, token_env: E2E_PLATFORM_TOKEN}
`, storetest.Addr(), e.st.Database(), batchSize, src.URL+"/api/v1/decisions", batchSize, extraSources, plat.URL+"/api/v1/records")
	e.cfgPath = filepath.Join(t.TempDir(), "syncd.yaml")
	if err := os.WriteFile(e.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	key := func() string {
		b := make([]byte, 32)
		rand.Read(b)
		return base64.StdEncoding.EncodeToString(b)
	}
	e.environ = append(os.Environ(), "SYNCD_PII_HASH_KEY="+key(), "SYNCD_PII_ENC_KEY="+key(), "E2E_PLATFORM_TOKEN="+platformToken)
	return e
}

// syncd runs the binary and returns its combined output and error.
func (e *env) syncd(extraEnv []string, args ...string) (string, error) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, syncdBin, append([]string{"--config", e.cfgPath}, args...)...)
	cmd.Env = append(append([]string{}, e.environ...), extraEnv...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func (e *env) mustSyncd(args ...string) string {
	e.t.Helper()
	out, err := e.syncd(nil, args...)
	if err != nil {
		e.t.Fatalf("syncd %v: %v\n%s", args, err, out)
	}
	return out
}

func (e *env) count(query string) uint64 {
	e.t.Helper()
	return count(e.t, e.st, query)
}

// cleanItems makes n valid discipline decisions, several sharing each
// updated_at so the (updated_at, id) cursor tie-break is exercised.
func cleanItems(n int) []map[string]any {
	base := time.Date(2026, 5, 1, 9, 0, 0, 0, time.FixedZone("CST", 8*3600))
	items := make([]map[string]any, n)
	for i := range items {
		items[i] = map[string]any{
			"id":            fmt.Sprintf("e2e-%05d", i),
			"updated_at":    base.Add(time.Duration(i/3) * time.Second).Format(time.RFC3339Nano),
			"case_no":       fmt.Sprintf("盘纪处〔2026〕%d号", 1000+i),
			"record_type":   "纪律处分",
			"party":         map[string]any{"name": fmt.Sprintf("测试人员%d", i), "type": "公务员"},
			"sanction":      "警告",
			"violation":     "违反工作纪律",
			"facts":         "在工作中不负责任，造成不良影响。",
			"decision_date": "2026-03-05",
			"authority":     "中共盘锦市纪律检查委员会",
			"region":        "211100",
			"status":        "有效",
		}
	}
	return items
}

// A pull killed with SIGKILL between storing a batch and saving its cursor,
// then restarted, ends with exactly N records stored and N accepted by the
// platform, none twice.
func TestKillBetweenStoreAndCursorLosesAndDuplicatesNothing(t *testing.T) {
	const n, batch = 1000, 100
	e := newEnv(t, cleanItems(n), batch)

	out, err := e.syncd([]string{"SYNCD_TEST_KILL_AFTER_STORE=3"}, "pull", "discipline")
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("pull was not killed: %v\n%s", err, out)
	}
	if got := e.count("SELECT uniqExact(record_id) FROM {db}.records"); got != 3*batch {
		t.Fatalf("after kill: %d records stored, want %d (three batches)", got, 3*batch)
	}
	cur, ok, err := e.st.Cursor(context.Background(), "source:discipline")
	if err != nil || !ok || !strings.Contains(cur, "e2e-00199") {
		t.Fatalf("cursor after kill = %q (ok=%v, %v); want the end of batch 2", cur, ok, err)
	}

	out = e.mustSyncd("run", "--once")
	if got := e.count("SELECT count() FROM {db}.records FINAL"); got != n {
		t.Fatalf("records visible = %d, want %d\n%s", got, n, out)
	}
	if got := e.count("SELECT uniqExact(record_id, version) FROM {db}.record_log"); got != n {
		// Batch 3 was pulled twice; its second copy must have been recognised
		// as a duplicate, not written as a new version. (record_log keeps
		// every version; records may already have merged them away.)
		t.Fatalf("record versions written = %d, want %d (a re-pull wrote new versions)", got, n)
	}
	if got := len(e.platform.Holdings()); got != n {
		t.Fatalf("platform holds %d, want %d", got, n)
	}
	ps := e.platform.Stats()
	if ps.Accepted != n || ps.Duplicates != 0 || ps.Rejected != 0 {
		t.Fatalf("platform stats %+v, want %d accepted once each", ps, n)
	}
	if got := e.count("SELECT count() FROM {db}.push_ledger WHERE outcome = 'accepted'"); got != n {
		t.Fatalf("ledger accepted = %d, want %d", got, n)
	}
	// A second run finds nothing new anywhere.
	e.mustSyncd("run", "--once")
	if ps2 := e.platform.Stats(); ps2.Received != ps.Received {
		t.Fatalf("second run re-sent %d records", ps2.Received-ps.Received)
	}
}

// The sandbox seed, with its dirty records, flows through: malformed records
// become rejects with reasons and the run goes on; every stored record
// reaches the platform.
func TestSeedFlowsDirtyRecordsAreRejectedNotFatal(t *testing.T) {
	items, err := sandbox.LoadSeed("../../testdata/sandbox/discipline.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, items, 25)
	out := e.mustSyncd("run", "--once")

	stored := e.count("SELECT uniqExact(record_id) FROM {db}.records")
	rejects := e.count("SELECT uniqExact(source_key) FROM {db}.rejects")
	raws := e.count("SELECT uniqExact(source_key) FROM {db}.raw_records")
	if raws != uint64(len(items)) {
		t.Fatalf("raw payloads kept = %d, want every one of %d", raws, len(items))
	}
	if rejects < 5 || stored < 40 {
		t.Fatalf("stored %d, rejected %d of %d items\n%s", stored, rejects, len(items), out)
	}
	// Each reject names a reason and a field or message.
	if n := e.count("SELECT count() FROM {db}.rejects WHERE reason = '' OR message = ''"); n != 0 {
		t.Fatalf("%d rejects without reason or message", n)
	}
	if n := e.count("SELECT count() FROM {db}.rejects WHERE reason = 'missing_field' AND field = 'doc_no'"); n == 0 {
		t.Fatal("the seed's record without case_no was not rejected as missing_field doc_no")
	}
	// No clear ID number in any reject message.
	if n := e.count("SELECT count() FROM {db}.rejects WHERE match(message, '[0-9]{17}[0-9X]')"); n != 0 {
		t.Fatalf("%d reject messages hold a clear ID number", n)
	}

	e.assertNoClearIDs("raw_records")
	e.assertNoClearIDs("rejects")
	if n := e.count("SELECT count() FROM {db}.raw_records WHERE payload_sealed != ''"); n < 40 {
		t.Fatalf("only %d raw payloads kept a sealed original", n)
	}

	published := e.count("SELECT count() FROM (SELECT argMax(status, version) AS s FROM {db}.records GROUP BY record_id) WHERE s IN ('active', 'corrected')")
	if got := uint64(len(e.platform.Holdings())); got != published {
		t.Fatalf("platform holds %d, store has %d published records", got, published)
	}
	for id, h := range e.platform.Holdings() {
		if zjhm, ok := h.Data["CF_XDR_ZJHM"].(string); ok && len(zjhm) != 18 {
			t.Fatalf("record %s: CF_XDR_ZJHM %q is not the opened ID number", id, zjhm)
		}
	}
	ledger := e.mustSyncd("ledger", "liaoning")
	if !strings.Contains(ledger, fmt.Sprintf("accepted %d", published)) {
		t.Fatalf("ledger output:\n%s", ledger)
	}
}

// A platform failing half the time ends, after retries and runs, with every
// record delivered exactly once; a correction at the source reaches it as
// an update.
func TestFlakyPlatformAndCorrections(t *testing.T) {
	const n = 300
	items := cleanItems(n)
	e := newEnv(t, items, 100)
	e.platform.SetFaults(sandbox.Faults{FailRate: 0.5, Seed: 7})
	e.mustSyncd("pull", "discipline")
	for run := 0; run < 20 && len(e.platform.Holdings()) < n; run++ {
		e.syncd(nil, "push", "liaoning") // transport failures end a run early; that's the point
	}
	if got := len(e.platform.Holdings()); got != n {
		t.Fatalf("after 20 runs the platform holds %d of %d", got, n)
	}
	ps := e.platform.Stats()
	if ps.Failed500 == 0 || ps.Accepted != n || ps.Duplicates != 0 {
		t.Fatalf("platform stats %+v: want failures injected and %d accepted once", ps, n)
	}

	e.platform.SetFaults(sandbox.Faults{})
	corrected := items[42]
	corrected["facts"] = "经复查，更正后的违纪事实。"
	e.discipline.Upsert(corrected)
	revoked := items[7]
	revoked["status"] = "撤销"
	e.discipline.Upsert(revoked)
	e.mustSyncd("run", "--once")

	hold := e.platform.Holdings()
	if len(hold) != n-1 {
		t.Fatalf("after a revocation the platform holds %d, want %d", len(hold), n-1)
	}
	var found bool
	for _, h := range hold {
		if h.Data["CF_WSH"] == corrected["case_no"] {
			found = true
			if h.Op != "update" || h.Data["CF_SY"] != corrected["facts"] {
				t.Fatalf("correction arrived as %s with facts %v", h.Op, h.Data["CF_SY"])
			}
		}
	}
	if !found {
		t.Fatal("corrected record missing at the platform")
	}
	if ps := e.platform.Stats(); ps.Withdrawn != 1 {
		t.Fatalf("withdrawn = %d, want 1", ps.Withdrawn)
	}
}

// A source that answers 500 and drops connections is retried; the pull ends
// with every record.
func TestFlakySourceIsRetried(t *testing.T) {
	const n = 400
	e := newEnv(t, cleanItems(n), 50)
	e.discipline.SetFaults(sandbox.Faults{FailRate: 0.3, DropRate: 0.2, Seed: 3})
	out := e.mustSyncd("pull", "discipline")
	if got := e.count("SELECT uniqExact(record_id) FROM {db}.records"); got != n {
		t.Fatalf("stored %d of %d\n%s", got, n, out)
	}
	if !strings.Contains(out, "retrying") {
		t.Fatalf("no retry logged; faults not exercised?\n%s", out)
	}
}

func TestCheckConfigNamesTheKey(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte(`clickhouse: {addr: ["127.0.0.1:19000"], database: syncd}
sources:
  discipline:
    type: http
    schedule: "every now and then"
    http: {url: "not a url"}
    mapping: {kind: disciplinary_action}
`), 0o600)
	cmd := exec.Command(syncdBin, "check-config", "--config", bad)
	out, err := cmd.CombinedOutput()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 2 {
		t.Fatalf("exit = %v, want 2\n%s", err, out)
	}
	for _, want := range []string{bad + ": sources.discipline.schedule: ", bad + ": sources.discipline.http.url: "} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	good, err := exec.Command(syncdBin, "check-config", "--config", "../../config/syncd.yaml").CombinedOutput()
	if err != nil {
		t.Fatalf("the shipped config/syncd.yaml fails check-config: %v\n%s", err, good)
	}
}

// A platform that rejects part of a batch: the rejections are kept in the
// ledger with the platform's code and are not re-sent until the record
// changes; the accepted part is delivered.
func TestPartialRejectionsAreKeptAndNotRetried(t *testing.T) {
	const n = 200
	items := cleanItems(n)
	e := newEnv(t, items, 100)
	e.platform.SetFaults(sandbox.Faults{RejectRate: 0.5, Seed: 11})
	e.mustSyncd("run", "--once")
	ps := e.platform.Stats()
	if ps.Rejected == 0 || ps.Accepted == 0 || ps.Accepted+ps.Rejected != n {
		t.Fatalf("platform stats %+v: want a mix of %d", ps, n)
	}
	if got := e.count("SELECT count() FROM {db}.push_ledger WHERE outcome = 'rejected' AND code = 'E900' AND message != ''"); got != uint64(ps.Rejected) {
		t.Fatalf("ledger holds %d rejections with the platform's code, platform rejected %d", got, ps.Rejected)
	}
	ledger := e.mustSyncd("ledger", "liaoning")
	if !strings.Contains(ledger, fmt.Sprintf("rejected %d", ps.Rejected)) || !strings.Contains(ledger, "E900") {
		t.Fatalf("ledger output lacks the rejections:\n%s", ledger)
	}
	// Healthy again: a new run re-sends nothing, since nothing changed.
	e.platform.SetFaults(sandbox.Faults{})
	e.mustSyncd("run", "--once")
	if ps2 := e.platform.Stats(); ps2.Received != ps.Received {
		t.Fatalf("rejected versions were re-sent: %d more received", ps2.Received-ps.Received)
	}
	// A correction of a rejected record is a new version and goes again.
	var rejectedCase string
	for _, it := range items {
		found := false
		for _, h := range e.platform.Holdings() {
			if h.Data["CF_WSH"] == it["case_no"] {
				found = true
				break
			}
		}
		if !found {
			rejectedCase = it["case_no"].(string)
			it["facts"] = "更正：补充事实。"
			e.discipline.Upsert(it)
			break
		}
	}
	e.mustSyncd("run", "--once")
	if got := len(e.platform.Holdings()); got != ps.Accepted+1 {
		t.Fatalf("after correcting rejected %s the platform holds %d, want %d", rejectedCase, got, ps.Accepted+1)
	}
}

// `syncd normalize` gives each dirty seed record its verdict and reason
// without a store, and never prints a clear ID number.
func TestNormalizeDryRun(t *testing.T) {
	e := newEnv(t, nil, 10)
	out := e.mustSyncd("normalize", "--source", "discipline", "../../testdata/sandbox/discipline.jsonl")
	for _, want := range []string{
		`{"line":6,"reject":{"field":"doc_no"`,
		`"reason":"bad_date"`, `"reason":"invalid_uscc"`, `"reason":"invalid_id_number"`,
		`"reason":"future_date"`, `"reason":"unknown_kind"`, `"reason":"bad_amount"`,
		`{"records":53,"rejects":7}`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run output lacks %s", want)
		}
	}
	for _, line := range strings.Split(out, "\n") {
		for _, f := range strings.FieldsFunc(line, func(r rune) bool { return r == '"' }) {
			if len(f) == 18 && normalize.ValidIDNumber(f) {
				t.Fatalf("clear ID number %s… in dry-run output", f[:6])
			}
		}
	}
	if n := e.count("SELECT count() FROM {db}.raw_records"); n != 0 {
		t.Fatalf("dry run wrote %d raw records", n)
	}
}

// assertNoClearIDs fails when any stored payload of table holds a valid
// 公民身份号码 in clear, and checks that sealed originals open to payloads
// that do hold one.
func (e *env) assertNoClearIDs(table string) {
	e.t.Helper()
	ctx := context.Background()
	rows, err := e.st.Conn().Query(ctx, "SELECT payload, payload_sealed FROM `"+e.st.Database()+"`."+table)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	p := e.protector()
	idPattern := regexp.MustCompile(`[0-9]{17}[0-9X]`)
	opened := 0
	for rows.Next() {
		var payload, sealed string
		if err := rows.Scan(&payload, &sealed); err != nil {
			e.t.Fatal(err)
		}
		for _, m := range idPattern.FindAllString(payload, -1) {
			if normalize.ValidIDNumber(m) {
				e.t.Fatalf("%s holds a clear ID number %s…: %.120s", table, m[:6], payload)
			}
		}
		if sealed != "" {
			orig, err := p.OpenBytes([]byte(sealed))
			if err != nil {
				e.t.Fatalf("%s: sealed payload does not open: %v", table, err)
			}
			if bytes.Equal(orig, []byte(payload)) {
				e.t.Fatalf("%s: sealed original equals the shown payload", table)
			}
			opened++
		}
	}
	if opened == 0 {
		e.t.Fatalf("%s: no sealed originals", table)
	}
}

func (e *env) protector() *pii.Protector {
	e.t.Helper()
	get := func(name string) []byte {
		for i := len(e.environ) - 1; i >= 0; i-- { // the last setting wins, as in exec
			kv := e.environ[i]
			if v, ok := strings.CutPrefix(kv, name+"="); ok {
				b, _ := base64.StdEncoding.DecodeString(v)
				return b
			}
		}
		e.t.Fatalf("%s not in the test environment", name)
		return nil
	}
	p, err := pii.New(get("SYNCD_PII_HASH_KEY"), get("SYNCD_PII_ENC_KEY"))
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

// A law-enforcement bureau drops a GBK CSV of administrative penalties into
// the exchange folder: rows become records (bad rows rejects), the file moves
// to done/, and an identical re-drop is not ingested again.
func TestFileDropGBKPenalties(t *testing.T) {
	dir := t.TempDir()
	e := newEnvWith(t, nil, 100, fmt.Sprintf(`  penalties:
    type: filedrop
    schedule: "@every 1h"
    filedrop: {dir: %q, pattern: "*.csv", encoding: auto, settle_time: 10ms}
    mapping:
      kind: admin_penalty
      fields:
        doc_no: 处罚决定书文号
        subject_name: 行政相对人名称
        fine_amount: 罚款金额（万元）
        decision_date: 处罚决定日期
        authority_name: 处罚机关
        category: 处罚类别`, dir))
	csv := "处罚决定书文号,行政相对人名称,罚款金额（万元）,处罚决定日期,处罚机关,处罚类别\n" +
		"盘环罚〔2026〕12号,盘锦市双台子区人民政府,3.5,2026年3月5日,盘锦市生态环境局,罚款\n" +
		"盘市监罚［2026］7号,盘锦市大洼区农业农村局,0.2,20260401,盘锦市市场监督管理局,警告\n" +
		"盘环罚〔2026〕13号,盘锦市自然资源局,1,,盘锦市生态环境局,罚款\n"
	gbk, err := simplifiedchinese.GBK.NewEncoder().String(csv)
	if err != nil {
		t.Fatal(err)
	}
	drop := func(name string) {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(gbk), 0o644); err != nil {
			t.Fatal(err)
		}
		old := time.Now().Add(-time.Minute)
		os.Chtimes(p, old, old)
	}
	drop("penalties-20261127.csv")
	out := e.mustSyncd("pull", "penalties")
	if got := e.count("SELECT uniqExact(record_id) FROM {db}.records WHERE kind = 'admin_penalty'"); got != 2 {
		t.Fatalf("%d penalties stored, want 2\n%s", got, out)
	}
	if got := e.count("SELECT count() FROM {db}.records FINAL WHERE doc_no = '盘市监罚〔2026〕7号' AND toString(fine_amount) = '0.200000' AND subject_name = '盘锦市大洼区农业农村局'"); got != 1 {
		t.Fatal("GBK row not decoded and cleaned as expected")
	}
	if got := e.count("SELECT count() FROM {db}.rejects FINAL WHERE source = 'penalties' AND reason = 'missing_field' AND field = 'decision_date'"); got != 1 {
		t.Fatalf("row without a decision date: %d rejects", got)
	}
	done, _ := filepath.Glob(filepath.Join(dir, "done", "*penalties-20261127.csv"))
	if len(done) != 1 {
		t.Fatalf("file not moved to done/: %v", done)
	}
	drop("penalties-again.csv")
	e.mustSyncd("pull", "penalties")
	if got := e.count("SELECT count() FROM {db}.raw_records WHERE source = 'penalties'"); got != 3 {
		t.Fatalf("a re-dropped identical file was ingested again: %d raw rows", got)
	}
}

// Court events on a Kafka topic (the in-process kfake broker): a pull killed
// with SIGKILL between storing a batch and committing its offsets, then
// restarted, stores every message exactly once; a poison message becomes a
// reject and does not stop the partition.
func TestKafkaKillBetweenStoreAndCommit(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(3))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	brokers := cluster.ListenAddrs()
	const n, batch = 600, 100
	e := newEnvWith(t, nil, batch, fmt.Sprintf(`  court:
    type: kafka
    schedule: "@every 1h"
    batch_size: %d
    kafka: {brokers: [%q], topic: court-events, group_id: syncd-e2e, max_wait: 300ms, key_field: event_id, updated_field: updated_at}
    mapping:
      kind_field: type
      fields:
        doc_no: case_no
        subject_name: party
        subject_uscc: party_code
        decision_date: filed
        authority_name: court
        content: duty`, batch, brokers[0]))

	msgs := make([]kafkago.Message, 0, n+1)
	for i := range n {
		b, _ := json.Marshal(map[string]any{
			"event_id": fmt.Sprintf("ev-%05d", i), "updated_at": "2026-06-01T10:00:00+08:00",
			"type": "失信被执行人", "case_no": fmt.Sprintf("（2026）辽1102执%d号", 100+i),
			"party": fmt.Sprintf("盘锦市某机关%d", i), "filed": "2026-05-20",
			"court": "盘锦市双台子区人民法院", "duty": "支付工程款及利息",
		})
		msgs = append(msgs, kafkago.Message{Key: []byte(fmt.Sprintf("ev-%05d", i)), Value: b})
	}
	msgs = append(msgs, kafkago.Message{Key: []byte("poison"), Value: []byte("<xml>not json</xml>")})
	w := &kafkago.Writer{Addr: kafkago.TCP(brokers...), Topic: "court-events", AllowAutoTopicCreation: true,
		BatchTimeout: time.Millisecond, BatchSize: 1000, RequiredAcks: kafkago.RequireAll}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for try := 0; ; try++ {
		if err = w.WriteMessages(ctx, msgs...); err == nil || try == 50 {
			break
		}
		time.Sleep(50 * time.Millisecond) // the topic is being created
	}
	w.Close()
	if err != nil {
		t.Fatal(err)
	}

	out, err := e.syncd([]string{"SYNCD_TEST_KILL_AFTER_STORE=2"}, "pull", "court")
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("pull was not killed: %v\n%s", err, out)
	}
	if got := e.count("SELECT uniqExact(record_id) FROM {db}.records"); got != 2*batch {
		t.Fatalf("after kill: %d records, want %d", got, 2*batch)
	}
	out = e.mustSyncd("pull", "court")
	if got := e.count("SELECT uniqExact(record_id) FROM {db}.records WHERE kind = 'judgment_debtor'"); got != n {
		t.Fatalf("records = %d, want %d\n%s", got, n, out)
	}
	if got := e.count("SELECT uniqExact(record_id, version) FROM {db}.record_log"); got != n {
		t.Fatalf("versions written = %d, want %d: a redelivered batch was stored again", got, n)
	}
	if got := e.count("SELECT count() FROM {db}.rejects FINAL WHERE source = 'court'"); got != 1 {
		t.Fatalf("poison message: %d rejects, want 1", got)
	}
}
