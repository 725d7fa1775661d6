package sandbox

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emmansun/gmsm/sm3"
	"go.uber.org/zap"
	"golang.org/x/text/encoding/simplifiedchinese"
)

// Receipt codes of the file platform, besides the service platform's.
const (
	CodeBadManifest = "E300" // 清单文件无法读取
	CodeBadBatch    = "E301" // 批次文件与清单不符（条数、SHA-256 或 SM3）
)

// Sub-folders of a FilePlatform's exchange folder.
const (
	FileProcessedDir = "processed" // batches read and answered (or dropped)
	FileBadDir       = "bad"       // batches with a corrupt manifest, when discarded
)

// Corrupt-manifest handling, FileFaults.CorruptManifest.
const (
	CorruptReject  = "reject"  // answer with a receipt carrying E300 and no per-item verdicts
	CorruptIgnore  = "ignore"  // leave it and look again on every scan (as if still being written)
	CorruptDiscard = "discard" // move it to bad/ and never answer
)

// FileFaults says how badly a FilePlatform behaves. The zero value is healthy.
type FileFaults struct {
	Delay time.Duration // between reading a batch and writing its receipt
	// DropRate is the share of batches applied but never answered, the case
	// that makes a client re-send what the platform already holds.
	DropRate float64
	// RejectRate is the share of otherwise-valid records rejected with E900,
	// decided from the key and Seed as the service platform does.
	RejectRate float64
	Seed       int64
	// CorruptManifest is what happens to a manifest that cannot be read:
	// CorruptReject (the default, also for ""), CorruptIgnore or CorruptDiscard.
	CorruptManifest string
}

// Validate reports rates outside [0, 1], negative delays and unknown modes.
func (f FileFaults) Validate() error {
	if err := (Faults{Delay: f.Delay, DropRate: f.DropRate, RejectRate: f.RejectRate}).Validate(); err != nil {
		return err
	}
	switch f.CorruptManifest {
	case "", CorruptReject, CorruptIgnore, CorruptDiscard:
		return nil
	}
	return fmt.Errorf("corrupt_manifest %q: want reject, ignore or discard", f.CorruptManifest)
}

// FileStats counts what a FilePlatform has seen. Records counts the records
// of batches that passed the manifest checks, as the service platform counts
// them; the other counters are batches, except Unreadable (lines).
type FileStats struct {
	Records    Stats `json:"records"`
	Corrupt    int   `json:"corrupt"`    // manifests that could not be read
	Mismatched int   `json:"mismatched"` // batches whose count or checksums differ from the manifest: every item E301
	Dropped    int   `json:"dropped"`    // applied, never answered
	Unreadable int   `json:"unreadable"` // lines without a readable key: no verdict possible
}

// FilePlatform simulates a credit platform reached in the GB/T 39443 file
// style. A reporter drops N.jsonl or N.csv and then N.manifest.json into the
// exchange folder; the platform reads a batch only once its manifest is
// there, checks the record count, SHA-256 and SM3 against the manifest, checks
// and applies every record as the service-style Platform does (same codes,
// same holdings rules, re-sent keys answered again without effect), writes
// ReceiptsDir/N.receipt.json:
//
//	{"batch_id": "...", "receipts": [{"key": "...", "status": "accepted|rejected", "code": "", "message": ""}],
//	 "error": {"code": "E300", "message": "..."}}   // error only for a corrupt manifest
//
// and moves the batch and its manifest to processed/. Dot files and *.tmp
// are never read. Scan does one pass; Run scans until its context ends. It is
// safe for concurrent use.
type FilePlatform struct {
	dir, receipts string
	core          *Platform // checks, holdings and duplicate detection
	faults        injector

	scan sync.Mutex // one pass at a time

	mu      sync.Mutex
	corrupt string
	pending []fpPending
	seen    map[string]string // manifests left in place (CorruptIgnore): name -> size/mtime seen
	stats   FileStats
	log     *zap.Logger
}

