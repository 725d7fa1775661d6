package sandbox

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"
)

// Receipt codes of the national platform (错误代码). They differ from the
// provincial Platform's on purpose: syncd must read both from a platform
// profile. zt is "1" for accepted, "0" for rejected.
const (
	NationalCodeOK           = "0000"
	NationalCodeMissingField = "1001" // 必填项为空
	NationalCodeBadDate      = "1002" // 日期格式错误
	NationalCodeBadUSCC      = "1003" // 统一社会信用代码校验错误
	NationalCodeBadIDNo      = "1004" // 证件号码校验错误
	NationalCodeBadAmount    = "1005" // 金额格式错误
	NationalCodeTooLong      = "1006" // 字段超长
	NationalCodeBadCategory  = "1007" // 行政相对人类别无效
	NationalCodeBadOp        = "2001" // 操作类型无效
	NationalCodeBadKey       = "2002" // 业务标识与记录不符
	NationalCodeStale        = "3001" // 版本过旧
	NationalCodeSimulated    = "9001" // 模拟拒收 (疑问数据)
)

// natDefaultRequired are the CF_ 2021 fields every add or update must carry.
// DOMAIN.md lists the fields but not which are mandatory, so this core is
// an assumption; NationalRequired replaces it.
var natDefaultRequired = []string{"CF_XDR_MC", "CF_XDR_LB", "CF_WSH", "CF_CFLB", "CF_JDRQ", "CF_CFJG", "CF_SJLY"}

// natSubjectCategories are the values of 行政相对人类别 (CF_XDR_LB).
var natSubjectCategories = map[string]bool{"法人及非法人组织": true, "自然人": true, "个体工商户": true}

// National simulates the national credit information sharing platform
// (全国信用信息共享平台) reached in the GB/T 39443 service style: every request
// is app-key signed (HMAC-SHA256, or HMAC-SM3 with NationalSM3) and checked
// by the platform's own rule (natsig.go, written apart from syncd's signer),
// including timestamp skew and nonce replay.
// Batches come as JSON or XML in the envelopes syncd's httpjson target
// writes; records are checked against the CF_ 2021 layout (DOMAIN.md) and
// answered in the national receipt shape, in the request's format:
//
//	{"code":"0000","msg":"成功","data":{"batch_id":"...","results":[
//	    {"ywid":"<key>","zt":"1"|"0","cwdm":"<code>","cwxx":"<message>"}]}}
//
//	<response><code>0000</code><msg>成功</msg><data><batch_id>...</batch_id>
//	  <results><result><ywid>..</ywid><zt>1</zt><cwdm/><cwxx/></result>...</results></data></response>
//
// so syncd reads it with receipt.items_path data.results, key_field ywid,
// status_field zt, accepted_values ["1"], code_field cwdm, message_field
// cwxx. Like Platform it keeps holdings by record_id, answers a re-sent key
// as accepted without effect, and injects faults. Safe for concurrent use.
type National struct {
	keys         map[string]string // app key -> secret
	required     []string
	maxLen       map[string]int
	usccWarnOnly bool
	verifier     *natVerifier
	faults       injector

	mu       sync.Mutex
	holdings map[string]Holding
	versions map[string]uint64
	accepted map[string]struct{}
	stats    NationalStats
	log      *zap.Logger
}

// NationalStats counts what the national platform has seen: Stats as for
// Platform, plus requests refused for their signature and records accepted
// with a warning (a USCC failing its check under NationalUSCCWarnOnly).
type NationalStats struct {
	Stats
	Unauthorized int `json:"unauthorized"`
	Warnings     int `json:"warnings"`
}

// NationalOption configures a National.
type NationalOption func(*National)

// NationalSM3 makes the platform require HMAC-SM3 signatures (国密) instead
// of HMAC-SHA256.
func NationalSM3() NationalOption {
	return func(n *National) { n.verifier = &natVerifier{sm3: true} }
}

// NationalRequired replaces the list of fields every add or update must
// carry as non-empty text.
func NationalRequired(fields ...string) NationalOption {
	return func(n *National) { n.required = append([]string(nil), fields...) }
}

