// Package filex delivers record batches through an exchange folder, the
// GB/T 39443 "file" style: each Send writes one batch file and then a
// manifest saying the batch is complete, and waits for the receipt file the
// platform writes back.
//
// For a batch named N (file_prefix + batch id), in Dir:
//
//	N.jsonl or N.csv    the batch, one line per item, in the configured encoding
//	N.manifest.json     written last: its presence means N is complete
//	.filex.*.tmp        being written; platforms ignore dot files, Send removes stale ones
//
// Batch lines. JSONL: {"op":"add|update|withdraw","key":"<record_id>:<version>",<Data fields>}.
// CSV: a header "op,key,<columns>", then one row per item; an empty cell is
// an absent field. Data fields come in the order of Config.Columns, or
// sorted by name; with Columns set, other fields are not sent.
//
// Manifest (UTF-8 JSON, see Manifest): batch_id, file, record_count,
// byte_size, sha256 and sm3 (hex, of the batch file's bytes), created_at,
// format, encoding, columns (CSV).
//
// Receipt, written by the platform as ReceiptsDir/N.receipt.json (UTF-8, or
// GB18030 when not valid UTF-8), its shape set by Config.Receipt (ReceiptShape):
//
//	{"batch_id": "...", "receipts": [{"key": "...", "status": "accepted|rejected", "code": "E101", "message": "..."}]}
//
// A status listed in receipt.accepted_values is an acceptance, anything else a
// rejection. A receipt Send has read is moved to ReceiptsDir/done.
//
// Re-sending a batch id is idempotent: a receipt already there (or in done/)
// is used; a complete batch with the same content is not rewritten.
//
// It depends only on push.
package filex

import (
	"bufio"
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
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emmansun/gmsm/sm3"
	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/panjin-gov/syncd/internal/push"
)

// Formats and encodings of batch files.
const (
	FormatJSONL = "jsonl"
	FormatCSV   = "csv"

	EncodingUTF8    = "utf-8"
	EncodingGBK     = "gbk"
	EncodingGB18030 = "gb18030"
)

// Local rejection codes: items Send rejects itself without writing them.
const (
	CodeLocalEncoding = "local_encoding" // a value the configured encoding cannot represent
	CodeLocalLayout   = "local_layout"   // a Data field named like the op or key column
)

// Suffixes of the files of a batch.
const (
	ManifestSuffix = ".manifest.json"
	ReceiptSuffix  = ".receipt.json"
	// DoneDir is the sub-folder of ReceiptsDir receipts are moved to once read.
	DoneDir = "done"
)

// ErrNoReceipt is wrapped by the transient error Send returns when no
// receipt came within receipt_timeout. The batch stays in the folder; a
// re-send of the same batch id waits for it again without rewriting it.
var ErrNoReceipt = errors.New("no receipt")

// ErrRefused is wrapped by the transient error Send returns when the
// platform answered the batch as a whole with an error (e.g. a manifest it
// could not read) and no per-item answers.
var ErrRefused = errors.New("platform refused the batch")

// Config is the file-exchange target's part of a target's config.
type Config struct {
	Dir string `mapstructure:"dir"`
	// ReceiptsDir is where the platform writes receipts; default Dir/receipts.
	ReceiptsDir string `mapstructure:"receipts_dir"`
	// Format of batch files: jsonl or csv.
	Format string `mapstructure:"format"`
	// Encoding of batch files: utf-8, gbk or gb18030.
	Encoding string `mapstructure:"encoding"`
	// Columns are the Data fields sent, in order. Empty: every field, sorted
	// (the CSV header is then the sorted union of the batch's fields).
	Columns []string `mapstructure:"columns"`
	// FilePrefix starts every batch's file names, e.g. a unit code.
	FilePrefix     string        `mapstructure:"file_prefix"`
	ReceiptTimeout time.Duration `mapstructure:"receipt_timeout"`
	PollInterval   time.Duration `mapstructure:"poll_interval"`
	Receipt        ReceiptShape  `mapstructure:"receipt"`
	// LateReceipts says what a batch whose receipt has not come within
	// receipt_timeout becomes: "feedback" (default) hands its versions over
	// as sent, and the receipt is read whenever it comes (Feedback); "retry"
	// fails the batch so the next run sends its versions again in a new
	// batch (for platforms that answer in seconds or not at all).
	LateReceipts string `mapstructure:"late_receipts"`
}