// fpPending is a receipt held back by FileFaults.Delay.
type fpPending struct {
	name string
	due  time.Time
	body []byte
}

// NewFilePlatform returns an empty platform over the exchange folder dir,
// writing receipts to receiptsDir ("" means dir/receipts).
func NewFilePlatform(dir, receiptsDir string) *FilePlatform {
	if receiptsDir == "" {
		receiptsDir = filepath.Join(dir, "receipts")
	}
	return &FilePlatform{dir: dir, receipts: receiptsDir, core: NewPlatform(""), seen: map[string]string{}, log: zap.NewNop()}
}

// SetLogger sets where the platform logs; the default discards.
func (p *FilePlatform) SetLogger(l *zap.Logger) {
	p.core.SetLogger(l)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.log = l
}

// SetFaults replaces the injected faults and restarts the random source.
func (p *FilePlatform) SetFaults(f FileFaults) {
	p.faults.set(Faults{Delay: f.Delay, DropRate: f.DropRate, RejectRate: f.RejectRate, Seed: f.Seed})
	p.mu.Lock()
	defer p.mu.Unlock()
	p.corrupt = f.CorruptManifest
}

// Faults returns the faults currently injected.
func (p *FilePlatform) Faults() FileFaults {
	f := p.faults.get()
	p.mu.Lock()
	defer p.mu.Unlock()
	return FileFaults{Delay: f.Delay, DropRate: f.DropRate, RejectRate: f.RejectRate, Seed: f.Seed, CorruptManifest: p.corrupt}
}

// Holdings returns a copy of the current holdings by record_id.
func (p *FilePlatform) Holdings() map[string]Holding { return p.core.Holdings() }

// Stats returns the counters so far.
func (p *FilePlatform) Stats() FileStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	s.Records = p.core.Stats()
	return s
}

// Run scans every interval until ctx ends. A failed scan is logged and the
// next one tries again.
func (p *FilePlatform) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := p.Scan(ctx); err != nil && ctx.Err() == nil {
			p.logger().Warn("file platform scan failed", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Scan writes the held-back receipts that are due, then reads every complete
// batch in the exchange folder, oldest name first. It returns the number of
// batches read.
func (p *FilePlatform) Scan(ctx context.Context) (int, error) {
	p.scan.Lock()
	defer p.scan.Unlock()
	if err := p.flush(time.Now()); err != nil {
		return 0, err
	}
	entries, err := os.ReadDir(p.dir)
	if err != nil {
		return 0, fmt.Errorf("file platform: %w", err)
	}
	n := 0
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || fpIgnored(name) || !strings.HasSuffix(name, fpManifestSuffix) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return n, err
		}
		read, err := p.batch(strings.TrimSuffix(name, fpManifestSuffix))
		if err != nil {
			return n, err
		}
		if read {
			n++
		}
	}
	return n, nil
}

const (
	fpManifestSuffix = ".manifest.json"
	fpReceiptSuffix  = ".receipt.json"
)

// fpIgnored: files being written, by the conventions of exchange folders.
func fpIgnored(name string) bool {
	return strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".tmp") || strings.HasSuffix(name, ".part")
}

// fpManifest is the manifest as the platform reads it.
type fpManifest struct {
	BatchID     string `json:"batch_id"`
	File        string `json:"file"`
	RecordCount *int   `json:"record_count"`
	ByteSize    *int64 `json:"byte_size"`
	SHA256      string `json:"sha256"`
	SM3         string `json:"sm3"`
	Format      string `json:"format"`
	Encoding    string `json:"encoding"`
}

