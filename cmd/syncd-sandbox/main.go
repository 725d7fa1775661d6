// Command syncd-sandbox runs the simulators of internal/sandbox together, so
// `make run` shows records flowing from four kinds of source system through
// syncd to three kinds of platform:
//
//	sources                                           platforms
//	纪检监察 discipline   HTTP  /discipline/api/v1/…     全国 national     service  /national/api/v1/report (SM3-signed)
//	法院 court            Kafka (in-process broker)      信用辽宁 liaoning  database MariaDB sandbox_liaoning (前置库)
//	人社 HR               PostgreSQL sandbox_hr          exchange          file     .run/sandbox/exchange
//	综合执法局 enforcement file drops .run/sandbox/drop
//
// GET /platforms shows what each platform holds. Every source changes every
// -trickle interval (a correction or a new decision), so updates keep coming.
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

// flags is the sandbox's command line.
type flags struct {
	listen, dataDir                   string
	disciplineSeed, courtSeed, hrSeed string
	enforcementSeed                   string
	kafkaAddr                         string
	pgAdmin, mysqlAdmin               string
	hrDB, liaoningDB                  string
	nationalKey, nationalSecretEnv    string
	nationalSHA256                    bool
	discTokenEnv                      string
	faults                            sandbox.Faults
	trickle                           time.Duration
}

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	var f flags
	fs := flag.NewFlagSet("syncd-sandbox", flag.ContinueOnError)
	fs.StringVar(&f.listen, "listen", "127.0.0.1:18080", "address of the HTTP simulators (discipline source, national platform)")
	fs.StringVar(&f.dataDir, "data", ".run/sandbox", "folder for the file drop (drop/) and the file exchange (exchange/)")
	fs.StringVar(&f.disciplineSeed, "seed", "testdata/sandbox/discipline.jsonl", "seed of the discipline source")
	fs.StringVar(&f.courtSeed, "court-seed", "testdata/sandbox/court.jsonl", "seed of the court event feed")
	fs.StringVar(&f.hrSeed, "hr-seed", "testdata/sandbox/hr.jsonl", "seed of the HR database")
	fs.StringVar(&f.enforcementSeed, "enforcement-seed", "testdata/sandbox/enforcement.csv", "seed of the enforcement bureau's penalty files")
	fs.StringVar(&f.kafkaAddr, "kafka", "127.0.0.1:19092", "address of the court's Kafka-protocol broker")
	fs.StringVar(&f.pgAdmin, "postgres", "postgres://syncd:syncd-test@127.0.0.1:15432/postgres?sslmode=disable", "PostgreSQL admin DSN (scripts/postgres.sh's local test login)")
	fs.StringVar(&f.mysqlAdmin, "mariadb", "syncd:syncd-test@tcp(127.0.0.1:13306)/", "MariaDB admin DSN (scripts/mariadb.sh's local test login)")
	fs.StringVar(&f.hrDB, "hr-db", "sandbox_hr", "PostgreSQL database of the HR system (recreated at start)")
	fs.StringVar(&f.liaoningDB, "liaoning-db", "sandbox_liaoning", "MariaDB database of the provincial front-end database (recreated at start)")
	fs.StringVar(&f.nationalKey, "national-app-key", "syncd-panjin", "app key syncd signs with at the national platform")
	fs.StringVar(&f.nationalSecretEnv, "national-secret-env", "SYNCD_NATIONAL_APP_SECRET", "environment variable holding the national platform's app secret")
	fs.BoolVar(&f.nationalSHA256, "national-sha256", false, "national platform checks HMAC-SHA256 signatures instead of HMAC-SM3")
	fs.StringVar(&f.discTokenEnv, "discipline-token-env", "SYNCD_SANDBOX_DISCIPLINE_TOKEN", "environment variable holding the discipline source's bearer token (unset: no auth)")
	fs.Float64Var(&f.faults.FailRate, "fail-rate", 0, "share of HTTP requests answered 500 (discipline source and national platform)")
	fs.Float64Var(&f.faults.DropRate, "drop-rate", 0, "share of HTTP responses cut off halfway")
	fs.Float64Var(&f.faults.RejectRate, "reject-rate", 0, "share of valid records each platform rejects")
	fs.DurationVar(&f.faults.Delay, "delay", 0, "delay added before every HTTP answer")
	fs.Int64Var(&f.faults.Seed, "fault-seed", 1, "seed of the fault injection")
	fs.DurationVar(&f.trickle, "trickle", 20*time.Second, "every interval, each source applies a correction or a new decision (0: off)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log, err := newLogger()
	if err != nil {
		fmt.Fprintln(os.Stderr, "syncd-sandbox:", err)
		return 1
	}
	defer func() { _ = log.Sync() }()
	if err := f.faults.Validate(); err != nil {
		log.Error("bad fault flags", zap.Error(err))
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	secret := os.Getenv(f.nationalSecretEnv)
	if secret == "" {
		log.Error("the national platform needs an app secret (make run writes one to .run/dev.env)", zap.String("env", f.nationalSecretEnv))
		return 2
	}
	sys, err := sandbox.StartWorld(ctx, sandbox.WorldConfig{
		DataDir: f.dataDir, DisciplineSeed: f.disciplineSeed, CourtSeed: f.courtSeed, HRSeed: f.hrSeed,
		EnforcementSeed: f.enforcementSeed, KafkaAddr: f.kafkaAddr, PostgresAdmin: f.pgAdmin, MySQLAdmin: f.mysqlAdmin,
		HRDatabase: f.hrDB, LiaoningDB: f.liaoningDB, NationalKey: f.nationalKey, NationalSecret: secret,
		NationalSHA256: f.nationalSHA256, DisciplineToken: os.Getenv(f.discTokenEnv), Faults: f.faults,
	}, log)
	if err != nil {
		log.Error("sandbox did not start", zap.Error(err))
		sys.Close()
		return 1
	}
	defer sys.Close()

	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		log.Error("cannot listen", zap.String("addr", f.listen), zap.Error(err))
		return 1
	}
	srv := &http.Server{Handler: sys.Handler(), ReadHeaderTimeout: 10 * time.Second}
	base := "http://" + ln.Addr().String()
	log.Info("sandbox listening", zap.String("discipline", base+"/discipline/api/v1/decisions"),
		zap.String("national", base+"/national/api/v1/report"), zap.String("platforms", base+"/platforms"))
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	var wg sync.WaitGroup
	bg, stopBG := context.WithCancel(ctx)
	sys.Background(bg, &wg, f.trickle)

	code := 0
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err := <-serveErr:
		log.Error("server stopped", zap.Error(err))
		code = 1
	}
	stopBG()
	wg.Wait()
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("requests cut off at shutdown", zap.Error(err))
		_ = srv.Close()
	}
	log.Info("stopped", zap.Any("platforms", sys.PlatformStats()))
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