// Late-receipt modes.
const (
	LateFeedback = "feedback"
	LateRetry    = "retry"
)

// ReceiptShape says where the receipt file keeps its per-item answers and
// what their fields are called (the keys of the HTTP target's receipt), and
// the file's batch-level fields.
type ReceiptShape struct {
	push.ReceiptShape `mapstructure:",squash"`
	// BatchIDField, when present in the file, must hold the batch id.
	BatchIDField string `mapstructure:"batch_id_field"` // default "batch_id"
	// ErrorField is a batch-level error; a receipt with one and no per-item
	// answers is ErrRefused.
	ErrorField string `mapstructure:"error_field"` // default "error"
}

// SetDefaults fills unset fields.
func (c *Config) SetDefaults() {
	if c.ReceiptsDir == "" && c.Dir != "" {
		c.ReceiptsDir = filepath.Join(c.Dir, "receipts")
	}
	if c.Format == "" {
		c.Format = FormatJSONL
	}
	if c.Encoding == "" {
		c.Encoding = EncodingUTF8
	}
	if c.ReceiptTimeout == 0 {
		c.ReceiptTimeout = 2 * time.Minute
	}
	if c.PollInterval == 0 {
		c.PollInterval = time.Second
	}
	if c.LateReceipts == "" {
		c.LateReceipts = LateFeedback
	}
	c.Receipt.ReceiptShape.SetDefaults()
	if c.Receipt.BatchIDField == "" {
		c.Receipt.BatchIDField = "batch_id"
	}
	if c.Receipt.ErrorField == "" {
		c.Receipt.ErrorField = "error"
	}
}

// Validate checks the config without I/O.
func (c *Config) Validate() error {
	var errs []error
	if c.Dir == "" {
		errs = append(errs, errors.New("dir: required"))
	}
	if c.LateReceipts != "" && c.LateReceipts != LateFeedback && c.LateReceipts != LateRetry {
		errs = append(errs, fmt.Errorf("late_receipts: %q is not feedback or retry", c.LateReceipts))
	}
	switch strings.ToLower(c.Format) {
	case FormatJSONL, FormatCSV:
	default:
		errs = append(errs, fmt.Errorf("format: %q not one of jsonl, csv", c.Format))
	}
	if normEncoding(c.Encoding) == "" {
		errs = append(errs, fmt.Errorf("encoding: %q not one of utf-8, gbk, gb18030", c.Encoding))
	}
	seen := map[string]bool{}
	for i, col := range c.Columns {
		switch {
		case strings.TrimSpace(col) == "":
			errs = append(errs, fmt.Errorf("columns[%d]: empty name", i))
		case col == "op" || col == "key":
			errs = append(errs, fmt.Errorf("columns[%d]: %q is the batch file's own column", i, col))
		case seen[col]:
			errs = append(errs, fmt.Errorf("columns[%d]: %q appears twice", i, col))
		}
		seen[col] = true
	}
	if c.FilePrefix != "" && !safeName(c.FilePrefix) {
		errs = append(errs, fmt.Errorf("file_prefix: %q must be a plain file name part (letters, digits, . _ -, not starting with .)", c.FilePrefix))
	}
	if c.ReceiptTimeout <= 0 {
		errs = append(errs, errors.New("receipt_timeout: must be positive"))
	}
	if c.PollInterval <= 0 {
		errs = append(errs, errors.New("poll_interval: must be positive"))
	}
	r := c.Receipt
	if r.ItemsPath != "." && slices.Contains(strings.Split(r.ItemsPath, "."), "") {
		errs = append(errs, fmt.Errorf("receipt.items_path: %q has an empty segment", r.ItemsPath))
	}
	for _, f := range []struct{ name, v string }{{"key_field", r.KeyField}, {"status_field", r.StatusField}, {"code_field", r.CodeField},
		{"message_field", r.MessageField}, {"batch_id_field", r.BatchIDField}, {"error_field", r.ErrorField}} {
		if f.v == "" {
			errs = append(errs, fmt.Errorf("receipt.%s: required", f.name))
		}
	}
	return errors.Join(errs...)
}

