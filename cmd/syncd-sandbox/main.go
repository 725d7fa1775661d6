// Command syncd-sandbox serves the simulators of internal/sandbox on one
// loopback listener, so `make run` can show records flowing from a source
// system through syncd to a provincial platform:
//
//	/discipline/api/v1/decisions   纪检监察 source, seeded from -seed
//	/liaoning/api/v1/records       信用辽宁-like platform
//	/discipline/admin/…, /liaoning/admin/…   faults, holdings, stats
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/panjin-gov/syncd/internal/sandbox"
)

// defaultPlatformToken is used when the token variable is empty. It is public
// on purpose: the sandbox only listens on loopback.
const defaultPlatformToken = "sandbox-dev-token"

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("syncd-sandbox", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:18080", "address to serve both simulators on")
	seedPath := fs.String("seed", "testdata/sandbox/discipline.jsonl", "JSON-lines seed of the discipline source")
	tokenEnv := fs.String("platform-token-env", "SYNCD_SANDBOX_PLATFORM_TOKEN", "environment variable holding the platform's bearer token")
	discTokenEnv := fs.String("discipline-token-env", "SYNCD_SANDBOX_DISCIPLINE_TOKEN", "environment variable holding the discipline source's bearer token (unset: no auth)")
	failRate := fs.Float64("fail-rate", 0, "share of requests both simulators answer 500")
	dropRate := fs.Float64("drop-rate", 0, "share of responses both simulators cut off halfway")
	rejectRate := fs.Float64("reject-rate", 0, "share of valid records the platform rejects with E900")
	delay := fs.Duration("delay", 0, "delay added before every answer")
	faultSeed := fs.Int64("fault-seed", 1, "seed of the fault injection")
	trickle := fs.Duration("trickle", 20*time.Second, "every interval, apply one correction or new decision to the source (0: off)")
	if err := fs.Parse(args); err != nil {
		return 2
	}

	log, err := newLogger()
	if err != nil {
		fmt.Fprintln(os.Stderr, "syncd-sandbox:", err)
		return 1
	}
	defer func() { _ = log.Sync() }()

	faults := sandbox.Faults{FailRate: *failRate, DropRate: *dropRate, Delay: *delay, Seed: *faultSeed, RejectRate: *rejectRate}
	if err := faults.Validate(); err != nil {
		log.Error("bad fault flags", zap.Error(err))
		return 2
	}
	items, err := sandbox.LoadSeed(*seedPath)
	if err != nil {
		log.Error("cannot load seed", zap.Error(err))
		return 1
	}

	disc := sandbox.NewDiscipline(items)
	disc.SetLogger(log.Named("discipline"))
	if tok := os.Getenv(*discTokenEnv); tok != "" {
		disc.RequireToken(tok)
		log.Info("discipline source requires a bearer token", zap.String("env", *discTokenEnv))
	}
	discFaults := faults
	discFaults.RejectRate = 0
	disc.SetFaults(discFaults)

	token := os.Getenv(*tokenEnv)
	if token == "" {
		token = defaultPlatformToken
		log.Info("platform token variable is empty: using the default token",
			zap.String("env", *tokenEnv), zap.String("token", defaultPlatformToken))
	} else {
		log.Info("platform token read from the environment", zap.String("env", *tokenEnv))
	}
	plat := sandbox.NewPlatform(token)
	plat.SetLogger(log.Named("liaoning"))
	plat.SetFaults(faults)

	mux := http.NewServeMux()
	mux.Handle("/discipline/", http.StripPrefix("/discipline", disc.Handler()))
	mux.Handle("/liaoning/", http.StripPrefix("/liaoning", plat.Handler()))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok\n")) })

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Error("cannot listen", zap.String("addr", *listen), zap.Error(err))
		return 1
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	base := "http://" + ln.Addr().String()
	log.Info("sandbox listening",
		zap.String("discipline", base+"/discipline/api/v1/decisions"),
		zap.String("platform", base+"/liaoning/api/v1/records"),
		zap.Int("seed_items", disc.Len()),
		zap.Float64("fail_rate", faults.FailRate), zap.Float64("drop_rate", faults.DropRate),
		zap.Float64("reject_rate", faults.RejectRate), zap.Duration("delay", faults.Delay))

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	var wg sync.WaitGroup
	trickleCtx, stopTrickle := context.WithCancel(ctx)
	if *trickle > 0 {
		tr := sandbox.NewTrickle(disc, time.Now().UnixNano())
		tlog := log.Named("trickle")
		wg.Go(func() {
			t := time.NewTicker(*trickle)
			defer t.Stop()
			for {
				select {
				case <-trickleCtx.Done():
					return
				case <-t.C:
					id, corr := tr.Step()
					if corr {
						tlog.Info("decision corrected", zap.String("id", id))
					} else {
						tlog.Info("decision added", zap.String("id", id))
					}
				}
			}
		})
	}

	code := 0
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err := <-serveErr:
		log.Error("server stopped", zap.Error(err))
		code = 1
	}
	// Stop changing the source first, then let requests in flight finish.
	stopTrickle()
	wg.Wait()
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("requests cut off at shutdown", zap.Error(err))
		_ = srv.Close()
	}
	st := plat.Stats()
	log.Info("stopped", zap.Int("batches", st.Batches), zap.Int("accepted", st.Accepted),
		zap.Int("rejected", st.Rejected), zap.Int("duplicates", st.Duplicates), zap.Int("holdings", len(plat.Holdings())))
	return code
}

// newLogger builds a console logger for people watching `make run`.
func newLogger() (*zap.Logger, error) {
	cfg := zap.NewProductionConfig()
	cfg.Encoding = "console"
	cfg.Sampling = nil
	cfg.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	cfg.EncoderConfig.EncodeLevel = zapcore.CapitalLevelEncoder
	cfg.EncoderConfig.EncodeDuration = zapcore.StringDurationEncoder
	cfg.DisableStacktrace = true
	return cfg.Build()
}
