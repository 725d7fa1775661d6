// Package filedrop reads a 前置机-style drop folder: a bureau drops CSV,
// JSON-lines and XLSX files of 行政处罚 (administrative penalties) into Dir,
// and each row becomes one record.Raw.
//
// A file is claimed by renaming it into Dir/processing (oldest first), read
// a bounded number of rows per Fetch, and moved to Dir/done once its last
// batch is committed; a file that cannot be opened or decoded at all goes to
// Dir/failed with a <name>.reason.txt. The done/ names carry the file's
// checksum, so an identical file dropped again is not ingested twice.
//
// It depends only on connectors and record.
package filedrop

import (
	"bufio"
	"bytes"
	"context"
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
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/xuri/excelize/v2"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/transform"

	"github.com/panjin-gov/syncd/internal/connectors"
	"github.com/panjin-gov/syncd/internal/record"
)

// Sub-folders of Dir.
const (
	ProcessingDir = "processing"
	DoneDir       = "done"
	FailedDir     = "failed"
)

// Config is the file-drop source's part of a source's config.
type Config struct {
	Dir string `mapstructure:"dir"`
	// Pattern is a filepath.Match glob on file names in Dir.
	Pattern string `mapstructure:"pattern"`
	// Encoding of CSV and JSONL files: auto, utf-8, gbk or gb18030. auto
	// reads valid UTF-8 (with or without BOM) as utf-8, anything else as
	// gb18030 (a superset of GBK).
	Encoding string `mapstructure:"encoding"`
	// SettleTime: a file modified within it may still be being written and
	// is left alone.
	SettleTime time.Duration `mapstructure:"settle_time"`
	// Sheet is the XLSX sheet to read; empty means the first.
	Sheet string `mapstructure:"sheet"`
}

// SetDefaults fills unset fields.
func (c *Config) SetDefaults() {
	if c.Pattern == "" {
		c.Pattern = "*"
	}
	if c.Encoding == "" {
		c.Encoding = "auto"
	}
	if c.SettleTime == 0 {
		c.SettleTime = 2 * time.Second
	}
}

// Validate checks the config without I/O.
func (c *Config) Validate() error {
	var errs []error
	if c.Dir == "" {
		errs = append(errs, errors.New("dir: required"))
	}
	if _, err := filepath.Match(c.Pattern, ""); err != nil {
		errs = append(errs, fmt.Errorf("pattern: %q is not a valid glob", c.Pattern))
	}
	switch strings.ToLower(c.Encoding) {
	case "auto", "utf-8", "utf8", "gbk", "gb18030":
	default:
		errs = append(errs, fmt.Errorf("encoding: %q not one of auto, utf-8, gbk, gb18030", c.Encoding))
	}
	if c.SettleTime < 0 {
		errs = append(errs, errors.New("settle_time: must be positive"))
	}
	return errors.Join(errs...)
}

// Source reads one drop folder. Its methods may be called from several
// goroutines.
type Source struct {
	name string
	cfg  Config

	mu         sync.Mutex
	cur        *openFile
	doneSums   map[string]bool // checksums (16 hex) of files in done/
	duplicates int
}

var (
	_ connectors.Source    = (*Source)(nil)
	_ connectors.Committer = (*Source)(nil)
)

// New makes a source named name over cfg.Dir, creating its processing,
// done and failed folders if missing.
func New(name string, cfg Config) (*Source, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	for _, d := range []string{ProcessingDir, DoneDir, FailedDir} {
		if err := os.MkdirAll(filepath.Join(cfg.Dir, d), 0o755); err != nil {
			return nil, fmt.Errorf("source %s: %w", name, err)
		}
	}
	s := &Source{name: name, cfg: cfg, doneSums: map[string]bool{}}
	entries, err := os.ReadDir(filepath.Join(cfg.Dir, DoneDir))
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", name, err)
	}
	for _, e := range entries {
		if sum, ok := doneSum(e.Name()); ok {
			s.doneSums[sum] = true
		}
	}
	return s, nil
}

// Duplicates is the number of dropped files found identical to one already
// done and moved aside without being read.
func (s *Source) Duplicates() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.duplicates
}

