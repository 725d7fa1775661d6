package sandbox

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"hash/fnv"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// MaxBatchBytes is the largest request body POST /api/v1/records accepts.
const MaxBatchBytes = 10 << 20

// Receipt codes the platform answers with. Real platforms differ; syncd must
// take them from a platform profile, not from here.
const (
	CodeMissingField = "E101" // 缺少必填字段
	CodeBadDate      = "E102" // 日期格式错误
	CodeBadUSCC      = "E103" // 统一社会信用代码校验失败
	CodeBadOp        = "E104" // op 无效
	CodeBadKey       = "E105" // key 与 record_id:version 不符
	CodeBadIDNo      = "E106" // 证件号码长度错误
	CodeStale        = "E201" // 版本过旧
	CodeSimulated    = "E900" // 模拟拒收
)

// Receipt statuses.
const (
	StatusAccepted = "accepted"
	StatusRejected = "rejected"
)

// requiredFields must be non-empty strings in the data of an add or update.
var requiredFields = []string{"CF_WSH", "CF_XDR_MC", "CF_JDRQ", "CF_CFJG", "CF_XDR_LB"}

// Platform simulates a provincial credit platform (信用辽宁-like) reached in
// the GB/T 39443 service style: batches of records POSTed as JSON, answered
// with one receipt per record. It keeps what it accepted, keyed by record_id,
// so tests can compare it with what syncd meant to deliver. It is safe for
// concurrent use.
type Platform struct {
	token  string
	faults injector

	mu       sync.Mutex
	holdings map[string]Holding
	versions map[string]uint64   // highest accepted version per record_id, kept after a withdraw
	accepted map[string]struct{} // every key ever accepted
	stats    Stats
	log      *zap.Logger
}

// Holding is the platform's current copy of one record.
type Holding struct {
	RecordID string         `json:"record_id"`
	Version  uint64         `json:"version"`
	Op       string         `json:"op"` // the op that produced it: add or update
	Data     map[string]any `json:"data"`
}

// Stats counts what the platform has seen. Received = Accepted + Duplicates +
// Rejected: Accepted counts keys applied for the first time (withdraws
// included), Duplicates re-sent keys answered "accepted" again without effect.
// Batches counts answered batches; Failed500 those refused by fault injection,
// whose records are not counted at all.
type Stats struct {
	Batches    int `json:"batches"`
	Received   int `json:"received"`
	Accepted   int `json:"accepted"`
	Rejected   int `json:"rejected"`
	Duplicates int `json:"duplicates"`
	Withdrawn  int `json:"withdrawn"`
	Failed500  int `json:"failed_500"`
}

// NewPlatform returns an empty platform that requires "Authorization: Bearer
// token" on its records API; "" requires nothing.
func NewPlatform(token string) *Platform {
	return &Platform{
		token:    token,
		holdings: make(map[string]Holding),
		versions: make(map[string]uint64),
		accepted: make(map[string]struct{}),
		log:      zap.NewNop(),
	}
}

// SetLogger sets where the platform logs each batch; the default discards.
func (p *Platform) SetLogger(l *zap.Logger) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.log = l
}

// SetFaults replaces the injected faults and restarts the random source from
// f.Seed. FailRate answers 500 for a whole batch without applying any of it.
// DropRate applies the batch and then drops the connection halfway through
// the receipts, the case that makes a client re-send what was accepted.
func (p *Platform) SetFaults(f Faults) { p.faults.set(f) }

// Faults returns the faults currently injected.
func (p *Platform) Faults() Faults { return p.faults.get() }

// Holdings returns a copy of the current holdings by record_id.
func (p *Platform) Holdings() map[string]Holding {
	p.mu.Lock()
	defer p.mu.Unlock()
	return cloneHoldings(p.holdings)
}

// Stats returns the counters so far.
func (p *Platform) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

// Handler serves the platform's API and the sandbox's admin endpoints:
//
//	POST /api/v1/records                     a batch; bearer token required
//	GET  /admin/holdings, GET /admin/stats
//	GET  /admin/faults, POST /admin/faults   Faults as JSON, delay as "200ms"
func (p *Platform) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/records", p.serveRecords)
	mountAdmin(mux, func() any { return p.Holdings() }, func() any { return p.Stats() }, &p.faults, p.logger)
	return mux
}

