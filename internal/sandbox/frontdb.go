package sandbox

import (
	"context"
	"database/sql"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// FrontDBFields are the columns of the simulated provincial front table
// besides its system columns: the 信用辽宁-style field names of syncd's
// built-in "liaoning" profile.
var FrontDBFields = []string{
	"xdrmc", "xdrlb", "tyshxydm", "zjlx", "zjhm", "fddbr", "jdswh", "wfxwlx", "wfss", "cfyj", "cflb",
	"cfnr", "fkje", "mswfsdje", "cfjdrq", "cfyxq", "gsjzrq", "cfjg", "cfjgdm", "sjlydw", "sjlydwdm", "bz",
	"xxlb", "yzcd", "xzqhdm",
}

// fdbRequired must be present in an add or update row.
var fdbRequired = []string{"xdrmc", "xdrlb", "jdswh", "cfjdrq", "cfjg"}

// Feedback codes of the simulated front database.
const (
	FrontCodeMissing   = "YW01" // 疑问数据: 必填项缺失
	FrontCodeBadUSCC   = "YW02" // 疑问数据: 统一社会信用代码校验错误
	FrontCodeBadDate   = "YW03" // 疑问数据: 日期格式错误
	FrontCodeUnmatched = "WGL1" // 未关联数据: 撤回的记录在平台不存在
	FrontCodeSimulated = "YW99" // 模拟拒收
)

// FrontDB simulates a provincial platform (信用辽宁-like) reached in the
// GB/T 39443 database style: syncd inserts rows into the front table
// xy_sjjh, the platform picks them up (Process), keeps what it accepts and
// writes one feedback row per row into xy_sjjh_fk: clzt 1 = accepted, 0 =
// 疑问数据/未关联数据 with a code. Process is safe to call concurrently with
// syncd's inserts.
type FrontDB struct {
	db     *sql.DB
	driver string // postgres or mysql
	log    *zap.Logger

	mu         sync.Mutex
	lastID     int64
	holdings   map[string]Holding
	versions   map[string]uint64
	seen       map[string]bool // keys already processed (duplicate rows)
	rejectRate float64
	silent     bool // stop answering (platform down)
	stats      Stats
}

// NewFrontDB creates the front and feedback tables (if absent) in db.
// driver is "postgres" or "mysql".
func NewFrontDB(ctx context.Context, db *sql.DB, driver string) (*FrontDB, error) {
	f := &FrontDB{db: db, driver: driver, log: zap.NewNop(), holdings: map[string]Holding{}, versions: map[string]uint64{}, seen: map[string]bool{}}
	id, text, ts := "BIGSERIAL PRIMARY KEY", "TEXT", "TIMESTAMPTZ"
	if driver == "mysql" {
		id, text, ts = "BIGINT AUTO_INCREMENT PRIMARY KEY", "TEXT", "DATETIME(6)"
	}
	cols := []string{"id " + id, "ywid VARCHAR(100) NOT NULL", "czlx VARCHAR(4) NOT NULL", "pch VARCHAR(64) NOT NULL", "rksj " + ts + " NOT NULL"}
	for _, c := range FrontDBFields {
		cols = append(cols, c+" "+text)
	}
	stmts := []string{
		"CREATE TABLE IF NOT EXISTS xy_sjjh (" + strings.Join(cols, ", ") + ")",
		"CREATE TABLE IF NOT EXISTS xy_sjjh_fk (id " + id + ", ywid VARCHAR(100) NOT NULL, clzt VARCHAR(2) NOT NULL, cwdm VARCHAR(16), cwxx VARCHAR(200), clsj " + ts + " NOT NULL)",
	}
	for _, s := range stmts {
		if _, err := db.ExecContext(ctx, s); err != nil {
			return nil, fmt.Errorf("front database: %w", err)
		}
	}
	return f, nil
}

// SetLogger sets the logger.
func (f *FrontDB) SetLogger(l *zap.Logger) { f.log = l }

// SetRejectRate makes the platform answer that share of valid rows (chosen
// by key, so a retry of the same key gets the same answer) as 疑问数据.
func (f *FrontDB) SetRejectRate(r float64) { f.mu.Lock(); f.rejectRate = r; f.mu.Unlock() }

// SetSilent stops (true) or resumes processing: rows wait unanswered.
func (f *FrontDB) SetSilent(s bool) { f.mu.Lock(); f.silent = s; f.mu.Unlock() }

// Holdings returns a copy of what the platform holds, by record_id.
func (f *FrontDB) Holdings() map[string]Holding {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]Holding, len(f.holdings))
	for k, v := range f.holdings {
		out[k] = v
	}
	return out
}

// Stats returns the counters.
func (f *FrontDB) Stats() Stats { f.mu.Lock(); defer f.mu.Unlock(); return f.stats }