// NationalMaxLen sets maximum lengths, in characters, per field. DOMAIN.md
// gives none, so by default there are none.
func NationalMaxLen(limits map[string]int) NationalOption {
	return func(n *National) { n.maxLen = maps.Clone(limits) }
}

// NationalUSCCWarnOnly accepts a 统一社会信用代码 that fails its check digit
// with a warning in cwxx instead of rejecting it: some early codes are legal
// yet fail the check (DOMAIN.md).
func NationalUSCCWarnOnly() NationalOption {
	return func(n *National) { n.usccWarnOnly = true }
}

// NewNational returns an empty national platform that accepts requests
// signed with appKey and appSecret.
func NewNational(appKey, appSecret string, opts ...NationalOption) *National {
	n := &National{
		keys:     map[string]string{appKey: appSecret},
		required: natDefaultRequired,
		verifier: &natVerifier{},
		holdings: make(map[string]Holding),
		versions: make(map[string]uint64),
		accepted: make(map[string]struct{}),
		log:      zap.NewNop(),
	}
	for _, o := range opts {
		o(n)
	}
	return n
}

// SetLogger sets where the platform logs each batch; the default discards.
func (n *National) SetLogger(l *zap.Logger) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.log = l
}

// SetFaults replaces the injected faults, as for Platform: FailRate answers
// 500 applying nothing, Delay slows every answer (a client timeout shorter
// than it sees timeouts), DropRate applies a batch and cuts the answer
// halfway, RejectRate rejects otherwise-valid records with 9001.
func (n *National) SetFaults(f Faults) { n.faults.set(f) }

// Holdings returns a copy of the current holdings by record_id.
func (n *National) Holdings() map[string]Holding {
	n.mu.Lock()
	defer n.mu.Unlock()
	return cloneHoldings(n.holdings)
}

// Stats returns the counters so far.
func (n *National) Stats() NationalStats {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.stats
}

// Handler serves the platform's API and the sandbox's admin endpoints:
//
//	POST /api/v1/report                      a batch, JSON or XML; app-key signature required
//	GET  /admin/holdings, GET /admin/stats
//	GET  /admin/faults, POST /admin/faults   Faults as JSON, delay as "200ms"
func (n *National) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/report", n.serveReport)
	mountAdmin(mux, func() any { return n.Holdings() }, func() any { return n.Stats() }, &n.faults, n.logger)
	return mux
}

func (n *National) logger() *zap.Logger {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.log
}

// natResult is one record's receipt in the national shape.
type natResult struct {
	XMLName xml.Name `json:"-" xml:"result"`
	YWID    string   `json:"ywid" xml:"ywid"` // 业务标识: the key sent
	ZT      string   `json:"zt" xml:"zt"`     // 状态: 1 accepted, 0 rejected
	CWDM    string   `json:"cwdm" xml:"cwdm"` // 错误代码
	CWXX    string   `json:"cwxx" xml:"cwxx"` // 错误信息
}

type natAnswer struct {
	XMLName xml.Name `json:"-" xml:"response"`
	Code    string   `json:"code" xml:"code"`
	Msg     string   `json:"msg" xml:"msg"`
	Data    *natData `json:"data,omitempty" xml:"data,omitempty"`
}

type natData struct {
	BatchID string      `json:"batch_id" xml:"batch_id"`
	Results []natResult `json:"results" xml:"results>result"`
}

// natXMLBatch is the XML envelope httpjson writes with format: xml.
type natXMLBatch struct {
	XMLName xml.Name       `xml:"batch"`
	ID      string         `xml:"id,attr"`
	Records []natXMLRecord `xml:"record"`
}

type natXMLRecord struct {
	Op       string        `xml:"op,attr"`
	Key      string        `xml:"key,attr"`
	RecordID string        `xml:"record_id,attr"`
	Version  string        `xml:"version,attr"`
	Fields   []natXMLField `xml:",any"`
}

type natXMLField struct {
	XMLName xml.Name
	Value   string `xml:",chardata"`
}

