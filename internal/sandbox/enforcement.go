package sandbox

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/xuri/excelize/v2"
	"golang.org/x/text/encoding/simplifiedchinese"
)

// Enforcement simulates the city's 综合行政执法局 (comprehensive administrative
// law-enforcement bureau) as a file source: its 前置机 exports 行政处罚
// (administrative penalties) as GBK-encoded CSV or as XLSX into a drop folder,
// which syncd's filedrop source reads.
//
// It holds decisions as rows under the national 2021 layout's Chinese column
// names, seeded from testdata/sandbox/enforcement.csv (UTF-8 in git). A drop
// exports the rows changed since the previous drop (the first: the whole
// seed), written to a .tmp name, synced and renamed, so a reader never sees
// half a file. Correct amends a held decision, which the next drop carries.
//
// The seed's deliberate flaws (all rows are 法人及非法人组织 in region 2111xx):
//   - invalid 统一社会信用代码: 盘环罚[2024]4号 (wrong check character),
//     盘综执罚〔2024〕23号 (wrong check character), 盘综执罚〔2024〕21号 (17 characters);
//   - full-width codes, valid once folded: 盘市监处罚(2024)5号, 盘市监处罚〔2024〕15号,
//     and the authority code of 盘应急罚〔2024〕7号; a full-width amount in 盘应急罚〔2024〕3号;
//   - no decision date: 盘综执罚〔2024〕26号;
//   - 盘环罚[2026]12号 is the 生态环境局's own decision 盘环罚〔2026〕12号, also dropped by
//     that bureau's system (cmd/syncd TestFileDropGBKPenalties): one record from two sources;
//   - the last row corrects 盘综执罚〔2024〕19号 (fine 2 万元 → 1.5 万元, 备注 says so).
//
// Amounts are in 万元 as the column says, or carry their unit ("5000元", "5万元",
// "3,000元"); document numbers mix 〔2024〕, [2024] and (2024). It is safe for
// concurrent use.
type Enforcement struct {
	mu        sync.Mutex
	header    []string
	rows      [][]string
	pending   []int // rows changed since the last drop, in change order
	rng       *rand.Rand
	now       func() time.Time
	seq       int // files written
	steps     int // corrections made
	malformed bool
}

// Columns of the enforcement export the simulator changes.
const (
	enfColDocNo   = "处罚决定书文号"
	enfColFacts   = "违法事实"
	enfColCat     = "处罚类别"
	enfColContent = "处罚内容"
	enfColFine    = "罚款金额（万元）"
	enfColRemark  = "备注"
	enfUnitCode   = "11211100386693646A" // 盘锦市综合行政执法局, the exporting unit
	enfSheet      = "行政处罚"
)

// LoadEnforcement reads a seed CSV (UTF-8, header row first) into a
// simulator whose choices follow seed. Every seed row is pending.
func LoadEnforcement(path string, seed int64) (*Enforcement, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load enforcement seed: %w", err)
	}
	r := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))))
	all, err := r.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("load enforcement seed %s: %w", path, err)
	}
	if len(all) == 0 {
		return nil, fmt.Errorf("load enforcement seed %s: no header row", path)
	}
	header := all[0]
	for _, col := range []string{enfColDocNo, enfColFacts, enfColContent, enfColFine, enfColRemark} {
		if !slices.Contains(header, col) {
			return nil, fmt.Errorf("load enforcement seed %s: no column %s", path, col)
		}
	}
	e := &Enforcement{
		header: header,
		rows:   all[1:],
		rng:    rand.New(rand.NewPCG(uint64(seed), 0x211100)),
		now:    time.Now,
	}
	for i := range e.rows {
		e.pending = append(e.pending, i)
	}
	return e, nil
}

// Len returns the number of decisions held.
func (e *Enforcement) Len() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.rows)
}

// Pending returns the rows the next drop will carry, as column → value.
func (e *Enforcement) Pending() []map[string]string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]map[string]string, len(e.pending))
	for i, idx := range e.pending {
		m := make(map[string]string, len(e.header))
		for c, h := range e.header {
			m[h] = e.rows[idx][c]
		}
		out[i] = m
	}
	return out
}

// SetMalformed makes every later drop also carry rows a reader cannot take
// apart: in CSV a short row and a row with a stray quote, in XLSX two rows
// wider than the header. They sit after the first good row.
func (e *Enforcement) SetMalformed(on bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.malformed = on
}

// MalformedRows is how many malformed rows a drop carries when switched on.
const MalformedRows = 2