func normEncoding(s string) string {
	switch strings.ToLower(s) {
	case "utf-8", "utf8":
		return EncodingUTF8
	case "gbk":
		return EncodingGBK
	case "gb18030":
		return EncodingGB18030
	}
	return ""
}

// safeName reports whether s can be part of a file name in the exchange
// folder on any platform: ASCII letters, digits, '.', '_' and '-', not
// starting with '.' (dot files are what platforms ignore).
func safeName(s string) bool {
	if s == "" || s[0] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Manifest describes one complete batch file.
type Manifest struct {
	BatchID     string    `json:"batch_id"`
	File        string    `json:"file"` // base name in the exchange folder
	RecordCount int       `json:"record_count"`
	ByteSize    int64     `json:"byte_size"`
	SHA256      string    `json:"sha256"` // hex
	SM3         string    `json:"sm3"`    // hex, GB/T 32905
	CreatedAt   time.Time `json:"created_at"`
	Format      string    `json:"format"`
	Encoding    string    `json:"encoding"`
	Columns     []string  `json:"columns,omitempty"` // CSV: the header after op and key
}

// sameBatch reports whether two manifests describe the same batch file,
// whenever they were made.
func (m Manifest) sameBatch(o Manifest) bool {
	return m.BatchID == o.BatchID && m.File == o.File && m.RecordCount == o.RecordCount && m.ByteSize == o.ByteSize &&
		m.SHA256 == o.SHA256 && m.SM3 == o.SM3 && m.Format == o.Format && m.Encoding == o.Encoding
}

// Target is one platform's exchange folder. Sends are serialized.
type Target struct {
	cfg Config
	now func() time.Time

	mu sync.Mutex
}

var _ push.Target = (*Target)(nil)

// New makes a target. It does no I/O: the folders are first used by Send.
func New(cfg Config) (*Target, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Format = strings.ToLower(cfg.Format)
	cfg.Encoding = normEncoding(cfg.Encoding)
	cfg.Columns = slices.Clone(cfg.Columns)
	return &Target{cfg: cfg, now: time.Now}, nil
}

// Close does nothing: no file stays open between Sends.
func (t *Target) Close(context.Context) error { return nil }

// tempGrace is how old a temp file of ours must be before Send removes it:
// older than any write in progress.
const tempGrace = time.Minute

// Send writes the batch (unless it is there already), then waits for its
// receipt. A missing folder, a failed write or no receipt in time are
// transient errors; a batch id that cannot name a file, or a complete batch
// of the same id with other content, are push.ErrPermanent.
func (t *Target) Send(ctx context.Context, batchID string, items []push.Item) ([]push.Receipt, error) {
	if !safeName(batchID) {
		return nil, fmt.Errorf("batch id %q cannot name a file: %w", batchID, push.ErrPermanent)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	name := t.cfg.FilePrefix + batchID
	t.removeStaleTemps()

	tmp, m, local, err := t.render(batchID, name, items)
	if err != nil {
		return nil, err
	}
	if m.RecordCount == 0 {
		os.Remove(tmp)
		return local, nil
	}
	if rs, ok, err := t.readReceipt(name, batchID); ok {
		os.Remove(tmp)
		if err != nil {
			return nil, err
		}
		return append(local, rs...), nil
	}
	if err := t.publish(tmp, name, m); err != nil {
		os.Remove(tmp)
		return nil, err
	}
	rs, err := t.await(ctx, name, batchID)
	if errors.Is(err, ErrNoReceipt) && t.cfg.LateReceipts == LateFeedback {
		// The platform has the batch; its answer comes through Feedback.
		for _, it := range items {
			if !slices.ContainsFunc(local, func(r push.Receipt) bool { return r.Key == it.Key }) {
				local = append(local, push.Receipt{Key: it.Key, Pending: true, Message: "batch " + batchID + " written, receipt not yet in"})
			}
		}
		return local, nil
	}
	if err != nil {
		return nil, err
	}
	return append(local, rs...), nil
}

// Feedback reads receipts that came after their batch's Send stopped
// waiting: the receipt files in ReceiptsDir, at most max receipts' worth.
// The cursor is the list of files the previous call read: the runner saves
// it only after their answers are in the ledger, so those are archived to
// done/ first. (Batch ids do not sort in arrival order, so a cursor of names
// read, not a position, is what is safe.) A receipt refusing its batch as a
// whole rejects each of the batch's keys with code "batch_refused".
func (t *Target) Feedback(ctx context.Context, cursor string, max int) ([]push.Receipt, string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if cursor != "" {
		if err := os.MkdirAll(filepath.Join(t.cfg.ReceiptsDir, DoneDir), 0o755); err != nil {
			return nil, cursor, err
		}
		for _, name := range strings.Split(cursor, "\n") {
			if name == "" || !strings.HasSuffix(name, ReceiptSuffix) || strings.ContainsAny(name, "/\\") {
				continue
			}
			err := os.Rename(filepath.Join(t.cfg.ReceiptsDir, name), filepath.Join(t.cfg.ReceiptsDir, DoneDir, name))
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, cursor, err
			}
		}
	}
	entries, err := os.ReadDir(t.cfg.ReceiptsDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, "", nil
	}
	if err != nil {
		return nil, cursor, err
	}
	var out []push.Receipt
	var read []string
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ReceiptSuffix) {
			continue
		}
		if len(out) >= max {
			break
		}
		base := strings.TrimSuffix(name, ReceiptSuffix)
		batchID := strings.TrimPrefix(base, t.cfg.FilePrefix)
		b, err := os.ReadFile(filepath.Join(t.cfg.ReceiptsDir, name))
		if err != nil {
			continue // gone (a concurrent Send archived it) or unreadable: next time
		}
		rs, err := parseReceipt(b, batchID, t.cfg.Receipt)
		var ref *refusal
		switch {
		case errors.As(err, &ref):
			keys, kerr := t.batchKeys(base)
			if kerr != nil {
				return out, strings.Join(read, "\n"), fmt.Errorf("%s: refused, and its batch cannot be read: %w", name, kerr)
			}
			for _, k := range keys {
				out = append(out, push.Receipt{Key: k, Code: "batch_refused", Message: ref.msg})
			}
		case err != nil:
			continue // possibly still being written: read it next time
		default:
			out = append(out, rs...)
		}
		read = append(read, name)
	}
	return out, strings.Join(read, "\n"), nil
}