func (p *Platform) logger() *zap.Logger {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log
}

// Batch is the body of POST /api/v1/records.
type Batch struct {
	BatchID string       `json:"batch_id"`
	Records []PushRecord `json:"records"`
}

// PushRecord is one record of a Batch. Key must be "<record_id>:<version>".
type PushRecord struct {
	Key      string         `json:"key"`
	Op       string         `json:"op"` // add, update or withdraw
	RecordID string         `json:"record_id"`
	Version  uint64         `json:"version"`
	Data     map[string]any `json:"data,omitempty"`
}

// BatchReceipt is the answer to a Batch: one Receipt per record, in order.
type BatchReceipt struct {
	BatchID  string    `json:"batch_id"`
	Receipts []Receipt `json:"receipts"`
}

// Receipt is the platform's verdict on one record.
type Receipt struct {
	Key     string `json:"key"`
	Status  string `json:"status"` // accepted or rejected
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (p *Platform) serveRecords(w http.ResponseWriter, r *http.Request) {
	if !bearerOK(r, p.token) {
		writeUnauthorized(w)
		return
	}
	var b Batch
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBatchBytes))
	dec.UseNumber()
	if err := dec.Decode(&b); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusBadRequest, "body larger than "+strconv.Itoa(MaxBatchBytes)+" bytes")
			return
		}
		writeError(w, http.StatusBadRequest, "body is not a JSON batch: "+err.Error())
		return
	}
	if _, err := dec.Token(); err != io.EOF {
		writeError(w, http.StatusBadRequest, "body is not a JSON batch: data after the batch object")
		return
	}
	if b.BatchID == "" {
		writeError(w, http.StatusBadRequest, "batch_id is required")
		return
	}
	f, fail, drop := p.faults.roll()
	if err := sleep(r.Context(), f.Delay); err != nil {
		return // the client went away; nothing applied
	}
	if fail {
		p.mu.Lock()
		p.stats.Failed500++
		log := p.log
		p.mu.Unlock()
		log.Warn("batch failed (simulated 500)", zap.String("batch_id", b.BatchID), zap.Int("records", len(b.Records)))
		writeError(w, http.StatusInternalServerError, "simulated failure")
		return
	}
	resp := p.apply(b, f)
	body, err := json.Marshal(resp)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "encode receipts")
		return
	}
	if drop {
		p.logger().Warn("dropping connection after applying batch (simulated)", zap.String("batch_id", b.BatchID))
		writeDropped(w, http.StatusOK, body)
		return
	}
	writeBody(w, http.StatusOK, body)
}

// apply checks and applies every record of b under one lock, so a batch is
// atomic with respect to other batches.
func (p *Platform) apply(b Batch, f Faults) BatchReceipt {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := BatchReceipt{BatchID: b.BatchID, Receipts: make([]Receipt, len(b.Records))}
	var accepted, rejected, dups int
	for i, rec := range b.Records {
		rc, o := p.applyOne(rec, f)
		switch o {
		case outcomeRejected:
			rejected++
		case outcomeDuplicate:
			dups++
		default:
			accepted++
		}
		out.Receipts[i] = rc
	}
	p.stats.Batches++
	p.stats.Received += len(b.Records)
	p.stats.Accepted += accepted
	p.stats.Rejected += rejected
	p.stats.Duplicates += dups
	p.log.Info("batch received", zap.String("batch_id", b.BatchID), zap.Int("records", len(b.Records)),
		zap.Int("accepted", accepted+dups), zap.Int("duplicates", dups), zap.Int("rejected", rejected))
	return out
}

type outcome int

const (
	outcomeAccepted outcome = iota
	outcomeDuplicate
	outcomeRejected
)

