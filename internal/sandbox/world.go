package sandbox

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib" // driver "pgx"
	"go.uber.org/zap"
)

// WorldConfig says where the simulated world's pieces live.
type WorldConfig struct {
	DataDir         string // drop/ and exchange/ are recreated under it
	DisciplineSeed  string
	CourtSeed       string
	HRSeed          string
	EnforcementSeed string
	KafkaAddr       string // "" = a free loopback port
	PostgresAdmin   string // admin DSN; HRDatabase is recreated with it
	MySQLAdmin      string // admin DSN; LiaoningDatabase is recreated with it
	HRDatabase      string
	LiaoningDB      string
	NationalKey     string
	NationalSecret  string
	NationalSHA256  bool   // HMAC-SHA256 instead of HMAC-SM3
	DisciplineToken string // "" = no auth
	Faults          Faults // HTTP faults; RejectRate applies to every platform
}

// World is the whole simulated city for `make run` and end-to-end tests:
// four source systems (纪检监察 HTTP, 法院 Kafka, 人社 PostgreSQL, 综合执法局 file
// drops) and three platforms (national service style, provincial 前置库
// database style, a file exchange).
type World struct {
	log *zap.Logger

	discipline  *Discipline
	trickle     *Trickle
	court       *Court
	hr          *HR
	hrDB        *sql.DB
	enforcement *Enforcement
	dropDir     string

	national *National
	liaoning *FrontDB
	frontDB  *sql.DB
	exchange *FilePlatform
}

// StartWorld brings every simulator up. On error the ones already started
// are in the returned value: Close it.
func StartWorld(ctx context.Context, f WorldConfig, log *zap.Logger) (*World, error) {
	s := &World{log: log}

	// 纪检监察: HTTP API.
	items, err := LoadSeed(f.DisciplineSeed)
	if err != nil {
		return s, err
	}
	s.discipline = NewDiscipline(items)
	s.discipline.SetLogger(log.Named("discipline"))
	if f.DisciplineToken != "" {
		s.discipline.RequireToken(f.DisciplineToken)
	}
	srcFaults := f.Faults
	srcFaults.RejectRate = 0
	s.discipline.SetFaults(srcFaults)
	s.trickle = NewTrickle(s.discipline, time.Now().UnixNano())

	// 法院: events on a Kafka topic.
	events, err := LoadCourtSeed(f.CourtSeed)
	if err != nil {
		return s, err
	}
	if s.court, err = NewCourt(ctx, events, CourtOptions{Addr: f.KafkaAddr, Seed: time.Now().UnixNano()}); err != nil {
		return s, fmt.Errorf("court broker on %s: %w", f.KafkaAddr, err)
	}
	log.Info("court events published", zap.String("broker", s.court.Addr()), zap.String("topic", s.court.Topic()), zap.Int("events", len(events)))

	// 人社: a PostgreSQL database.
	if s.hrDB, err = freshPostgres(ctx, f.PostgresAdmin, f.HRDatabase); err != nil {
		return s, fmt.Errorf("HR database (is scripts/postgres.sh started?): %w", err)
	}
	s.hr = NewHR(s.hrDB, time.Now().UnixNano())
	if err := s.hr.Setup(ctx); err != nil {
		return s, err
	}
	n, err := s.hr.Seed(ctx, f.HRSeed)
	if err != nil {
		return s, err
	}
	log.Info("HR database seeded", zap.String("database", f.HRDatabase), zap.Int("rows", n))

	// 综合执法局: GBK CSV and XLSX files dropped into a folder.
	s.dropDir = filepath.Join(f.DataDir, "drop")
	exchangeDir := filepath.Join(f.DataDir, "exchange")
	for _, d := range []string{s.dropDir, exchangeDir} {
		// Each start is a fresh world: the store is emptied too.
		if err := os.RemoveAll(d); err != nil {
			return s, err
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return s, err
		}
	}
	if s.enforcement, err = LoadEnforcement(f.EnforcementSeed, time.Now().UnixNano()); err != nil {
		return s, err
	}
	path, err := s.enforcement.DropCSV(s.dropDir)
	if err != nil {
		return s, err
	}
	log.Info("penalty file dropped", zap.String("file", path), zap.Int("rows", s.enforcement.Len()))

	// 全国: service style, signed requests.
	secret := f.NationalSecret
	if secret == "" {
		return s, errors.New("the national platform needs an app secret")
	}
	var opts []NationalOption
	if !f.NationalSHA256 {
		opts = append(opts, NationalSM3())
	}
	s.national = NewNational(f.NationalKey, secret, opts...)
	s.national.SetLogger(log.Named("national"))
	s.national.SetFaults(f.Faults)

	// 信用辽宁: database style, a MariaDB front-end database.
	if s.frontDB, err = freshMySQL(ctx, f.MySQLAdmin, f.LiaoningDB); err != nil {
		return s, fmt.Errorf("provincial front-end database (is scripts/mariadb.sh started?): %w", err)
	}
	if s.liaoning, err = NewFrontDB(ctx, s.frontDB, "mysql"); err != nil {
		return s, err
	}
	s.liaoning.SetLogger(log.Named("liaoning"))
	s.liaoning.SetRejectRate(f.Faults.RejectRate)

	// File exchange folder.
	s.exchange = NewFilePlatform(exchangeDir, "")
	s.exchange.SetLogger(log.Named("exchange"))
	return s, nil
}