// batchKeys lists the idempotency keys of a batch written earlier, from
// its manifest and batch file.
func (t *Target) batchKeys(name string) ([]string, error) {
	mb, err := os.ReadFile(filepath.Join(t.cfg.Dir, name+ManifestSuffix))
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(mb, &m); err != nil {
		return nil, err
	}
	f, err := os.Open(filepath.Join(t.cfg.Dir, m.File))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = f
	switch m.Encoding {
	case EncodingGBK:
		r = simplifiedchinese.GBK.NewDecoder().Reader(f)
	case EncodingGB18030:
		r = simplifiedchinese.GB18030.NewDecoder().Reader(f)
	}
	var keys []string
	if m.Format == FormatCSV {
		rows, err := csv.NewReader(r).ReadAll()
		if err != nil || len(rows) == 0 {
			return nil, fmt.Errorf("batch file %s: %v", m.File, err)
		}
		col := slices.Index(rows[0], "key")
		for _, row := range rows[1:] {
			if col >= 0 && col < len(row) {
				keys = append(keys, row[col])
			}
		}
		return keys, nil
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var line struct {
			Key string `json:"key"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Key != "" {
			keys = append(keys, line.Key)
		}
	}
	return keys, sc.Err()
}

// publish moves the rendered batch file into place and writes its manifest,
// unless a manifest for the same content is there already.
func (t *Target) publish(tmp, name string, m Manifest) error {
	mpath := filepath.Join(t.cfg.Dir, name+ManifestSuffix)
	if b, err := os.ReadFile(mpath); err == nil {
		var old Manifest
		if json.Unmarshal(b, &old) == nil {
			if old.sameBatch(m) {
				os.Remove(tmp)
				return nil
			}
			return fmt.Errorf("batch %s: a complete batch of this id with other content is in %s: %w", m.BatchID, t.cfg.Dir, push.ErrPermanent)
		}
		// An unreadable manifest does not describe a complete batch: write
		// both files again.
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("batch %s: %w", m.BatchID, err)
	}
	if err := os.Rename(tmp, filepath.Join(t.cfg.Dir, m.File)); err != nil {
		return fmt.Errorf("batch %s: %w", m.BatchID, err)
	}
	if err := syncDir(t.cfg.Dir); err != nil {
		return fmt.Errorf("batch %s: %w", m.BatchID, err)
	}
	mb, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("batch %s: %w: %w", m.BatchID, err, push.ErrPermanent)
	}
	if err := writeAtomic(t.cfg.Dir, name+ManifestSuffix, append(mb, '\n')); err != nil {
		return fmt.Errorf("batch %s manifest: %w", m.BatchID, err)
	}
	return nil
}

// await polls for the receipt until it is read, receipt_timeout passes or
// ctx ends.
func (t *Target) await(ctx context.Context, name, batchID string) ([]push.Receipt, error) {
	deadline := time.NewTimer(t.cfg.ReceiptTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(t.cfg.PollInterval)
	defer tick.Stop()
	var lastErr error
	for {
		rs, ok, err := t.readReceipt(name, batchID)
		if ok {
			return rs, err
		}
		if err != nil {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("batch %s: waiting for receipt: %w", batchID, ctx.Err())
		case <-deadline.C:
			if lastErr != nil {
				return nil, fmt.Errorf("batch %s: %w within %s (last seen: %v)", batchID, ErrNoReceipt, t.cfg.ReceiptTimeout, lastErr)
			}
			return nil, fmt.Errorf("batch %s: %w within %s", batchID, ErrNoReceipt, t.cfg.ReceiptTimeout)
		case <-tick.C:
		}
	}
}

// readReceipt reads the batch's receipt from ReceiptsDir, or from done/
// when an earlier Send read it already, and moves it to done/. ok is false
// when there is none yet, or it cannot be read (err says why: a platform
// may still be writing it).
func (t *Target) readReceipt(name, batchID string) (rs []push.Receipt, ok bool, err error) {
	base := name + ReceiptSuffix
	path := filepath.Join(t.cfg.ReceiptsDir, base)
	done := filepath.Join(t.cfg.ReceiptsDir, DoneDir, base)
	b, err := os.ReadFile(path)
	archived := false
	if errors.Is(err, fs.ErrNotExist) {
		b, err = os.ReadFile(done)
		archived = true
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	rs, err = parseReceipt(b, batchID, t.cfg.Receipt)
	var ref *refusal
	if errors.As(err, &ref) {
		// A final answer: archive it, then report it.
		if !archived && os.MkdirAll(filepath.Dir(done), 0o755) == nil {
			os.Rename(path, done)
		}
		return nil, true, fmt.Errorf("%s: %w: %s", base, ErrRefused, ref.msg)
	}
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", base, err)
	}
	if !archived {
		// Failing to archive leaves the receipt where it is, to be read
		// again by a re-send; the answer itself stands.
		if os.MkdirAll(filepath.Dir(done), 0o755) == nil {
			os.Rename(path, done)
		}
	}
	return rs, true, nil
}

// parseReceipt reads a receipt file. Entries without a key are skipped: they
// cannot be matched to an item.
func parseReceipt(b []byte, batchID string, f ReceiptShape) ([]push.Receipt, error) {
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	if !json.Valid(b) {
		if u, err := simplifiedchinese.GB18030.NewDecoder().Bytes(b); err == nil && json.Valid(u) {
			b = u
		} else {
			return nil, errors.New("not JSON")
		}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, errors.New("not JSON")
	}
	top, _ := doc.(map[string]any)
	if id := push.Scalar(top[f.BatchIDField]); id != "" && id != batchID {
		return nil, fmt.Errorf("%s is %q, want %q", f.BatchIDField, id, batchID)
	}
	if e := top[f.ErrorField]; e != nil {
		if items, _ := f.Items(doc); len(items) == 0 {
			b, _ := json.Marshal(e)
			return nil, &refusal{msg: string(b)}
		}
	}
	return f.Parse(doc)
}

// refusal is a receipt that answers the batch as a whole with an error.
type refusal struct{ msg string }

func (r *refusal) Error() string { return "batch refused: " + r.msg }

// render writes the batch file under a temp name in Dir and returns that
// name, the manifest describing it and the items rejected locally.
func (t *Target) render(batchID, name string, items []push.Item) (tmp string, m Manifest, local []push.Receipt, err error) {
	m = Manifest{BatchID: batchID, File: name + "." + t.cfg.Format, Format: t.cfg.Format, Encoding: t.cfg.Encoding}
	f, tmp, err := createTemp(t.cfg.Dir, m.File)
	if err != nil {
		return "", m, nil, fmt.Errorf("batch %s: %w", batchID, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	sh, sm := sha256.New(), sm3.New()
	cw := &countWriter{}
	bw := bufio.NewWriterSize(io.MultiWriter(f, sh, sm, cw), 64<<10)
	enc := t.encoder()

	var line bytes.Buffer
	var cols []string
	var cells []string
	var cwr *csv.Writer
	// encode turns the rendered line into the file's encoding; an error is
	// a value the encoding cannot represent.
	encode := func() ([]byte, error) {
		if enc == nil {
			return line.Bytes(), nil
		}
		return enc.Bytes(line.Bytes())
	}
	if t.cfg.Format == FormatCSV {
		cols = t.cfg.Columns
		if len(cols) == 0 {
			cols = unionFields(items)
		}
		m.Columns = cols
		cwr = csv.NewWriter(&line)
		cwr.Write(append([]string{"op", "key"}, cols...))
		cwr.Flush()
		out, err := encode()
		if err != nil {
			return "", m, nil, fmt.Errorf("batch %s: CSV header cannot be written in %s: %v: %w", batchID, t.cfg.Encoding, err, push.ErrPermanent)
		}
		if _, err := bw.Write(out); err != nil {
			return "", m, nil, fmt.Errorf("batch %s: %w", batchID, err)
		}
		cells = make([]string, 2+len(cols))
	}
	jl := &jsonLine{}
	for _, it := range items {
		if _, ok := it.Data["op"]; ok {
			local = append(local, push.Receipt{Key: it.Key, Code: CodeLocalLayout, Message: `data has a field named "op", the batch file's own column`})
			continue
		}
		if _, ok := it.Data["key"]; ok {
			local = append(local, push.Receipt{Key: it.Key, Code: CodeLocalLayout, Message: `data has a field named "key", the batch file's own column`})
			continue
		}
		line.Reset()
		if cwr != nil {
			cells[0], cells[1] = string(it.Op), it.Key
			for i, c := range cols {
				cells[2+i] = cell(it.Data[c])
			}
			cwr.Write(cells)
			cwr.Flush()
		} else {
			fields := t.cfg.Columns
			if len(fields) == 0 {
				fields = slices.Sorted(maps.Keys(it.Data))
			}
			if err := jl.write(&line, it, fields); err != nil {
				local = append(local, push.Receipt{Key: it.Key, Code: CodeLocalLayout, Message: err.Error()})
				continue
			}
		}
		out, err := encode()
		if err != nil {
			local = append(local, push.Receipt{Key: it.Key, Code: CodeLocalEncoding, Message: "cannot be written in " + t.cfg.Encoding + ": " + err.Error()})
			continue
		}
		if _, err := bw.Write(out); err != nil {
			return "", m, nil, fmt.Errorf("batch %s: %w", batchID, err)
		}
		m.RecordCount++
	}
	if err := bw.Flush(); err != nil {
		return "", m, nil, fmt.Errorf("batch %s: %w", batchID, err)
	}
	if err := f.Sync(); err != nil {
		return "", m, nil, fmt.Errorf("batch %s: %w", batchID, err)
	}
	if err := f.Close(); err != nil {
		return "", m, nil, fmt.Errorf("batch %s: %w", batchID, err)
	}
	m.ByteSize = cw.n
	m.SHA256 = hex.EncodeToString(sh.Sum(nil))
	m.SM3 = hex.EncodeToString(sm.Sum(nil))
	m.CreatedAt = t.now()
	return tmp, m, local, nil
}

