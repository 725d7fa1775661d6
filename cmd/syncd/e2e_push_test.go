package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/panjin-gov/syncd/internal/sandbox"
	"github.com/panjin-gov/syncd/internal/testdb"
)

// A platform reached by file exchange: syncd writes GBK CSV batches with
// manifests into the exchange folder; the simulated platform answers with
// receipt files; a dry run before shows the same items and sends nothing.
func TestFileExchangePlatform(t *testing.T) {
	items := cleanItems(40)
	items[5]["status"] = "撤销" // revoked before ever being sent: skipped
	dir := t.TempDir()
	e := newEnv(t, items, 20)
	e.addTargets(fmt.Sprintf(`  exchange:
    type: file
    schedule: "@every 1h"
    batch_size: 15
    retry: {max_attempts: 3, initial: 10ms, max: 50ms}
    file: {dir: %q, format: csv, encoding: gbk, receipt_timeout: 10s, poll_interval: 20ms}
`, dir))
	e.mustSyncd("pull", "discipline")

	out := e.mustSyncd("push", "exchange", "--dry-run")
	if !strings.Contains(out, "would send 39, would skip 1") || !strings.Contains(out, `"CF_WSH":"盘纪处〔2026〕1000号"`) {
		t.Fatalf("dry run:\n%s", out)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "*.manifest.json")); len(m) != 0 {
		t.Fatalf("dry run wrote %d batches", len(m))
	}

	platform := sandbox.NewFilePlatform(dir, "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go platform.Run(ctx, 20*time.Millisecond)
	out = e.mustSyncd("push", "exchange")
	if !strings.Contains(out, "accepted 39") {
		t.Fatalf("push:\n%s", out)
	}
	if h := platform.Holdings(); len(h) != 39 {
		t.Fatalf("platform holds %d, want 39", len(h))
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "processed", "*.manifest.json")); len(m) != 3 {
		t.Fatalf("%d batches processed, want 3 (39 items in batches of 15)", len(m))
	}
	out = e.mustSyncd("ledger", "exchange")
	if !strings.Contains(out, "accepted 39") || !strings.Contains(out, "skipped  1") {
		t.Fatalf("ledger:\n%s", out)
	}
}

// addTargets appends target entries (YAML indented under targets:) to the
// config, whose last section is targets.
func (e *env) addTargets(yaml string) {
	e.t.Helper()
	f, err := os.OpenFile(e.cfgPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(yaml); err != nil {
		e.t.Fatal(err)
	}
}

// A 前置库 platform that lost rows and never answered: `syncd ledger
// --requeue-sent-older-than` puts the versions back in the queue, the next
// push writes them again, and their feedback then lands in the ledger.
func TestRequeueSentVersionsAPlatformLost(t *testing.T) {
	ctx := context.Background()
	dsn, db := testdb.Postgres(t)
	platform, err := sandbox.NewFrontDB(ctx, db, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, cleanItems(12), 20)
	e.environ = append(e.environ, "E2E_FRONT_DSN="+dsn)
	e.addTargets(`  front:
    type: database
    schedule: "@every 1h"
    profile: {base: liaoning}
    database: {driver: postgres, dsn_env: E2E_FRONT_DSN}
`)
	e.mustSyncd("pull", "discipline")
	if out := e.mustSyncd("push", "front"); !strings.Contains(out, "sent (awaiting feedback) 12") {
		t.Fatalf("push:\n%s", out)
	}
	testdb.Exec(t, db, "DELETE FROM xy_sjjh") // the platform loses the rows unanswered
	out := e.mustSyncd("ledger", "front", "--requeue-sent-older-than", "1ns")
	if !strings.Contains(out, "requeued 12 versions") || !strings.Contains(out, "pending  12") {
		t.Fatalf("requeue:\n%s", out)
	}
	if out := e.mustSyncd("push", "front"); !strings.Contains(out, "sent (awaiting feedback) 12") {
		t.Fatalf("push after requeue:\n%s", out)
	}
	if n, err := platform.Process(ctx); err != nil || n != 12 {
		t.Fatalf("platform processed %d: %v", n, err)
	}
	e.mustSyncd("push", "front")
	out = e.mustSyncd("ledger", "front")
	if !strings.Contains(out, "accepted 12") || !strings.Contains(out, "sent     0") || !strings.Contains(out, "pending  0") {
		t.Fatalf("ledger after feedback:\n%s", out)
	}
	if len(platform.Holdings()) != 12 {
		t.Fatalf("platform holds %d", len(platform.Holdings()))
	}
}

// A push killed with SIGKILL after the platform applied a batch and before
// the ledger recorded it: the restart sends that batch again under the same
// idempotency keys, the platform answers them as duplicates, and every
// version ends accepted exactly once in the ledger and held once.
func TestKillBetweenSendAndLedger(t *testing.T) {
	const n = 120 // the target's batch_size is 50
	e := newEnv(t, cleanItems(n), 200)
	e.mustSyncd("pull", "discipline")
	out, err := e.syncd([]string{"SYNCD_TEST_KILL_AFTER_SEND=2"}, "push", "liaoning")
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("push was not killed: %v\n%s", err, out)
	}
	if h := len(e.platform.Holdings()); h != 100 {
		t.Fatalf("platform holds %d after two batches, want 100", h)
	}
	if got := e.count("SELECT count() FROM {db}.push_ledger WHERE outcome = 'accepted'"); got != 50 {
		t.Fatalf("ledger has %d accepted before the restart, want 50 (batch 2 unrecorded)", got)
	}
	e.mustSyncd("push", "liaoning")
	if h := len(e.platform.Holdings()); h != n {
		t.Fatalf("platform holds %d, want %d", h, n)
	}
	if st := e.platform.Stats(); st.Duplicates != 50 || st.Accepted != n {
		t.Fatalf("platform stats %+v: want batch 2's 50 as duplicates and %d applied once", st, n)
	}
	if got := e.count("SELECT uniqExact(record_id, version) FROM {db}.push_ledger WHERE outcome = 'accepted'"); got != n {
		t.Fatalf("%d versions accepted in the ledger, want %d", got, n)
	}
	if out := e.mustSyncd("ledger", "liaoning"); !strings.Contains(out, "pending  0") {
		t.Fatalf("ledger:\n%s", out)
	}
}