// cursor is the checksum of the file being read and the count of its data
// rows already delivered.
type cursor struct {
	File string `json:"file"`
	Row  int    `json:"row"`
}

func (c cursor) String() string {
	b, _ := json.Marshal(c)
	return string(b)
}

// token is the Batch.Token: the claimed file and whether the batch ends it.
type token struct {
	name     string // base name in processing/
	sum      string
	finished bool
}

// Fetch returns up to max rows after cur, claiming the next settled file
// when none is being read.
func (s *Source) Fetch(ctx context.Context, cur string, max int) (connectors.Batch, error) {
	var c cursor
	if cur != "" {
		if err := json.Unmarshal([]byte(cur), &c); err != nil {
			return connectors.Batch{}, fmt.Errorf("source %s: bad cursor %q: %w", s.name, cur, connectors.ErrPermanent)
		}
	}
	if max <= 0 {
		max = 100
	}
	s.mu.Lock()
	defer s.mu.Unlock()

	if s.cur == nil {
		if err := s.openNext(ctx, c); err != nil {
			return connectors.Batch{}, err
		}
		if s.cur == nil {
			more, err := s.waiting()
			return connectors.Batch{Next: cur, More: more}, err
		}
	}
	f := s.cur
	want := 0
	if c.File == f.sum {
		want = c.Row
	}
	if err := f.seek(want); err != nil {
		s.dropCurrent()
		return connectors.Batch{}, fmt.Errorf("source %s: %s: %w", s.name, f.name, err)
	}
	now := time.Now()
	b := connectors.Batch{Records: make([]record.Raw, 0, min(max, 1024))}
	for len(b.Records) < max {
		r, err := f.take()
		if err == io.EOF {
			break
		}
		if err != nil {
			s.dropCurrent()
			return connectors.Batch{}, fmt.Errorf("source %s: %s row %d: %w", s.name, f.name, f.pos+1, err)
		}
		b.Records = append(b.Records, record.Raw{
			Source:    s.name,
			Key:       f.sum + ":" + strconv.Itoa(f.pos),
			Payload:   r.payload,
			Encoding:  "utf-8",
			FetchedAt: now,
			Problem:   r.problem,
		})
	}
	if err := f.peek(); err != nil {
		s.dropCurrent()
		return connectors.Batch{}, fmt.Errorf("source %s: %s: %w", s.name, f.name, err)
	}
	finished := f.eof && f.pending == nil
	b.Token = &token{name: f.name, sum: f.sum, finished: finished}
	b.Next = cursor{File: f.sum, Row: f.pos}.String()
	if !finished {
		b.More = true
	} else {
		more, err := s.waiting()
		if err != nil {
			return connectors.Batch{}, err
		}
		b.More = more
	}
	return b, nil
}