func natIsXML(r *http.Request) bool {
	ct := strings.ToLower(r.Header.Get("Content-Type"))
	return strings.Contains(ct, "/xml") || strings.Contains(ct, "+xml")
}

// natWrite answers in the request's format.
func natWrite(w http.ResponseWriter, asXML bool, status int, a natAnswer) {
	if !asXML {
		writeJSON(w, status, a)
		return
	}
	b, err := natXMLBody(a)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "encode answer")
		return
	}
	natWriteXML(w, status, b)
}

func natXMLBody(a natAnswer) ([]byte, error) {
	b, err := xml.Marshal(a)
	if err != nil {
		return nil, err
	}
	return append([]byte(xml.Header), b...), nil
}

func natWriteXML(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/xml; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func (n *National) serveReport(w http.ResponseWriter, r *http.Request) {
	asXML := natIsXML(r)
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBatchBytes))
	if err != nil {
		natWrite(w, asXML, http.StatusBadRequest, natAnswer{Code: "4000", Msg: "请求体超过 " + strconv.Itoa(MaxBatchBytes) + " 字节或读取失败"})
		return
	}
	secrets := func(k string) (string, bool) { s, ok := n.keys[k]; return s, ok }
	if err := n.verifier.verify(r, body, secrets); err != nil {
		n.mu.Lock()
		n.stats.Unauthorized++
		log := n.log
		n.mu.Unlock()
		log.Warn("request refused", zap.Error(err))
		natWrite(w, asXML, http.StatusUnauthorized, natAnswer{Code: "4010", Msg: "签名校验失败: " + err.Error()})
		return
	}
	b, err := natDecode(body, asXML)
	if err != nil {
		natWrite(w, asXML, http.StatusBadRequest, natAnswer{Code: "4001", Msg: "报文格式错误: " + err.Error()})
		return
	}
	if b.BatchID == "" {
		natWrite(w, asXML, http.StatusBadRequest, natAnswer{Code: "4002", Msg: "批次号 batch_id 为空"})
		return
	}
	f, fail, drop := n.faults.roll()
	if err := sleep(r.Context(), f.Delay); err != nil {
		return // the client went away; nothing applied
	}
	if fail {
		n.mu.Lock()
		n.stats.Failed500++
		log := n.log
		n.mu.Unlock()
		log.Warn("batch failed (simulated 500)", zap.String("batch_id", b.BatchID), zap.Int("records", len(b.Records)))
		natWrite(w, asXML, http.StatusInternalServerError, natAnswer{Code: "5000", Msg: "模拟故障"})
		return
	}
	a := natAnswer{Code: NationalCodeOK, Msg: "成功", Data: &natData{BatchID: b.BatchID, Results: n.apply(b, f)}}
	var out []byte
	if asXML {
		out, err = natXMLBody(a)
	} else {
		out, err = json.Marshal(a)
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, "encode receipts")
		return
	}
	if drop {
		n.logger().Warn("dropping connection after applying batch (simulated)", zap.String("batch_id", b.BatchID))
		writeDropped(w, http.StatusOK, out)
		return
	}
	if asXML {
		natWriteXML(w, http.StatusOK, out)
		return
	}
	writeBody(w, http.StatusOK, out)
}

// natDecode reads a JSON or XML batch into the JSON envelope's form.
func natDecode(body []byte, asXML bool) (Batch, error) {
	if !asXML {
		var b Batch
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		if err := dec.Decode(&b); err != nil {
			return Batch{}, err
		}
		if _, err := dec.Token(); err != io.EOF {
			return Batch{}, errors.New("data after the batch object")
		}
		return b, nil
	}
	var xb natXMLBatch
	if err := xml.Unmarshal(body, &xb); err != nil {
		return Batch{}, err
	}
	b := Batch{BatchID: xb.ID, Records: make([]PushRecord, len(xb.Records))}
	for i, xr := range xb.Records {
		v, _ := strconv.ParseUint(xr.Version, 10, 64) // a bad version fails the key check
		pr := PushRecord{Key: xr.Key, Op: xr.Op, RecordID: xr.RecordID, Version: v}
		if len(xr.Fields) > 0 {
			pr.Data = make(map[string]any, len(xr.Fields))
			for _, f := range xr.Fields {
				pr.Data[f.XMLName.Local] = f.Value
			}
		}
		b.Records[i] = pr
	}
	return b, nil
}