// applyOne decides one record. Order matters: a malformed record is rejected
// whatever else holds; a key accepted before is accepted again; only then the
// version check and the simulated rejection, so E900 hits otherwise-valid
// records only. Callers hold p.mu.
func (p *Platform) applyOne(rec PushRecord, f Faults) (Receipt, outcome) {
	reject := func(code, msg string) (Receipt, outcome) {
		return Receipt{Key: rec.Key, Status: StatusRejected, Code: code, Message: msg}, outcomeRejected
	}
	accept := func(msg string) (Receipt, outcome) {
		return Receipt{Key: rec.Key, Status: StatusAccepted, Message: msg}, outcomeAccepted
	}
	if rec.RecordID == "" {
		return reject(CodeMissingField, "缺少必填字段 record_id")
	}
	if want := rec.RecordID + ":" + strconv.FormatUint(rec.Version, 10); rec.Key != want {
		return reject(CodeBadKey, "key 应为 record_id:version，即 "+want)
	}
	switch rec.Op {
	case "add", "update":
		if code, msg := checkData(rec.Data); code != "" {
			return reject(code, msg)
		}
	case "withdraw":
	default:
		return reject(CodeBadOp, "op 无效: "+strconv.Quote(rec.Op)+"，应为 add、update 或 withdraw")
	}
	if _, ok := p.accepted[rec.Key]; ok {
		return Receipt{Key: rec.Key, Status: StatusAccepted, Message: "重复提交，已接收"}, outcomeDuplicate
	}
	if held, ok := p.versions[rec.RecordID]; ok && rec.Version < held {
		return reject(CodeStale, "版本过旧: 已有版本 "+strconv.FormatUint(held, 10))
	}
	if simulatedReject(f, rec.Key) {
		return reject(CodeSimulated, "模拟拒收")
	}
	p.accepted[rec.Key] = struct{}{}
	p.versions[rec.RecordID] = rec.Version
	if rec.Op == "withdraw" {
		if _, ok := p.holdings[rec.RecordID]; ok {
			delete(p.holdings, rec.RecordID)
			p.stats.Withdrawn++
			return accept("")
		}
		return accept("记录不存在，无需撤回")
	}
	p.holdings[rec.RecordID] = Holding{RecordID: rec.RecordID, Version: rec.Version, Op: rec.Op, Data: rec.Data}
	return accept("")
}

// checkData returns a rejection code and message for the data of an add or
// update, or "" when it passes.
func checkData(data map[string]any) (code, msg string) {
	var missing []string
	for _, k := range requiredFields {
		if s, ok := data[k].(string); !ok || strings.TrimSpace(s) == "" {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return CodeMissingField, "缺少必填字段 " + strings.Join(missing, ", ")
	}
	if _, err := time.Parse(time.DateOnly, data["CF_JDRQ"].(string)); err != nil {
		return CodeBadDate, "日期格式错误: CF_JDRQ 应为有效日期 YYYY-MM-DD"
	}
	// An empty or null code counts as absent, as exports often send one.
	if v := data["CF_XDR_SHXYM"]; v != nil {
		if s, ok := v.(string); !ok || (s != "" && !validUSCC(s)) {
			return CodeBadUSCC, "统一社会信用代码校验失败: CF_XDR_SHXYM"
		}
	}
	if v := data["CF_XDR_ZJHM"]; v != nil {
		if s, ok := v.(string); !ok || (s != "" && len([]rune(s)) != 18) {
			return CodeBadIDNo, "证件号码长度错误: CF_XDR_ZJHM 应为 18 位"
		}
	}
	return "", ""
}

// simulatedReject decides E900 from the key and seed alone, so a retry of the
// same key meets the same fate while RejectRate and Seed stay unchanged.
func simulatedReject(f Faults, key string) bool {
	if f.RejectRate <= 0 {
		return false
	}
	h := fnv.New64a()
	var seed [8]byte
	binary.LittleEndian.PutUint64(seed[:], uint64(f.Seed))
	h.Write(seed[:])
	h.Write([]byte(key))
	x := h.Sum64()
	// splitmix64 finaliser: FNV's high bits are poorly mixed for short keys.
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return float64(x>>11)/(1<<53) < f.RejectRate
}