// Commit moves a finished file from processing/ to done/ and records its
// checksum. Batches that do not end a file need nothing.
func (s *Source) Commit(_ context.Context, b connectors.Batch) error {
	tok, ok := b.Token.(*token)
	if !ok || !tok.finished {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur != nil && s.cur.name == tok.name && s.cur.sum == tok.sum {
		s.dropCurrent()
	}
	src := filepath.Join(s.cfg.Dir, ProcessingDir, tok.name)
	if _, err := os.Stat(src); errors.Is(err, fs.ErrNotExist) {
		return nil // committed already
	}
	if err := os.Rename(src, s.donePath(tok.sum, tok.name)); err != nil {
		return fmt.Errorf("source %s: move %s to done: %w", s.name, tok.name, err)
	}
	s.doneSums[tok.sum] = true
	return nil
}

// Close closes the file being read; it stays in processing/ and is resumed
// by the next Source over Dir.
func (s *Source) Close(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropCurrent()
	return nil
}

func (s *Source) dropCurrent() {
	if s.cur != nil {
		s.cur.close()
		s.cur = nil
	}
}

// openNext opens a file left in processing/ by an earlier run, else claims
// the oldest settled file in Dir. Duplicates and unreadable files are moved
// aside and the next one tried. s.cur stays nil when nothing is ready.
func (s *Source) openNext(ctx context.Context, c cursor) error {
	proc := filepath.Join(s.cfg.Dir, ProcessingDir)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		left, err := s.candidates(proc, false)
		if err != nil {
			return fmt.Errorf("source %s: %w", s.name, err)
		}
		var name string
		if len(left) > 0 {
			name = left[0].name
		} else {
			ready, err := s.candidates(s.cfg.Dir, true)
			if err != nil {
				return fmt.Errorf("source %s: %w", s.name, err)
			}
			if len(ready) == 0 {
				return nil
			}
			name = ready[0].name
			if err := os.Rename(filepath.Join(s.cfg.Dir, name), filepath.Join(proc, name)); err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					continue // claimed by someone else meanwhile
				}
				return fmt.Errorf("source %s: claim %s: %w", s.name, name, err)
			}
		}
		path := filepath.Join(proc, name)
		sum, enc, valid, err := scan(path, s.cfg.Encoding)
		if err != nil {
			if err := s.fail(name, fmt.Sprintf("cannot read: %v", err)); err != nil {
				return err
			}
			continue
		}
		if s.doneSums[sum] && len(left) == 0 {
			if err := os.Rename(path, s.donePath(sum, "dup-"+name)); err != nil {
				return fmt.Errorf("source %s: move duplicate %s to done: %w", s.name, name, err)
			}
			s.duplicates++
			continue
		}
		f := &openFile{name: name, path: path, sum: sum, enc: enc, valid: valid, sheet: s.cfg.Sheet}
		if err := f.open(); err != nil {
			if err := s.fail(name, err.Error()); err != nil {
				return err
			}
			continue
		}
		s.cur = f
		return nil
	}
}

// fail moves a file from processing/ to failed/ with a reason file.
func (s *Source) fail(name, reason string) error {
	failed := filepath.Join(s.cfg.Dir, FailedDir)
	dst := filepath.Join(failed, name)
	if _, err := os.Stat(dst); err == nil {
		dst = filepath.Join(failed, time.Now().Format("20060102T150405.000000000")+"-"+name)
	}
	if err := os.Rename(filepath.Join(s.cfg.Dir, ProcessingDir, name), dst); err != nil {
		// Left in processing/: retried on the next Fetch.
		return fmt.Errorf("source %s: move %s to failed: %w", s.name, name, err)
	}
	if err := os.WriteFile(dst+".reason.txt", []byte(reason+"\n"), 0o644); err != nil {
		return fmt.Errorf("source %s: %w", s.name, err)
	}
	return nil
}

func (s *Source) donePath(sum, name string) string {
	base := time.Now().Format("20060102") + "-" + sum + "-" + name
	p := filepath.Join(s.cfg.Dir, DoneDir, base)
	for i := 1; ; i++ {
		if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
			return p
		}
		p = filepath.Join(s.cfg.Dir, DoneDir, fmt.Sprintf("%s.%d", base, i))
	}
}

// doneSum reads the checksum out of a done/ name "YYYYMMDD-<16 hex>-...".
func doneSum(name string) (string, bool) {
	if len(name) < 27 || name[8] != '-' || name[25] != '-' {
		return "", false
	}
	sum := name[9:25]
	if _, err := hex.DecodeString(sum); err != nil {
		return "", false
	}
	return sum, true
}

type candidate struct {
	name  string
	mtime time.Time
}

// candidates lists the files of dir the source would read, oldest first;
// settled drops those modified within SettleTime.
func (s *Source) candidates(dir string, settled bool) ([]candidate, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	var out []candidate
	for _, e := range entries {
		n := e.Name()
		if !e.Type().IsRegular() || ignored(n) {
			continue
		}
		if ok, _ := filepath.Match(s.cfg.Pattern, n); !ok {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // gone meanwhile
		}
		if settled && now.Sub(info.ModTime()) < s.cfg.SettleTime {
			continue
		}
		out = append(out, candidate{n, info.ModTime()})
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].mtime.Equal(out[j].mtime) {
			return out[i].mtime.Before(out[j].mtime)
		}
		return out[i].name < out[j].name
	})
	return out, nil
}