// Handler serves the HTTP simulators (/discipline/, /national/) and the
// platforms overview (GET /platforms).
func (s *World) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/discipline/", http.StripPrefix("/discipline", s.discipline.Handler()))
	mux.Handle("/national/", http.StripPrefix("/national", s.national.Handler()))
	mux.HandleFunc("GET /platforms", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		b, _ := jsonIndent(s.PlatformStats())
		w.Write(b)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	s.mountPlatformAdmin(mux)
	return mux
}

// mountPlatformAdmin serves the non-HTTP systems' switches:
// /liaoning/admin/{holdings,faults}, /exchange/admin/{holdings,faults},
// /hr/admin/faults, /enforcement/admin/faults, /court/admin/poison.
func (s *World) mountPlatformAdmin(mux *http.ServeMux) {
	mux.HandleFunc("GET /liaoning/admin/holdings", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.liaoning.Holdings())
	})
	mux.HandleFunc("POST /liaoning/admin/faults", func(w http.ResponseWriter, r *http.Request) {
		var f struct {
			RejectRate *float64 `json:"reject_rate"`
			Silent     *bool    `json:"silent"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&f); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		if f.RejectRate != nil {
			if *f.RejectRate < 0 || *f.RejectRate > 1 {
				writeError(w, http.StatusBadRequest, "reject_rate not in [0, 1]")
				return
			}
			s.liaoning.SetRejectRate(*f.RejectRate)
		}
		if f.Silent != nil {
			s.liaoning.SetSilent(*f.Silent)
		}
		s.log.Info("liaoning faults set", zap.Any("faults", f))
		writeJSON(w, http.StatusOK, map[string]any{"ok": true})
	})
	// The sources' fault switches: malformed rows in HR and in the penalty
	// files the next steps write, a poison message on the court topic now.
	mux.HandleFunc("POST /hr/admin/faults", func(w http.ResponseWriter, r *http.Request) {
		var f struct {
			Malformed bool `json:"malformed"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&f); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		if f.Malformed {
			s.hr.SetFault(HRMalformed)
		} else {
			s.hr.SetFault(HRHealthy)
		}
		writeJSON(w, http.StatusOK, f)
	})
	mux.HandleFunc("POST /enforcement/admin/faults", func(w http.ResponseWriter, r *http.Request) {
		var f struct {
			Malformed bool `json:"malformed"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&f); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		s.enforcement.SetMalformed(f.Malformed)
		writeJSON(w, http.StatusOK, f)
	})
	mux.HandleFunc("POST /court/admin/poison", func(w http.ResponseWriter, r *http.Request) {
		if err := s.court.PublishPoison(r.Context()); err != nil {
			writeError(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"published": "poison"})
	})
	mux.HandleFunc("GET /exchange/admin/holdings", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.exchange.Holdings())
	})
	mux.HandleFunc("POST /exchange/admin/faults", func(w http.ResponseWriter, r *http.Request) {
		var f FileFaults
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&f); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		if err := f.Validate(); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		s.exchange.SetFaults(f)
		writeJSON(w, http.StatusOK, f)
	})
}

// PlatformStats counts what each platform holds and has seen.
func (s *World) PlatformStats() map[string]any {
	out := map[string]any{}
	if s.national != nil {
		out["national"] = map[string]any{"holdings": len(s.national.Holdings()), "stats": s.national.Stats()}
	}
	if s.liaoning != nil {
		out["liaoning"] = map[string]any{"holdings": len(s.liaoning.Holdings()), "stats": s.liaoning.Stats()}
	}
	if s.exchange != nil {
		out["exchange"] = map[string]any{"holdings": len(s.exchange.Holdings()), "stats": s.exchange.Stats()}
	}
	return out
}

// Background runs the platforms' pick-up loops and, every interval (0: never),
// Step, until ctx ends.
func (s *World) Background(ctx context.Context, wg *sync.WaitGroup, every time.Duration) {
	wg.Go(func() { s.liaoning.Run(ctx, 2*time.Second) })
	wg.Go(func() { s.exchange.Run(ctx, time.Second) })
	if every <= 0 {
		return
	}
	wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for round := 0; ; round++ {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				s.Step(ctx, round)
			}
		}
	})
}

// Step changes every source once: a correction or a new decision each
// (which one alternates with round), and drops a file with the changed
// penalties.
func (s *World) Step(ctx context.Context, round int) {
	log := s.log.Named("trickle")
	id, corr := s.trickle.Step()
	log.Info("discipline changed", zap.String("id", id), zap.Bool("correction", corr))
	if round%2 == 0 {
		if ev, err := s.court.Add(ctx); err == nil {
			log.Info("court event added", zap.String("case", ev.CaseNo))
		}
		if id, err := s.hr.Add(ctx); err == nil {
			log.Info("HR sanction added", zap.Int64("id", id))
		}
	} else {
		if ev, err := s.court.Correct(ctx); err == nil {
			log.Info("court event corrected", zap.String("case", ev.CaseNo))
		}
		if id, err := s.hr.Correct(ctx); err == nil {
			log.Info("HR sanction corrected", zap.Int64("id", id))
		}
	}
	doc := s.enforcement.Correct()
	path, err := s.enforcement.DropXLSX(s.dropDir)
	if err != nil {
		log.Warn("penalty file not dropped", zap.Error(err))
		return
	}
	log.Info("penalty corrected and dropped", zap.String("doc_no", doc), zap.String("file", path))
}

// Close stops the broker and closes the databases.
func (s *World) Close() {
	if s.court != nil {
		s.court.Close()
	}
	if s.hrDB != nil {
		s.hrDB.Close()
	}
	if s.frontDB != nil {
		s.frontDB.Close()
	}
}

// freshPostgres drops and creates database name with the admin DSN and
// returns a pool on it.
func freshPostgres(ctx context.Context, admin, name string) (*sql.DB, error) {
	adb, err := sql.Open("pgx", admin)
	if err != nil {
		return nil, err
	}
	defer adb.Close()
	if _, err := adb.ExecContext(ctx, `DROP DATABASE IF EXISTS "`+name+`" WITH (FORCE)`); err != nil {
		return nil, err
	}
	if _, err := adb.ExecContext(ctx, `CREATE DATABASE "`+name+`" ENCODING 'UTF8' TEMPLATE template0`); err != nil {
		return nil, err
	}
	u, err := url.Parse(admin)
	if err != nil {
		return nil, err
	}
	u.Path = "/" + name
	return sql.Open("pgx", u.String())
}

// freshMySQL drops and creates database name with the admin DSN and returns
// a pool on it.
func freshMySQL(ctx context.Context, admin, name string) (*sql.DB, error) {
	cfg, err := mysql.ParseDSN(admin)
	if err != nil {
		return nil, err
	}
	adb, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return nil, err
	}
	defer adb.Close()
	if _, err := adb.ExecContext(ctx, "DROP DATABASE IF EXISTS `"+name+"`"); err != nil {
		return nil, err
	}
	if _, err := adb.ExecContext(ctx, "CREATE DATABASE `"+name+"` CHARACTER SET utf8mb4"); err != nil {
		return nil, err
	}
	cfg.DBName = name
	cfg.ParseTime = true
	return sql.Open("mysql", cfg.FormatDSN())
}

func jsonIndent(v any) ([]byte, error) {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	err := enc.Encode(v)
	return []byte(b.String()), err
}

// Court is the 法院 event feed.
func (s *World) Court() *Court { return s.court }

// National is the national platform.
func (s *World) National() *National { return s.national }

// Liaoning is the provincial front-end database platform.
func (s *World) Liaoning() *FrontDB { return s.liaoning }

// Exchange is the file-exchange platform.
func (s *World) Exchange() *FilePlatform { return s.exchange }

// DropDir is the enforcement bureau's drop folder.
func (s *World) DropDir() string { return s.dropDir }