// Run processes new rows every interval until ctx ends.
func (f *FrontDB) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := f.Process(ctx); err != nil {
				f.log.Warn("front database pick-up failed", zap.Error(err))
			} else if n > 0 {
				f.log.Info("front database rows processed", zap.Int("rows", n))
			}
		}
	}
}

// Process picks up the rows inserted since the last call, applies them and
// writes their feedback rows. It returns how many rows it processed.
func (f *FrontDB) Process(ctx context.Context) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.silent {
		return 0, nil
	}
	cols := append([]string{"id", "ywid", "czlx"}, FrontDBFields...)
	rows, err := f.db.QueryContext(ctx, "SELECT "+strings.Join(cols, ", ")+" FROM xy_sjjh WHERE id > "+f.ph(1)+" ORDER BY id", f.lastID)
	if err != nil {
		return 0, err
	}
	type row struct {
		id       int64
		key, op  string
		data     map[string]any
		code     string
		msg      string
		accepted bool
	}
	var batch []row
	for rows.Next() {
		vals := make([]sql.NullString, len(FrontDBFields))
		dest := []any{new(int64), new(string), new(string)}
		for i := range vals {
			dest = append(dest, &vals[i])
		}
		if err := rows.Scan(dest...); err != nil {
			rows.Close()
			return 0, err
		}
		r := row{id: *dest[0].(*int64), key: *dest[1].(*string), op: *dest[2].(*string), data: map[string]any{}}
		for i, v := range vals {
			if v.Valid && v.String != "" {
				r.data[FrontDBFields[i]] = v.String
			}
		}
		batch = append(batch, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	if len(batch) == 0 {
		return 0, nil
	}
	tx, err := f.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	now := time.Now()
	for i := range batch {
		r := &batch[i]
		r.accepted, r.code, r.msg = f.apply(r.key, r.op, r.data)
		status := "0"
		if r.accepted {
			status = "1"
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO xy_sjjh_fk (ywid, clzt, cwdm, cwxx, clsj) VALUES ("+
			f.ph(1)+", "+f.ph(2)+", "+f.ph(3)+", "+f.ph(4)+", "+f.ph(5)+")", r.key, status, r.code, r.msg, now); err != nil {
			return 0, err
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	f.lastID = batch[len(batch)-1].id
	return len(batch), nil
}

// apply validates and applies one row; f.mu is held.
func (f *FrontDB) apply(key, op string, data map[string]any) (ok bool, code, msg string) {
	f.stats.Received++
	i := strings.LastIndexByte(key, ':')
	version, err := strconv.ParseUint(key[i+1:], 10, 64)
	if i <= 0 || err != nil {
		f.stats.Rejected++
		return false, FrontCodeMissing, "ywid 不是 记录标识:版本"
	}
	id := key[:i]
	if f.seen[key] {
		f.stats.Duplicates++
		return true, "", "重复数据，已忽略"
	}
	f.seen[key] = true
	if op != "D" {
		for _, field := range fdbRequired {
			if s, _ := data[field].(string); s == "" {
				f.stats.Rejected++
				return false, FrontCodeMissing, "必填项缺失: " + field
			}
		}
		if s, _ := data["tyshxydm"].(string); s != "" && !validUSCC(s) {
			f.stats.Rejected++
			return false, FrontCodeBadUSCC, "统一社会信用代码校验错误"
		}
		if _, err := time.Parse("2006-01-02", data["cfjdrq"].(string)); err != nil {
			f.stats.Rejected++
			return false, FrontCodeBadDate, "处罚决定日期格式错误"
		}
		if f.rejectRate > 0 {
			h := fnv.New64a()
			h.Write([]byte(key))
			if float64(h.Sum64()%10000)/10000 < f.rejectRate {
				f.stats.Rejected++
				return false, FrontCodeSimulated, "模拟拒收"
			}
		}
	}
	if version < f.versions[id] {
		f.stats.Rejected++
		return false, FrontCodeMissing, "版本过旧"
	}
	switch op {
	case "D":
		if _, held := f.holdings[id]; !held {
			f.stats.Rejected++
			return false, FrontCodeUnmatched, "未关联数据: 平台无此记录"
		}
		delete(f.holdings, id)
	case "I", "U":
		f.holdings[id] = Holding{RecordID: id, Version: version, Op: map[string]string{"I": "add", "U": "update"}[op], Data: data}
	default:
		f.stats.Rejected++
		return false, FrontCodeMissing, "czlx 无效: " + op
	}
	f.versions[id] = version
	f.stats.Accepted++
	return true, "", ""
}

func (f *FrontDB) ph(n int) string {
	if f.driver == "mysql" {
		return "?"
	}
	return "$" + strconv.Itoa(n)
}