func (s *Source) waiting() (bool, error) {
	c, err := s.candidates(s.cfg.Dir, true)
	if err != nil {
		return false, fmt.Errorf("source %s: %w", s.name, err)
	}
	return len(c) > 0, nil
}

func ignored(name string) bool {
	return strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".tmp") || strings.HasSuffix(name, ".part")
}

// scan reads the file once for its checksum and whether it is valid UTF-8.
// It returns the checksum (16 hex), the encoding (auto resolved) and the
// validity.
func scan(path, enc string) (sum, encoding string, valid bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", "", false, err
	}
	defer f.Close()
	h := sha256.New()
	v := utf8Validator{valid: true}
	buf := make([]byte, 64<<10)
	for {
		n, err := f.Read(buf)
		h.Write(buf[:n])
		v.write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", "", false, err
		}
	}
	enc = strings.ToLower(enc)
	switch enc {
	case "auto":
		enc = "gb18030"
		if v.done() {
			enc = "utf-8"
		}
	case "utf8":
		enc = "utf-8"
	}
	return hex.EncodeToString(h.Sum(nil)[:8]), enc, v.done(), nil
}

// utf8Validator checks a byte stream for UTF-8 validity chunk by chunk.
type utf8Validator struct {
	valid bool
	tail  []byte // an incomplete rune at the end of the last chunk
}

func (v *utf8Validator) write(p []byte) {
	if !v.valid || len(p) == 0 {
		return
	}
	if len(v.tail) > 0 {
		p = append(v.tail, p...)
		v.tail = nil
	}
	// Hold back a rune cut by the chunk boundary.
	cut := len(p)
	for i := len(p) - 1; i >= 0 && i >= len(p)-utf8.UTFMax; i-- {
		if utf8.RuneStart(p[i]) {
			if !utf8.FullRune(p[i:]) {
				cut = i
			}
			break
		}
	}
	if !utf8.Valid(p[:cut]) {
		v.valid = false
		return
	}
	v.tail = append([]byte(nil), p[cut:]...)
}

func (v *utf8Validator) done() bool { return v.valid && len(v.tail) == 0 }

// row is one data row: its JSON payload, or why it could not be read.
type row struct {
	payload []byte
	problem string
}

// rowReader yields the data rows of one file; io.EOF at the end. Any other
// error means the file cannot be read further.
type rowReader interface {
	next() (row, error)
	close() error
}

// openFile is the file being read and the position in it.
type openFile struct {
	name, path, sum, enc, sheet string
	valid                       bool // the whole file is valid UTF-8 (scan)

	rows    rowReader
	pos     int  // data rows consumed, pending excluded
	pending *row // the row after pos, read ahead to see the end
	eof     bool
}

func (f *openFile) open() error {
	var err error
	switch strings.ToLower(filepath.Ext(f.name)) {
	case ".csv":
		f.rows, err = openCSV(f.path, f.enc, f.valid)
	case ".jsonl", ".ndjson":
		f.rows, err = openJSONL(f.path, f.enc, f.valid)
	case ".xlsx", ".xlsm":
		f.rows, err = openXLSX(f.path, f.sheet)
	default:
		err = fmt.Errorf("unsupported file type %q (want .csv, .jsonl or .xlsx)", filepath.Ext(f.name))
	}
	f.pos, f.pending, f.eof = 0, nil, false
	return err
}

func (f *openFile) close() {
	if f.rows != nil {
		f.rows.close()
		f.rows = nil
	}
}

func (f *openFile) take() (row, error) {
	if f.pending != nil {
		r := *f.pending
		f.pending = nil
		f.pos++
		return r, nil
	}
	if f.eof {
		return row{}, io.EOF
	}
	r, err := f.rows.next()
	if err == io.EOF {
		f.eof = true
	}
	if err != nil {
		return row{}, err
	}
	f.pos++
	return r, nil
}

func (f *openFile) peek() error {
	if f.pending != nil || f.eof {
		return nil
	}
	r, err := f.rows.next()
	if err == io.EOF {
		f.eof = true
		return nil
	}
	if err != nil {
		return err
	}
	f.pending = &r
	return nil
}

