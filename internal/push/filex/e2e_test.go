package filex_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/panjin-gov/syncd/internal/push"
	"github.com/panjin-gov/syncd/internal/push/filex"
	"github.com/panjin-gov/syncd/internal/sandbox"
	"github.com/panjin-gov/syncd/internal/store"
)

// sandboxPlatform runs the sandbox file platform over dir until the test ends.
// sandboxPlatform starts the sandbox file platform on dir, with faults set
// before it first looks at the folder.
func sandboxPlatform(t *testing.T, dir string, faults ...sandbox.FileFaults) *sandbox.FilePlatform {
	t.Helper()
	p := sandbox.NewFilePlatform(dir, "")
	for _, f := range faults {
		p.SetFaults(f)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); p.Run(ctx, 5*time.Millisecond) }()
	t.Cleanup(func() { cancel(); wg.Wait() })
	return p
}

func national(doc, name, uscc string) map[string]any {
	d := data(doc, name)
	d["CF_XDR_SHXYM"] = uscc
	return d
}

// filex.Target against the sandbox file platform, in both formats: adds
// (one with a bad code, one without a required field), an update, a
// withdraw, and a re-sent batch answered as duplicates.
func TestAgainstSandboxFilePlatform(t *testing.T) {
	for _, c := range []struct{ format, enc string }{{"jsonl", "utf-8"}, {"csv", "gbk"}} {
		t.Run(c.format+"-"+c.enc, func(t *testing.T) {
			dir := t.TempDir()
			p := sandboxPlatform(t, dir)
			tg := newTarget(t, filex.Config{Dir: dir, Format: c.format, Encoding: c.enc, FilePrefix: "PJ_"})
			missing := national("盘综执罚〔2024〕13号", "盘锦市教育局", "")
			delete(missing, "CF_JDRQ")
			batch1 := []push.Item{
				item("r1", 1, store.OpAdd, national("盘综执罚〔2024〕11号", "盘锦市兴隆台区住房和城乡建设局", "11211103251057028M")),
				item("r2", 1, store.OpAdd, national("盘环罚[2024]4号", "盘锦市大洼区水利局", "11211104950967696E")),
				item("r3", 1, store.OpAdd, missing),
				item("r4", 1, store.OpAdd, national("盘综执罚〔2024〕12号", "盘山县交通运输局", "11211122143666416L")),
			}
			ctx := context.Background()
			rs, err := tg.Send(ctx, "20260101T000000-0001", batch1)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]push.Receipt{}
			for _, r := range rs {
				got[r.Key] = r
			}
			if len(rs) != 4 || !got["r1:1"].Accepted || got["r2:1"].Code != sandbox.CodeBadUSCC || got["r3:1"].Code != sandbox.CodeMissingField || !got["r4:1"].Accepted {
				t.Fatalf("receipts %+v", rs)
			}
			upd := national("盘综执罚〔2024〕11号", "盘锦市兴隆台区住房和城乡建设局", "11211103251057028M")
			upd["CF_NR_FK"] = "1.5"
			batch2 := []push.Item{item("r1", 2, store.OpUpdate, upd), item("r4", 2, store.OpWithdraw, nil)}
			if rs, err := tg.Send(ctx, "20260101T000000-0002", batch2); err != nil || len(rs) != 2 || !rs[0].Accepted || !rs[1].Accepted {
				t.Fatalf("batch 2: %+v, %v", rs, err)
			}
			h := p.Holdings()
			if len(h) != 1 || h["r1"].Version != 2 || h["r1"].Data["CF_NR_FK"] != "1.5" || h["r1"].Data["CF_WSH"] != "盘综执罚〔2024〕11号" {
				t.Fatalf("holdings %+v", h)
			}
			// The platform took batch 2 away; sending it again under a new id
			// is answered as duplicates without effect.
			if rs, err := tg.Send(ctx, "20260101T000000-0003", batch2); err != nil || len(rs) != 2 || !rs[0].Accepted || !rs[1].Accepted {
				t.Fatalf("re-sent batch: %+v, %v", rs, err)
			}
			if st := p.Stats(); st.Records.Duplicates != 2 || st.Records.Batches != 3 || st.Mismatched != 0 || st.Corrupt != 0 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// A crash leaves a temp file and a batch file without its manifest: the
// platform reads neither, and the target removes its stale temp file.
func TestCrashLeftovers(t *testing.T) {
	dir := t.TempDir()
	p := sandbox.NewFilePlatform(dir, "")
	tmp := filepath.Join(dir, ".filex.PJ_b0.jsonl.a1b2c3.tmp")
	os.WriteFile(tmp, []byte(`{"op":"add","key":"x:1","CF_W`), 0o644)
	old := time.Now().Add(-time.Hour)
	os.Chtimes(tmp, old, old)
	os.WriteFile(filepath.Join(dir, "PJ_b1.jsonl"), []byte(`{"op":"add","key":"x:1"}`+"\n"), 0o644)
	if n, err := p.Scan(context.Background()); n != 0 || err != nil {
		t.Fatalf("platform read %d batches (%v) from leftovers", n, err)
	}
	if st := p.Stats(); st.Records.Received != 0 || st.Corrupt != 0 {
		t.Fatalf("stats %+v", st)
	}
	tg := newTarget(t, filex.Config{Dir: dir, FilePrefix: "PJ_", LateReceipts: filex.LateRetry, ReceiptTimeout: 20 * time.Millisecond})
	items := []push.Item{item("r1", 1, store.OpAdd, national("盘综执罚〔2024〕11号", "盘锦市教育局", "11211100501459522L"))}
	// The batch whose manifest never came is sent again, whole.
	if _, err := tg.Send(context.Background(), "b1", items); !errors.Is(err, filex.ErrNoReceipt) {
		t.Fatal(err)
	}
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale temp file not removed: %v", err)
	}
	if n, _ := p.Scan(context.Background()); n != 1 {
		t.Fatalf("platform read %d batches", n)
	}
	rs, err := tg.Send(context.Background(), "b1", items)
	if err != nil || len(rs) != 1 || !rs[0].Accepted {
		t.Fatalf("%+v %v", rs, err)
	}
}

// Faults of the platform as the target sees them.
func TestSandboxFaults(t *testing.T) {
	ctx := context.Background()
	items := func(v uint64) []push.Item {
		return []push.Item{
			item("r1", v, store.OpAdd, national("盘综执罚〔2024〕11号", "盘锦市教育局", "11211100501459522L")),
			item("r2", v, store.OpAdd, national("盘综执罚〔2024〕12号", "盘山县交通运输局", "11211122143666416L")),
		}
	}

	t.Run("delay", func(t *testing.T) {
		dir := t.TempDir()
		sandboxPlatform(t, dir, sandbox.FileFaults{Delay: 150 * time.Millisecond})
		tg := newTarget(t, filex.Config{Dir: dir, LateReceipts: filex.LateRetry, ReceiptTimeout: 50 * time.Millisecond})
		if _, err := tg.Send(ctx, "b1", items(1)); !errors.Is(err, filex.ErrNoReceipt) {
			t.Fatalf("before the delay: %v", err)
		}
		tg = newTarget(t, filex.Config{Dir: dir, ReceiptTimeout: 5 * time.Second})
		rs, err := tg.Send(ctx, "b1", items(1))
		if err != nil || len(rs) != 2 || !rs[0].Accepted || !rs[1].Accepted {
			t.Fatalf("after the delay: %+v %v", rs, err)
		}
	})

	t.Run("drop", func(t *testing.T) {
		dir := t.TempDir()
		p := sandboxPlatform(t, dir, sandbox.FileFaults{DropRate: 1})
		tg := newTarget(t, filex.Config{Dir: dir, LateReceipts: filex.LateRetry, ReceiptTimeout: 80 * time.Millisecond})
		if _, err := tg.Send(ctx, "b1", items(1)); !errors.Is(err, filex.ErrNoReceipt) {
			t.Fatalf("dropped: %v", err)
		}
		if len(p.Holdings()) != 2 || p.Stats().Dropped == 0 {
			t.Fatalf("a dropped batch is still applied: %+v", p.Stats())
		}
		p.SetFaults(sandbox.FileFaults{})
		rs, err := tg.Send(ctx, "b2", items(1))
		if err != nil || len(rs) != 2 || !rs[0].Accepted || rs[0].Message == "" {
			t.Fatalf("re-sent after a drop: %+v %v", rs, err)
		}
	})

	t.Run("reject", func(t *testing.T) {
		dir := t.TempDir()
		sandboxPlatform(t, dir, sandbox.FileFaults{RejectRate: 1})
		tg := newTarget(t, filex.Config{Dir: dir})
		rs, err := tg.Send(ctx, "b1", items(1))
		if err != nil || len(rs) != 2 || rs[0].Code != sandbox.CodeSimulated || rs[1].Code != sandbox.CodeSimulated {
			t.Fatalf("%+v %v", rs, err)
		}
	})

	t.Run("corrupt manifest", func(t *testing.T) {
		for _, mode := range []string{sandbox.CorruptReject, sandbox.CorruptIgnore} {
			dir := t.TempDir()
			tg := newTarget(t, filex.Config{Dir: dir, LateReceipts: filex.LateRetry, ReceiptTimeout: 30 * time.Millisecond})
			if _, err := tg.Send(ctx, "b1", items(1)); !errors.Is(err, filex.ErrNoReceipt) {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(dir, "b1.manifest.json"), []byte(`{"batch_id":"b1","file":`), 0o644)
			sandboxPlatform(t, dir, sandbox.FileFaults{CorruptManifest: mode})
			tg = newTarget(t, filex.Config{Dir: dir, ReceiptTimeout: 5 * time.Second})
			rs, err := tg.Send(ctx, "b1", items(1))
			switch mode {
			case sandbox.CorruptReject:
				// The platform may answer before the target rewrites the
				// manifest (refused) or after (accepted).
				if err != nil && !errors.Is(err, filex.ErrRefused) {
					t.Fatalf("%s: %v", mode, err)
				}
			case sandbox.CorruptIgnore:
				// The target rewrites the unreadable manifest; the platform
				// then reads the batch.
				if err != nil || len(rs) != 2 || !rs[0].Accepted {
					t.Fatalf("%s: %+v %v", mode, rs, err)
				}
			}
		}
	})
}