// encoder returns the encoder of the configured encoding, nil for UTF-8.
func (t *Target) encoder() *encoding.Encoder {
	switch t.cfg.Encoding {
	case EncodingGBK:
		return simplifiedchinese.GBK.NewEncoder()
	case EncodingGB18030:
		return simplifiedchinese.GB18030.NewEncoder()
	}
	return nil
}

// jsonLine renders one JSONL line; its buffer is reused across lines.
type jsonLine struct {
	val bytes.Buffer
	enc *json.Encoder
}

func (j *jsonLine) value(v any) ([]byte, error) {
	if j.enc == nil {
		j.enc = json.NewEncoder(&j.val)
		j.enc.SetEscapeHTML(false)
	}
	j.val.Reset()
	if err := j.enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(j.val.Bytes(), []byte("\n")), nil
}

// write appends {"op":…,"key":…,<fields>}\n to b. Fields absent from the
// item's data are left out.
func (j *jsonLine) write(b *bytes.Buffer, it push.Item, fields []string) error {
	b.WriteString(`{"op":`)
	v, _ := j.value(string(it.Op))
	b.Write(v)
	b.WriteString(`,"key":`)
	v, _ = j.value(it.Key)
	b.Write(v)
	for _, k := range fields {
		val, ok := it.Data[k]
		if !ok {
			continue
		}
		b.WriteByte(',')
		v, _ = j.value(k)
		b.Write(v)
		b.WriteByte(':')
		v, err := j.value(val)
		if err != nil {
			return fmt.Errorf("field %s: %v", k, err)
		}
		b.Write(v)
	}
	b.WriteString("}\n")
	return nil
}