// seek positions the file so the next row taken is data row want+1,
// reopening it to go back (a batch not stored is asked for again).
func (f *openFile) seek(want int) error {
	if want < f.pos {
		f.close()
		if err := f.open(); err != nil {
			return err
		}
	}
	for f.pos < want {
		if _, err := f.take(); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
	}
	return nil
}

// decoded opens path as UTF-8 text. valid says scan found the whole file
// valid UTF-8: it is then read as is, less a leading BOM, which is all the
// UTF-8 decoder would do to it (it only rewrites invalid sequences).
func decoded(path, enc string, valid bool) (*os.File, *bufio.Reader, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	var r io.Reader = fh
	switch {
	case enc == "gbk":
		r = transform.NewReader(fh, simplifiedchinese.GBK.NewDecoder())
	case enc == "gb18030":
		r = transform.NewReader(fh, simplifiedchinese.GB18030.NewDecoder())
	case valid:
		br := bufio.NewReaderSize(fh, 64<<10)
		if bom, _ := br.Peek(len(utf8BOM)); bytes.Equal(bom, utf8BOM) {
			br.Discard(len(utf8BOM))
		}
		return fh, br, nil
	default:
		r = transform.NewReader(fh, unicode.UTF8BOM.NewDecoder())
	}
	return fh, bufio.NewReaderSize(r, 64<<10), nil
}

var utf8BOM = []byte("\xef\xbb\xbf")

type csvReader struct {
	fh     *os.File
	r      *csv.Reader
	header []string
	obj    objectEncoder
}

func openCSV(path, enc string, valid bool) (*csvReader, error) {
	fh, r, err := decoded(path, enc, valid)
	if err != nil {
		return nil, err
	}
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		fh.Close()
		if err == io.EOF {
			return nil, errors.New("empty file: no header row")
		}
		return nil, fmt.Errorf("header row: %v", err)
	}
	header = trimAll(header)
	if err := checkHeader(header); err != nil {
		fh.Close()
		return nil, err
	}
	return &csvReader{fh: fh, r: cr, header: header, obj: newObjectEncoder(header)}, nil
}

func (c *csvReader) next() (row, error) {
	rec, err := c.r.Read()
	if err != nil {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return row{payload: []byte("{}"), problem: fmt.Sprintf("line %d: %v", pe.StartLine, pe.Err)}, nil
		}
		return row{}, err
	}
	if len(rec) != len(c.header) {
		line, _ := c.r.FieldPos(0)
		return row{payload: arrayPayload(rec), problem: fmt.Sprintf("line %d: %d columns, header has %d", line, len(rec), len(c.header))}, nil
	}
	return c.obj.row(rec), nil
}

func (c *csvReader) close() error { return c.fh.Close() }

type jsonlReader struct {
	fh   *os.File
	r    *bufio.Reader
	line int
}

func openJSONL(path, enc string, valid bool) (*jsonlReader, error) {
	fh, r, err := decoded(path, enc, valid)
	if err != nil {
		return nil, err
	}
	return &jsonlReader{fh: fh, r: r}, nil
}

func (j *jsonlReader) next() (row, error) {
	for {
		line, err := j.r.ReadBytes('\n')
		if err != nil && err != io.EOF {
			return row{}, err
		}
		if len(line) == 0 && err == io.EOF {
			return row{}, io.EOF
		}
		j.line++
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			if err == io.EOF {
				return row{}, io.EOF
			}
			continue // blank lines are not rows
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal(line, &obj) != nil || obj == nil {
			p, _ := json.Marshal(string(line))
			return row{payload: p, problem: fmt.Sprintf("line %d: not a JSON object", j.line)}, nil
		}
		return row{payload: line}, nil
	}
}

func (j *jsonlReader) close() error { return j.fh.Close() }

type xlsxReader struct {
	f      *excelize.File
	rows   *excelize.Rows
	header []string
	obj    objectEncoder
	line   int
}