// check returns why m cannot describe a batch, or "".
func (m *fpManifest) check() string {
	switch {
	case m.BatchID == "":
		return "batch_id 缺失"
	case m.File == "" || m.File != filepath.Base(m.File) || fpIgnored(m.File):
		return "file 无效: " + strconv.Quote(m.File)
	case m.RecordCount == nil || *m.RecordCount < 0:
		return "record_count 缺失或无效"
	case m.ByteSize == nil || *m.ByteSize < 0:
		return "byte_size 缺失或无效"
	case len(m.SHA256) != 64 || !fpHex(m.SHA256):
		return "sha256 缺失或无效"
	case len(m.SM3) != 64 || !fpHex(m.SM3):
		return "sm3 缺失或无效"
	case m.Format != "jsonl" && m.Format != "csv":
		return "format 无效: " + strconv.Quote(m.Format)
	}
	switch strings.ToLower(m.Encoding) {
	case "utf-8", "utf8", "gbk", "gb18030":
		return ""
	}
	return "encoding 无效: " + strconv.Quote(m.Encoding)
}

func fpHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil
}

// fpReceiptFile is the receipt the platform writes.
type fpReceiptFile struct {
	BatchID  string      `json:"batch_id"`
	Receipts []Receipt   `json:"receipts"`
	Error    *fpBatchErr `json:"error,omitempty"`
}

type fpBatchErr struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// fpLine is one line of a batch file.
type fpLine struct {
	rec     PushRecord
	badKey  bool   // key not record_id:version
	problem string // why the line has no readable key; rec is empty
}

// batch reads, checks and answers the batch named name. read is false when
// it was left alone.
func (p *FilePlatform) batch(name string) (read bool, err error) {
	mpath := filepath.Join(p.dir, name+fpManifestSuffix)
	raw, err := os.ReadFile(mpath)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil // taken meanwhile
	}
	if err != nil {
		return false, fmt.Errorf("file platform: %w", err)
	}
	var m fpManifest
	problem := ""
	if err := json.Unmarshal(raw, &m); err != nil {
		problem = "清单不是有效的 JSON: " + err.Error()
	} else if problem = m.check(); problem == "" {
		if _, err := os.Stat(filepath.Join(p.dir, m.File)); err != nil {
			problem = "清单所列批次文件不存在: " + m.File
		}
	}
	if problem != "" {
		return p.corruptManifest(name, mpath, problem)
	}

	data, err := os.ReadFile(filepath.Join(p.dir, m.File))
	if err != nil {
		return false, fmt.Errorf("file platform: %w", err)
	}
	lines, perr := fpParse(data, m.Format, m.Encoding)
	var mismatch []string
	if int64(len(data)) != *m.ByteSize {
		mismatch = append(mismatch, fmt.Sprintf("字节数 %d，清单为 %d", len(data), *m.ByteSize))
	}
	if len(lines) != *m.RecordCount {
		mismatch = append(mismatch, fmt.Sprintf("记录数 %d，清单为 %d", len(lines), *m.RecordCount))
	}
	if s := sha256.Sum256(data); !strings.EqualFold(hex.EncodeToString(s[:]), m.SHA256) {
		mismatch = append(mismatch, "SHA-256 不符")
	}
	if s := sm3.Sum(data); !strings.EqualFold(hex.EncodeToString(s[:]), m.SM3) {
		mismatch = append(mismatch, "SM3 不符")
	}
	if perr != nil {
		mismatch = append(mismatch, perr.Error())
	}

	out := fpReceiptFile{BatchID: m.BatchID, Receipts: []Receipt{}}
	unreadable := 0
	if len(mismatch) > 0 {
		msg := "批次文件校验失败: " + strings.Join(mismatch, "；")
		out.Error = &fpBatchErr{Code: CodeBadBatch, Message: msg}
		for _, l := range lines {
			if l.rec.Key != "" {
				out.Receipts = append(out.Receipts, Receipt{Key: l.rec.Key, Status: StatusRejected, Code: CodeBadBatch, Message: msg})
			}
		}
		p.logger().Warn("batch does not match its manifest", zap.String("batch_id", m.BatchID), zap.String("problem", msg))
	} else {
		// Checked lines go through the service platform's rules in one
		// batch; the others are answered here, in file order.
		b := Batch{BatchID: m.BatchID}
		for _, l := range lines {
			if l.problem == "" && !l.badKey {
				b.Records = append(b.Records, l.rec)
			}
		}
		f := p.faults.get()
		applied := p.core.apply(b, Faults{RejectRate: f.RejectRate, Seed: f.Seed})
		next := 0
		for _, l := range lines {
			switch {
			case l.problem != "":
				unreadable++
			case l.badKey:
				out.Receipts = append(out.Receipts, Receipt{Key: l.rec.Key, Status: StatusRejected, Code: CodeBadKey, Message: "key 应为 record_id:version"})
			default:
				out.Receipts = append(out.Receipts, applied.Receipts[next])
				next++
			}
		}
	}
	_, _, drop := p.faults.roll()
	p.mu.Lock()
	if len(mismatch) > 0 {
		p.stats.Mismatched++
	}
	p.stats.Unreadable += unreadable
	if drop {
		p.stats.Dropped++
	}
	p.mu.Unlock()

	if err := p.archive(FileProcessedDir, name+fpManifestSuffix, m.File); err != nil {
		return true, err
	}
	if drop {
		p.logger().Warn("batch applied, receipt dropped (simulated)", zap.String("batch_id", m.BatchID))
		return true, nil
	}
	return true, p.answer(name, out)
}