// cell renders a Data value as a CSV cell: strings as they are, nil as
// empty, anything else as its JSON text.
func cell(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case json.Number:
		return x.String()
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// unionFields is the sorted union of the items' Data fields.
func unionFields(items []push.Item) []string {
	set := map[string]struct{}{}
	for _, it := range items {
		for k := range it.Data {
			if k != "op" && k != "key" {
				set[k] = struct{}{}
			}
		}
	}
	return slices.Sorted(maps.Keys(set))
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}

// tempPrefix starts the names of files being written: a dot file, which
// platforms ignore, and ours alone, so stale ones can be removed.
const tempPrefix = ".filex."

// createTemp creates the temp file a file named final is written to.
func createTemp(dir, final string) (*os.File, string, error) {
	var r [6]byte
	rand.Read(r[:])
	p := filepath.Join(dir, tempPrefix+final+"."+hex.EncodeToString(r[:])+".tmp")
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, "", err
	}
	return f, p, nil
}

// writeAtomic writes b to dir/name through a synced temp file and a rename,
// so a reader sees the whole file or none of it.
func writeAtomic(dir, name string, b []byte) error {
	f, tmp, err := createTemp(dir, name)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(dir)
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return err
	}
	return nil
}

// removeStaleTemps deletes temp files of this target's batches left by a
// crash. Best effort: a file it cannot remove is ignored by platforms anyway.
func (t *Target) removeStaleTemps() {
	list, _ := filepath.Glob(filepath.Join(t.cfg.Dir, tempPrefix+t.cfg.FilePrefix+"*.tmp"))
	cut := t.now().Add(-tempGrace)
	for _, p := range list {
		if fi, err := os.Lstat(p); err == nil && fi.Mode().IsRegular() && fi.ModTime().Before(cut) {
			os.Remove(p)
		}
	}
}