func openXLSX(path, sheet string) (*xlsxReader, error) {
	f, err := excelize.OpenFile(path)
	if err != nil {
		return nil, fmt.Errorf("not an XLSX workbook: %v", err)
	}
	if sheet == "" {
		list := f.GetSheetList()
		if len(list) == 0 {
			f.Close()
			return nil, errors.New("workbook has no sheets")
		}
		sheet = list[0]
	}
	rows, err := f.Rows(sheet)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("sheet %q: %v", sheet, err)
	}
	x := &xlsxReader{f: f, rows: rows}
	if !rows.Next() {
		x.close()
		return nil, fmt.Errorf("sheet %q is empty: no header row", sheet)
	}
	x.line = 1
	h, err := rows.Columns()
	if err != nil {
		x.close()
		return nil, fmt.Errorf("sheet %q header row: %v", sheet, err)
	}
	x.header = trimAll(h)
	if err := checkHeader(x.header); err != nil {
		x.close()
		return nil, err
	}
	x.obj = newObjectEncoder(x.header)
	return x, nil
}

func (x *xlsxReader) next() (row, error) {
	for {
		if !x.rows.Next() {
			if err := x.rows.Error(); err != nil {
				return row{}, err
			}
			return row{}, io.EOF
		}
		x.line++
		cells, err := x.rows.Columns()
		if err != nil {
			return row{payload: []byte("{}"), problem: fmt.Sprintf("row %d: %v", x.line, err)}, nil
		}
		// Excel leaves out trailing empty cells: pad, and drop trailing
		// empties beyond the header.
		for len(cells) > len(x.header) && cells[len(cells)-1] == "" {
			cells = cells[:len(cells)-1]
		}
		if len(cells) == 0 {
			continue // an empty row is not a record
		}
		if len(cells) > len(x.header) {
			return row{payload: arrayPayload(cells), problem: fmt.Sprintf("row %d: %d columns, header has %d", x.line, len(cells), len(x.header))}, nil
		}
		for len(cells) < len(x.header) {
			cells = append(cells, "")
		}
		return x.obj.row(cells), nil
	}
}

func (x *xlsxReader) close() error {
	x.rows.Close()
	return x.f.Close()
}

func trimAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.TrimSpace(s)
	}
	return out
}

func checkHeader(h []string) error {
	seen := make(map[string]bool, len(h))
	for i, name := range h {
		if name == "" {
			return fmt.Errorf("header column %d is empty", i+1)
		}
		if seen[name] {
			return fmt.Errorf("header column %q appears twice", name)
		}
		seen[name] = true
	}
	return nil
}

// objectEncoder writes a row as a JSON object {header: value} keeping the
// file's column order, with the keys encoded once per file. Its output is
// byte for byte what encoding/json.Marshal gives for each key and value.
type objectEncoder struct {
	header []string
	keys   [][]byte // `"key":`
	keyLen int
}

func newObjectEncoder(header []string) objectEncoder {
	e := objectEncoder{header: header, keys: make([][]byte, len(header))}
	for i, h := range header {
		k, _ := appendJSONString(nil, h)
		e.keys[i] = append(k, ':')
		e.keyLen += len(e.keys[i])
	}
	return e
}

// row encodes values (as many as the header has). A value that is not
// valid UTF-8 is written with U+FFFD, like encoding/json, and makes the row
// a problem.
func (e *objectEncoder) row(values []string) row {
	n := e.keyLen + len(values)*3 + 2
	for _, v := range values {
		n += len(v)
	}
	b := make([]byte, 0, n+n/16)
	b = append(b, '{')
	bad := ""
	for i, v := range values {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, e.keys[i]...)
		var valid bool
		b, valid = appendJSONString(b, v)
		if !valid && bad == "" {
			bad = fmt.Sprintf("column %q is not valid UTF-8", e.header[i])
		}
	}
	b = append(b, '}')
	return row{payload: b, problem: bad}
}

// appendJSONString is connectors.AppendJSONString for a string.
func appendJSONString(b []byte, s string) ([]byte, bool) { return connectors.AppendJSONString(b, s) }

// arrayPayload keeps the cells of a row that cannot be an object, so the
// reject shows what was sent.
func arrayPayload(values []string) []byte {
	p, _ := json.Marshal(values)
	return p
}
