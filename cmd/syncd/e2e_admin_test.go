package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The admin API of a running daemon: health, readiness, status with circuit
// states, Prometheus metrics, data quality, and running a job on demand only
// with the operator token; SIGTERM then stops the daemon cleanly.
func TestAdminAPIOfARunningDaemon(t *testing.T) {
	e := newEnv(t, cleanItems(20), 10)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	const token = "e2e-admin-token"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, syncdBin, "--config", e.cfgPath, "run")
	cmd.Env = append(append([]string{}, e.environ...), "SYNCD_ADMIN_LISTEN="+addr, "SYNCD_ADMIN_TOKEN="+token)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	base := "http://" + addr
	get := func(path string) (int, string) {
		resp, err := http.Get(base + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for i := 0; ; i++ {
		if code, _ := get("/readyz"); code == 200 {
			break
		}
		if i == 200 {
			t.Fatalf("daemon not ready:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, body := get("/healthz"); code != 200 || !strings.Contains(body, "ok") {
		t.Fatalf("healthz %d %s", code, body)
	}
	// The first pull runs at start; wait for it in the status.
	var status struct {
		Jobs     map[string]struct{ Runs int } `json:"jobs"`
		Circuits map[string]string             `json:"circuits"`
	}
	for i := 0; ; i++ {
		_, body := get("/api/v1/status")
		if err := json.Unmarshal([]byte(body), &status); err != nil {
			t.Fatalf("status is not JSON: %s", body)
		}
		if status.Jobs["pull:discipline"].Runs > 0 {
			break
		}
		if i == 200 {
			t.Fatalf("pull never ran: %s", body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if status.Circuits["liaoning"] != "closed" {
		t.Fatalf("circuits %v", status.Circuits)
	}
	// Running a job needs the operator token.
	post := func(path, tok string) int {
		req, _ := http.NewRequest(http.MethodPost, base+path, nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post("/api/v1/jobs/push:liaoning/run", ""); code != http.StatusUnauthorized {
		t.Fatalf("job run without a token: %d", code)
	}
	if code := post("/api/v1/jobs/push:nowhere/run", token); code != http.StatusNotFound {
		t.Fatalf("unknown job: %d", code)
	}
	if code := post("/api/v1/jobs/push:liaoning/run", token); code != http.StatusOK && code != http.StatusAccepted {
		t.Fatalf("job run: %d", code)
	}
	for i := 0; len(e.platform.Holdings()) < 20; i++ {
		if i == 200 {
			t.Fatalf("push run on demand delivered %d of 20", len(e.platform.Holdings()))
		}
		time.Sleep(50 * time.Millisecond)
	}
	_, metrics := get("/metrics")
	for _, want := range []string{`syncd_job_runs_total{job="pull:discipline",result="ok"}`, `syncd_circuit_open{target="liaoning"} 0`,
		`syncd_records_total{job="pull:discipline",outcome="stored"} 20`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s:\n%s", want, metrics)
		}
	}
	if code, body := get("/api/v1/quality?since=2026-01-01"); code != 200 || !strings.Contains(body, `"valid_ingest_rate":1`) {
		t.Fatalf("quality %d %s", code, body)
	}
	if code, _ := get("/api/v1/quality?since=yesterday"); code != http.StatusBadRequest {
		t.Fatalf("bad since: %d", code)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("daemon did not stop cleanly on SIGTERM: %v\n%s", err, out.String())
	}
}

// syncd status shows each source's cursor and each target's watermark and
// ledger counts.
func TestStatusCommand(t *testing.T) {
	e := newEnv(t, cleanItems(15), 10)
	out := e.mustSyncd("status")
	if !strings.Contains(out, "(never pulled)") || !strings.Contains(out, "(never pushed)") {
		t.Fatalf("status before any run:\n%s", out)
	}
	e.mustSyncd("pull", "discipline")
	e.mustSyncd("push", "liaoning")
	out = e.mustSyncd("status")
	if strings.Contains(out, "(never") || !strings.Contains(out, ": 15 records") {
		t.Fatalf("status after a round:\n%s", out)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "liaoning ") {
			f := strings.Fields(line)
			if len(f) != 8 || f[3] != "15" || f[7] != "0" {
				t.Fatalf("target line %q: want 15 accepted, 0 pending", line)
			}
			return
		}
	}
	t.Fatalf("no target line:\n%s", out)
}