// apply checks and applies every record of b under one lock, so a batch is
// atomic with respect to other batches.
func (n *National) apply(b Batch, f Faults) []natResult {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]natResult, len(b.Records))
	var accepted, rejected, dups, warned int
	for i, rec := range b.Records {
		res, o, warn := n.applyOne(rec, f)
		switch o {
		case outcomeRejected:
			rejected++
		case outcomeDuplicate:
			dups++
		default:
			accepted++
		}
		if warn {
			warned++
		}
		out[i] = res
	}
	n.stats.Batches++
	n.stats.Received += len(b.Records)
	n.stats.Accepted += accepted
	n.stats.Rejected += rejected
	n.stats.Duplicates += dups
	n.stats.Warnings += warned
	n.log.Info("batch received", zap.String("batch_id", b.BatchID), zap.Int("records", len(b.Records)),
		zap.Int("accepted", accepted+dups), zap.Int("duplicates", dups), zap.Int("rejected", rejected))
	return out
}

// applyOne decides one record, in Platform's order: malformed first, then a
// key seen before, then the version, then the simulated rejection. Callers
// hold n.mu.
func (n *National) applyOne(rec PushRecord, f Faults) (natResult, outcome, bool) {
	reject := func(code, msg string) (natResult, outcome, bool) {
		return natResult{YWID: rec.Key, ZT: "0", CWDM: code, CWXX: msg}, outcomeRejected, false
	}
	if rec.RecordID == "" {
		return reject(NationalCodeMissingField, "必填项为空: record_id")
	}
	if want := rec.RecordID + ":" + strconv.FormatUint(rec.Version, 10); rec.Key != want {
		return reject(NationalCodeBadKey, "业务标识应为 record_id:version，即 "+want)
	}
	var warning string
	switch rec.Op {
	case "add", "update":
		var code, msg string
		code, msg, warning = n.check(rec.Data)
		if code != "" {
			return reject(code, msg)
		}
	case "withdraw":
	default:
		return reject(NationalCodeBadOp, "操作类型无效: "+strconv.Quote(rec.Op)+"，应为 add、update 或 withdraw")
	}
	if _, ok := n.accepted[rec.Key]; ok {
		return natResult{YWID: rec.Key, ZT: "1", CWDM: NationalCodeOK, CWXX: "重复数据，已接收"}, outcomeDuplicate, false
	}
	if held, ok := n.versions[rec.RecordID]; ok && rec.Version < held {
		return reject(NationalCodeStale, "版本过旧: 已有版本 "+strconv.FormatUint(held, 10))
	}
	if simulatedReject(f, rec.Key) {
		return reject(NationalCodeSimulated, "疑问数据（模拟拒收）")
	}
	n.accepted[rec.Key] = struct{}{}
	n.versions[rec.RecordID] = rec.Version
	ok := natResult{YWID: rec.Key, ZT: "1", CWDM: NationalCodeOK, CWXX: warning}
	if rec.Op == "withdraw" {
		if _, held := n.holdings[rec.RecordID]; held {
			delete(n.holdings, rec.RecordID)
			n.stats.Withdrawn++
		} else {
			ok.CWXX = "记录不存在，无需撤回"
		}
		return ok, outcomeAccepted, false
	}
	n.holdings[rec.RecordID] = Holding{RecordID: rec.RecordID, Version: rec.Version, Op: rec.Op, Data: maps.Clone(rec.Data)}
	return ok, outcomeAccepted, warning != ""
}

// natText renders a field value as text; ok is false for a value that is
// not text or a number.
func natText(v any) (s string, ok bool) {
	switch x := v.(type) {
	case nil:
		return "", true
	case string:
		return x, true
	case json.Number:
		return x.String(), true
	}
	return "", false
}