// corruptManifest handles a manifest that cannot be read, as the faults say.
func (p *FilePlatform) corruptManifest(name, mpath, problem string) (bool, error) {
	p.mu.Lock()
	mode := p.corrupt
	p.mu.Unlock()
	if mode == CorruptIgnore {
		sig := ""
		if fi, err := os.Stat(mpath); err == nil {
			sig = fmt.Sprint(fi.Size(), fi.ModTime().UnixNano())
		}
		p.mu.Lock()
		fresh := p.seen[name] != sig
		p.seen[name] = sig
		if fresh {
			p.stats.Corrupt++
		}
		p.mu.Unlock()
		if fresh {
			p.logger().Warn("corrupt manifest left in place", zap.String("batch", name), zap.String("problem", problem))
		}
		return false, nil
	}
	p.mu.Lock()
	p.stats.Corrupt++
	delete(p.seen, name)
	p.mu.Unlock()
	p.logger().Warn("corrupt manifest", zap.String("batch", name), zap.String("problem", problem), zap.String("handling", mode))
	files := []string{name + fpManifestSuffix}
	for _, ext := range []string{".jsonl", ".csv"} {
		if _, err := os.Stat(filepath.Join(p.dir, name+ext)); err == nil {
			files = append(files, name+ext)
		}
	}
	if err := p.archive(FileBadDir, files...); err != nil {
		return true, err
	}
	if mode == CorruptDiscard {
		return true, nil
	}
	return true, p.answer(name, fpReceiptFile{Receipts: []Receipt{}, Error: &fpBatchErr{Code: CodeBadManifest, Message: "清单文件无法读取: " + problem}})
}

// archive moves files of the exchange folder into its sub-folder sub,
// the manifest first so the batch is no longer complete in the folder.
func (p *FilePlatform) archive(sub string, files ...string) error {
	dst := filepath.Join(p.dir, sub)
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return fmt.Errorf("file platform: %w", err)
	}
	for _, f := range files {
		if err := os.Rename(filepath.Join(p.dir, f), filepath.Join(dst, f)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("file platform: %w", err)
		}
	}
	return nil
}

// answer writes the receipt now, or queues it when a delay is injected.
func (p *FilePlatform) answer(name string, r fpReceiptFile) error {
	body, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("file platform: %w", err)
	}
	pend := fpPending{name: name + fpReceiptSuffix, due: time.Now().Add(p.faults.get().Delay), body: append(body, '\n')}
	p.mu.Lock()
	p.pending = append(p.pending, pend)
	p.mu.Unlock()
	return p.flush(time.Now())
}