// Correct amends one held decision, as a 复核 would: a fine gets a new
// amount (in 元) and content, anything else amended facts; 备注 says what
// changed. The next drop carries it. It returns the decision's document
// number.
func (e *Enforcement) Correct() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.steps++
	i := e.rng.IntN(len(e.rows))
	row := slices.Clone(e.rows[i])
	col := func(name string) int { return slices.Index(e.header, name) }
	if row[col(enfColCat)] == "罚款" {
		yuan := 500 * (2 + e.rng.IntN(99))
		row[col(enfColFine)] = fmt.Sprintf("%d元", yuan)
		row[col(enfColContent)] = fmt.Sprintf("罚款人民币%d元。", yuan)
		row[col(enfColRemark)] = fmt.Sprintf("更正%d：经复核，罚款金额更正为%d元", e.steps, yuan)
	} else {
		facts, _, _ := strings.Cut(row[col(enfColFacts)], "【更正")
		row[col(enfColFacts)] = fmt.Sprintf("%s【更正%d】经复核，补充认定违法事实，处罚结论不变。", facts, e.steps)
		row[col(enfColRemark)] = fmt.Sprintf("更正%d：补充违法事实", e.steps)
	}
	e.rows[i] = row
	if !slices.Contains(e.pending, i) {
		e.pending = append(e.pending, i)
	}
	return row[col(enfColDocNo)]
}

// DropCSV writes the pending rows into dir as one GBK-encoded CSV (CRLF line
// ends, as the bureau's Windows 前置机 writes them) and returns its path; ""
// when nothing is pending. A row GBK cannot encode fails the drop, which
// then keeps its rows pending.
func (e *Enforcement) DropCSV(dir string) (string, error) {
	return e.drop(dir, ".csv", e.renderCSV)
}

// DropXLSX writes the pending rows into dir as one XLSX workbook with a
// single sheet 行政处罚 and returns its path; "" when nothing is pending.
func (e *Enforcement) DropXLSX(dir string) (string, error) {
	return e.drop(dir, ".xlsx", e.renderXLSX)
}

// drop renders the pending rows and writes them atomically; the rows stop
// being pending only once the file is in place. Callers do not hold e.mu.
func (e *Enforcement) drop(dir, ext string, render func(rows [][]string, malformed bool) ([]byte, error)) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.pending) == 0 {
		return "", nil
	}
	rows := make([][]string, len(e.pending))
	for i, idx := range e.pending {
		rows[i] = e.rows[idx]
	}
	body, err := render(rows, e.malformed)
	if err != nil {
		return "", fmt.Errorf("enforcement drop: %w", err)
	}
	name := fmt.Sprintf("XZCF_%s_%s_%04d%s", enfUnitCode, e.now().In(beijing).Format("20060102150405"), e.seq+1, ext)
	path := filepath.Join(dir, name)
	if err := enfWriteAtomic(path, body); err != nil {
		return "", fmt.Errorf("enforcement drop: %w", err)
	}
	e.seq++
	e.pending = e.pending[:0]
	return path, nil
}

// enfWriteAtomic writes path through path.tmp, which readers of drop
// folders skip, synced before the rename.
func enfWriteAtomic(path string, body []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(body)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// renderCSV writes header and rows as CSV and encodes it in GBK.
func (e *Enforcement) renderCSV(rows [][]string, malformed bool) ([]byte, error) {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.UseCRLF = true
	w.Write(e.header)
	for i, r := range rows {
		w.Write(r)
		if i == 0 && malformed {
			w.Flush()
			// A row cut short, and one with a quote inside an unquoted field:
			// both written raw, as a broken export would.
			b.WriteString(enfRawLine(r[:5]))
			bad := slices.Clone(r)
			bad[0] = `盘锦市"某"单位`
			b.WriteString(enfRawLine(bad))
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return nil, err
	}
	out, err := simplifiedchinese.GBK.NewEncoder().Bytes(b.Bytes())
	if err != nil {
		return nil, fmt.Errorf("not representable in GBK: %w", err)
	}
	return out, nil
}

// renderXLSX writes header and rows into a one-sheet workbook, every cell a
// string as the bureau's export writes them.
func (e *Enforcement) renderXLSX(rows [][]string, malformed bool) ([]byte, error) {
	f := excelize.NewFile()
	defer f.Close()
	if err := f.SetSheetName(f.GetSheetName(0), enfSheet); err != nil {
		return nil, err
	}
	line := 0
	put := func(cells []string) error {
		line++
		vals := make([]any, len(cells))
		for i, c := range cells {
			vals[i] = c
		}
		cell, err := excelize.CoordinatesToCellName(1, line)
		if err != nil {
			return err
		}
		return f.SetSheetRow(enfSheet, cell, &vals)
	}
	if err := put(e.header); err != nil {
		return nil, err
	}
	for i, r := range rows {
		if err := put(r); err != nil {
			return nil, err
		}
		if i == 0 && malformed {
			for _, extra := range [][]string{{"多余列"}, {"多余列1", "多余列2", "多余列3"}} {
				if err := put(append(slices.Clone(r), extra...)); err != nil {
					return nil, err
				}
			}
		}
	}
	var b bytes.Buffer
	if _, err := f.WriteTo(&b); err != nil {
		return nil, err
	}
	if b.Len() == 0 {
		return nil, errors.New("empty workbook")
	}
	return b.Bytes(), nil
}

// enfRawLine joins cells with commas and no quoting, the way a broken
// export does; commas and line breaks inside cells are dropped so the line
// keeps its cell count.
func enfRawLine(cells []string) string {
	clean := strings.NewReplacer(",", "，", "\r", "", "\n", "")
	out := make([]string, len(cells))
	for i, c := range cells {
		out[i] = clean.Replace(c)
	}
	return strings.Join(out, ",") + "\r\n"
}