// check returns a rejection code and message for the data of an add or
// update ("" when it passes), and a warning to accept it with.
func (n *National) check(data map[string]any) (code, msg, warning string) {
	text := func(k string) string { s, _ := natText(data[k]); return strings.TrimSpace(s) }
	for k, v := range data {
		if _, ok := natText(v); !ok {
			return NationalCodeMissingField, "字段值应为文本或数字: " + k, ""
		}
	}
	var missing []string
	for _, k := range n.required {
		if text(k) == "" {
			missing = append(missing, k)
		}
	}
	category := text("CF_XDR_LB")
	switch category {
	case "法人及非法人组织":
		if text("CF_XDR_SHXYM") == "" {
			missing = append(missing, "CF_XDR_SHXYM")
		}
	case "自然人":
		if text("CF_XDR_ZJHM") == "" {
			missing = append(missing, "CF_XDR_ZJHM")
		}
	}
	if len(missing) > 0 {
		return NationalCodeMissingField, "必填项为空: " + strings.Join(missing, ", "), ""
	}
	if category != "" && !natSubjectCategories[category] {
		return NationalCodeBadCategory, "行政相对人类别无效: CF_XDR_LB 应为 法人及非法人组织、自然人 或 个体工商户", ""
	}
	for k, max := range n.maxLen {
		if utf8.RuneCountInString(text(k)) > max {
			return NationalCodeTooLong, "字段超长: " + k + " 最多 " + strconv.Itoa(max) + " 个字符", ""
		}
	}
	dates := map[string]time.Time{}
	for _, k := range []string{"CF_JDRQ", "CF_YXQ", "CF_GSJZQ"} {
		if s := text(k); s != "" {
			d, err := time.Parse(time.DateOnly, s)
			if err != nil {
				return NationalCodeBadDate, "日期格式错误: " + k + " 应为有效日期 YYYY-MM-DD", ""
			}
			dates[k] = d
		}
	}
	for _, k := range []string{"CF_YXQ", "CF_GSJZQ"} {
		if d, ok := dates[k]; ok && !dates["CF_JDRQ"].IsZero() && d.Before(dates["CF_JDRQ"]) {
			return NationalCodeBadDate, "日期错误: " + k + " 早于处罚决定日期 CF_JDRQ", ""
		}
	}
	for _, k := range []string{"CF_XDR_SHXYM", "CF_CFJGDM", "CF_SJLYDM"} {
		if s := text(k); s != "" && !validUSCC(s) {
			if !n.usccWarnOnly {
				return NationalCodeBadUSCC, "统一社会信用代码校验错误: " + k, ""
			}
			warning = "统一社会信用代码校验位不符（仅提示）: " + k
		}
	}
	for _, p := range [][2]string{{"CF_XDR_ZJLX", "CF_XDR_ZJHM"}, {"CF_FR_ZJLX", "CF_FR_ZJHM"}} {
		if s := text(p[1]); s != "" {
			if t := text(p[0]); (t == "" || t == "身份证") && !validIDNo(s) {
				return NationalCodeBadIDNo, "证件号码校验错误: " + p[1], ""
			}
		}
	}
	for _, k := range []string{"CF_NR_FK", "CF_NR_WFFF"} {
		if s := text(k); s != "" && !natAmount(s) {
			return NationalCodeBadAmount, "金额格式错误: " + k + " 应为不小于 0 的数（万元），至多 6 位小数", ""
		}
	}
	return "", "", warning
}

// natAmount reports whether s is a plain non-negative decimal with at most
// six decimals, as the 万元 amount fields are.
func natAmount(s string) bool {
	whole, frac, dot := strings.Cut(s, ".")
	if whole == "" || (dot && (frac == "" || len(frac) > 6)) {
		return false
	}
	for _, part := range []string{whole, frac} {
		for i := 0; i < len(part); i++ {
			if part[i] < '0' || part[i] > '9' {
				return false
			}
		}
	}
	return true
}