// flush writes the held-back receipts due by now, atomically.
func (p *FilePlatform) flush(now time.Time) error {
	p.mu.Lock()
	var due []fpPending
	p.pending = slices.DeleteFunc(p.pending, func(r fpPending) bool {
		if !r.due.After(now) {
			due = append(due, r)
			return true
		}
		return false
	})
	p.mu.Unlock()
	for i, r := range due {
		if err := fpWriteAtomic(p.receipts, r.name, r.body); err != nil {
			p.mu.Lock()
			p.pending = append(p.pending, due[i:]...)
			p.mu.Unlock()
			return fmt.Errorf("file platform: receipt %s: %w", r.name, err)
		}
	}
	return nil
}

// PendingReceipts is the number of receipts held back by Delay.
func (p *FilePlatform) PendingReceipts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.pending)
}

func (p *FilePlatform) logger() *zap.Logger {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log
}

func fpWriteAtomic(dir, name string, b []byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var r [4]byte
	rand.Read(r[:])
	tmp := filepath.Join(dir, "."+name+"."+hex.EncodeToString(r[:])+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// fpParse reads the lines of a batch file. err reports a file that cannot
// be read as a whole (undecodable text, a CSV header without op and key);
// lines read before it are returned.
func fpParse(data []byte, format, enc string) ([]fpLine, error) {
	text := data
	switch strings.ToLower(enc) {
	case "gbk":
		u, err := simplifiedchinese.GBK.NewDecoder().Bytes(data)
		if err != nil {
			return nil, fmt.Errorf("不是有效的 GBK 文本")
		}
		text = u
	case "gb18030":
		u, err := simplifiedchinese.GB18030.NewDecoder().Bytes(data)
		if err != nil {
			return nil, fmt.Errorf("不是有效的 GB18030 文本")
		}
		text = u
	}
	if format == "csv" {
		return fpParseCSV(text)
	}
	var out []fpLine
	for i, ln := range bytes.Split(text, []byte("\n")) {
		ln = bytes.TrimSpace(ln)
		if len(ln) == 0 {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(ln))
		dec.UseNumber()
		var obj map[string]any
		if err := dec.Decode(&obj); err != nil || obj == nil {
			out = append(out, fpLine{problem: fmt.Sprintf("第 %d 行不是 JSON 对象", i+1)})
			continue
		}
		op, _ := obj["op"].(string)
		key, _ := obj["key"].(string)
		delete(obj, "op")
		delete(obj, "key")
		out = append(out, fpRecord(key, op, obj, i+1))
	}
	return out, nil
}

func fpParseCSV(text []byte) ([]fpLine, error) {
	r := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(text, []byte("\xef\xbb\xbf"))))
	r.FieldsPerRecord = -1
	header, err := r.Read()
	if err != nil {
		if err == io.EOF {
			return nil, nil
		}
		return nil, fmt.Errorf("CSV 表头无法读取")
	}
	iop, ikey := slices.Index(header, "op"), slices.Index(header, "key")
	if iop < 0 || ikey < 0 {
		return nil, fmt.Errorf("CSV 表头缺少 op 或 key 列")
	}
	var out []fpLine
	for n := 2; ; n++ {
		row, err := r.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil || len(row) != len(header) {
			// A csv.ParseError: the reader goes on with the next line.
			out = append(out, fpLine{problem: fmt.Sprintf("第 %d 行格式错误", n)})
			continue
		}
		data := map[string]any{}
		for i, h := range header {
			if i != iop && i != ikey && row[i] != "" {
				data[h] = row[i]
			}
		}
		out = append(out, fpRecord(row[ikey], row[iop], data, n))
	}
}

// fpRecord makes the line of one item; the record id and version come from
// the key, "<record_id>:<version>".
func fpRecord(key, op string, data map[string]any, n int) fpLine {
	if key == "" {
		return fpLine{problem: fmt.Sprintf("第 %d 行缺少 key", n)}
	}
	if len(data) == 0 {
		data = nil
	}
	l := fpLine{rec: PushRecord{Key: key, Op: op, Data: data}}
	i := strings.LastIndexByte(key, ':')
	v, err := strconv.ParseUint(key[i+1:], 10, 64)
	if i <= 0 || err != nil {
		l.badKey = true
		return l
	}
	l.rec.RecordID, l.rec.Version = key[:i], v
	return l
}
