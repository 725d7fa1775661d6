// Package config loads syncd's configuration: one YAML file whose every key
// can be overridden by a SYNCD_… environment variable, decoded strictly
// (unknown keys are errors) into typed structs, then validated without I/O.
//
// Secrets are never in the file: it names the environment variables (…_env)
// that hold them, and Secret resolves them.
package config

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"

	"github.com/panjin-gov/syncd/internal/backoff"
	"github.com/panjin-gov/syncd/internal/connectors/filedrop"
	"github.com/panjin-gov/syncd/internal/connectors/httpsrc"
	"github.com/panjin-gov/syncd/internal/connectors/kafka"
	"github.com/panjin-gov/syncd/internal/connectors/sqlsrc"
	"github.com/panjin-gov/syncd/internal/normalize"
	"github.com/panjin-gov/syncd/internal/push"
	"github.com/panjin-gov/syncd/internal/push/dbx"
	"github.com/panjin-gov/syncd/internal/push/filex"
	"github.com/panjin-gov/syncd/internal/push/httpjson"
	"github.com/panjin-gov/syncd/internal/record"
	"github.com/panjin-gov/syncd/internal/schedule"
	"github.com/panjin-gov/syncd/internal/store"
)

// Config is the whole of syncd's configuration.
type Config struct {
	Log          Log               `mapstructure:"log"`
	Timezone     string            `mapstructure:"timezone"`
	ClickHouse   store.Config      `mapstructure:"clickhouse"`
	Admin        Admin             `mapstructure:"admin"`
	PII          PII               `mapstructure:"pii"`
	Sources      map[string]Source `mapstructure:"sources"`
	Targets      map[string]Target `mapstructure:"targets"`
	Housekeeping Housekeeping      `mapstructure:"housekeeping"`
	// Authorities is the directory of issuing authorities (name ↔ 统一社会信用代码,
	// aliases) shared by every source's mapping, so one decision reported
	// under a name by one source and a code by another is one record.
	Authorities normalize.Authorities `mapstructure:"authorities"`
	Shutdown    Shutdown              `mapstructure:"shutdown"`
	file        string
}

// Log chooses the log format and level.
type Log struct {
	Format string `mapstructure:"format"` // json (production) or console (development)
	Level  string `mapstructure:"level"`  // debug, info, warn, error
}

// Admin is the admin HTTP API.
type Admin struct {
	Listen string `mapstructure:"listen"` // host:port; empty disables it
	// TokenEnv names the environment variable holding the operator bearer
	// token that POST /api/v1/jobs/{name}/run requires.
	TokenEnv string `mapstructure:"token_env"`
}

// PII names the environment variables that hold the keys protecting
// persons' ID numbers (base64 of 32 bytes each).
type PII struct {
	HashKeyEnv string `mapstructure:"hash_key_env"`
	EncKeyEnv  string `mapstructure:"enc_key_env"`
	// OldEncKeysEnv holds retired keys, comma-separated, still needed to
	// open IDs sealed before a rotation.
	OldEncKeysEnv string `mapstructure:"old_enc_keys_env"`
}

// Shutdown bounds graceful shutdown.
type Shutdown struct {
	Grace time.Duration `mapstructure:"grace"` // time running jobs get to finish
}

// Housekeeping is the daily publicity-expiry job.
type Housekeeping struct {
	Schedule string `mapstructure:"schedule"`
}

// Source is one source system.
type Source struct {
	Type      string `mapstructure:"type"` // http, sql, filedrop, kafka
	Schedule  string `mapstructure:"schedule"`
	BatchSize int    `mapstructure:"batch_size"`
	Workers   int    `mapstructure:"workers"` // normalize goroutines; 0 = one per CPU
	// BatchBytes bounds a batch's raw payload bytes; batch_size is then
	// lowered for sources of large payloads.
	BatchBytes int               `mapstructure:"batch_bytes"`
	Retry      backoff.Policy    `mapstructure:"retry"`
	HTTP       *httpsrc.Config   `mapstructure:"http"`
	FileDrop   *filedrop.Config  `mapstructure:"filedrop"`
	Kafka      *kafka.Config     `mapstructure:"kafka"`
	SQL        *sqlsrc.Config    `mapstructure:"sql"`
	Mapping    normalize.Mapping `mapstructure:"mapping"`
}

// Target is one upstream platform.
type Target struct {
	Type      string             `mapstructure:"type"` // http, database, file
	Schedule  string             `mapstructure:"schedule"`
	BatchSize int                `mapstructure:"batch_size"`
	Kinds     []string           `mapstructure:"kinds"` // record kinds it takes; empty = all
	Profile   push.Profile       `mapstructure:"profile"`
	Retry     backoff.Policy     `mapstructure:"retry"`
	Circuit   push.BreakerConfig `mapstructure:"circuit"`
	RateLimit float64            `mapstructure:"rate_limit"` // records per second; 0 = no cap
	HTTP      *httpjson.Config   `mapstructure:"http"`
	Database  *dbx.Config        `mapstructure:"database"`
	File      *filex.Config      `mapstructure:"file"`
}

// File is the path the config was loaded from.
func (c *Config) File() string { return c.file }

// Location is the time zone schedules and dates are read in.
func (c *Config) Location() *time.Location {
	loc, err := time.LoadLocation(c.Timezone)
	if err != nil {
		return time.FixedZone("CST", 8*3600)
	}
	return loc
}

// Problem is one thing wrong with a config: the file, the dotted key and what.
type Problem struct {
	File, Key, Msg string
}

func (p Problem) Error() string { return fmt.Sprintf("%s: %s: %s", p.File, p.Key, p.Msg) }

// Problems is every problem found, sorted by key.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// Load reads path, applies SYNCD_* environment overrides and defaults, and
// validates. A non-nil error is a Problems listing everything found (or an
// error reading the file).
func Load(path string) (*Config, error) {
	v := viper.New()
	v.SetConfigFile(path)
	v.SetConfigType("yaml")
	v.SetEnvPrefix("SYNCD")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_", "-", "_"))
	v.AutomaticEnv()
	setDefaults(v)
	if err := v.ReadInConfig(); err != nil {
		return nil, Problems{{File: path, Key: "(file)", Msg: err.Error()}}
	}
	var c Config
	err := v.UnmarshalExact(&c, viper.DecodeHook(mapstructure.ComposeDecodeHookFunc(
		mapstructure.StringToTimeDurationHookFunc(),
		mapstructure.StringToSliceHookFunc(","),
	)))
	c.file = path
	if err != nil {
		return nil, decodeProblems(path, err)
	}
	c.applyDefaults()
	if ps := c.Validate(); len(ps) > 0 {
		return &c, ps
	}
	return &c, nil
}

// setDefaults registers top-level defaults; registering them also makes
// their SYNCD_* variables work when the file omits the key.
func setDefaults(v *viper.Viper) {
	v.SetDefault("log.format", "json")
	v.SetDefault("log.level", "info")
	v.SetDefault("timezone", "Asia/Shanghai")
	v.SetDefault("clickhouse.addr", []string{"127.0.0.1:9000"})
	v.SetDefault("clickhouse.database", "syncd")
	v.SetDefault("clickhouse.username", "default")
	v.SetDefault("clickhouse.password_env", "SYNCD_CLICKHOUSE_PASSWORD")
	v.SetDefault("admin.listen", "127.0.0.1:8089")
	v.SetDefault("admin.token_env", "SYNCD_ADMIN_TOKEN")
	v.SetDefault("pii.hash_key_env", "SYNCD_PII_HASH_KEY")
	v.SetDefault("pii.enc_key_env", "SYNCD_PII_ENC_KEY")
	v.SetDefault("pii.old_enc_keys_env", "SYNCD_PII_OLD_ENC_KEYS")
	v.SetDefault("housekeeping.schedule", "CRON_TZ=Asia/Shanghai 30 2 * * *")
	v.SetDefault("shutdown.grace", "30s")
}

func (c *Config) applyDefaults() {
	for name, s := range c.Sources {
		if s.BatchSize == 0 {
			s.BatchSize = 1000
		}
		if s.BatchBytes == 0 {
			s.BatchBytes = 16 << 20
		}
		s.Retry.SetDefaults()
		if s.HTTP != nil {
			s.HTTP.SetDefaults()
		}
		if s.FileDrop != nil {
			s.FileDrop.SetDefaults()
		}
		if s.Kafka != nil {
			s.Kafka.SetDefaults()
		}
		if s.SQL != nil {
			s.SQL.SetDefaults()
		}
		c.Sources[name] = s
	}
	for name, t := range c.Targets {
		if t.BatchSize == 0 {
			t.BatchSize = 200
		}
		t.Profile.SetDefaults()
		t.Circuit.SetDefaults()
		t.Retry.SetDefaults()
		if t.HTTP != nil {
			t.HTTP.SetDefaults()
		}
		if t.Database != nil {
			t.Database.SetDefaults()
		}
		if t.File != nil {
			t.File.SetDefaults()
		}
		c.Targets[name] = t
	}
}

// Validate checks everything that can be checked without I/O.
func (c *Config) Validate() Problems {
	var ps Problems
	add := func(key string, err error) {
		if err == nil {
			return
		}
		for _, e := range flatten(err) {
			msg := e.Error()
			sub, rest, found := strings.Cut(msg, ": ")
			// Component errors start with their own key ("url: required").
			if found && !strings.ContainsAny(sub, " \"") {
				ps = append(ps, Problem{File: c.file, Key: key + "." + sub, Msg: rest})
			} else {
				ps = append(ps, Problem{File: c.file, Key: key, Msg: msg})
			}
		}
	}
	switch c.Log.Format {
	case "json", "console":
	default:
		add("log.format", fmt.Errorf("%q is not json or console", c.Log.Format))
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		add("log.level", fmt.Errorf("%q is not debug, info, warn or error", c.Log.Level))
	}
	if _, err := time.LoadLocation(c.Timezone); err != nil {
		add("timezone", fmt.Errorf("%q is not a known time zone", c.Timezone))
	}
	add("clickhouse", c.ClickHouse.Validate())
	if err := c.Authorities.Validate(); err != nil {
		// Its messages already start with "authorities[i].field".
		for _, e := range flatten(err) {
			k, msg, _ := strings.Cut(e.Error(), ": ")
			ps = append(ps, Problem{File: c.file, Key: k, Msg: msg})
		}
	}
	if c.Housekeeping.Schedule != "" {
		if _, err := schedule.Parser.Parse(c.Housekeeping.Schedule); err != nil {
			add("housekeeping.schedule", err)
		}
	}
	if c.Shutdown.Grace < 0 {
		add("shutdown.grace", errors.New("must not be negative"))
	}
	if len(c.Sources) == 0 && len(c.Targets) == 0 {
		add("sources", errors.New("no sources and no targets: nothing to do"))
	}
	for _, name := range sortedKeys(c.Sources) {
		s := c.Sources[name]
		key := "sources." + name
		if _, err := schedule.Parser.Parse(s.Schedule); err != nil {
			add(key+".schedule", fmt.Errorf("%q: %w", s.Schedule, err))
		}
		if s.BatchSize < 1 || s.BatchSize > 100000 {
			add(key+".batch_size", fmt.Errorf("%d not in 1..100000", s.BatchSize))
		}
		if s.BatchBytes < 64<<10 {
			add(key+".batch_bytes", fmt.Errorf("%d is below 65536", s.BatchBytes))
		}
		if s.Workers < 0 || s.Workers > 256 {
			add(key+".workers", fmt.Errorf("%d not in 0..256", s.Workers))
		}
		add(key+".retry", s.Retry.Validate())
		switch s.Type {
		case "http":
			if s.HTTP == nil {
				add(key+".http", errors.New("required for type http"))
			} else {
				add(key+".http", s.HTTP.Validate())
			}
		case "filedrop":
			if s.FileDrop == nil {
				add(key+".filedrop", errors.New("required for type filedrop"))
			} else {
				add(key+".filedrop", s.FileDrop.Validate())
			}
		case "kafka":
			if s.Kafka == nil {
				add(key+".kafka", errors.New("required for type kafka"))
			} else {
				add(key+".kafka", s.Kafka.Validate())
			}
		case "sql":
			if s.SQL == nil {
				add(key+".sql", errors.New("required for type sql"))
			} else {
				add(key+".sql", s.SQL.Validate())
			}
		default:
			add(key+".type", fmt.Errorf("%q is not a known source type (http, sql, filedrop, kafka)", s.Type))
		}
		add(key+".mapping", s.Mapping.Validate())
	}
	for _, name := range sortedKeys(c.Targets) {
		t := c.Targets[name]
		key := "targets." + name
		if _, err := schedule.Parser.Parse(t.Schedule); err != nil {
			add(key+".schedule", fmt.Errorf("%q: %w", t.Schedule, err))
		}
		if t.BatchSize < 1 || t.BatchSize > 10000 {
			add(key+".batch_size", fmt.Errorf("%d not in 1..10000", t.BatchSize))
		}
		for i, k := range t.Kinds {
			if !record.Kind(k).Valid() {
				add(fmt.Sprintf("%s.kinds[%d]", key, i), fmt.Errorf("%q is not a record kind", k))
			}
		}
		add(key+".profile", t.Profile.Validate())
		add(key+".circuit", t.Circuit.Validate())
		if t.RateLimit < 0 {
			add(key+".rate_limit", fmt.Errorf("%g is negative", t.RateLimit))
		}
		add(key+".retry", t.Retry.Validate())
		switch t.Type {
		case "http":
			if t.HTTP == nil {
				add(key+".http", errors.New("required for type http"))
			} else {
				add(key+".http", t.HTTP.Validate())
			}
		case "database":
			if t.Database == nil {
				add(key+".database", errors.New("required for type database"))
			} else {
				add(key+".database", t.Database.Validate())
			}
		case "file":
			if t.File == nil {
				add(key+".file", errors.New("required for type file"))
			} else {
				add(key+".file", t.File.Validate())
			}
		default:
			add(key+".type", fmt.Errorf("%q is not a known target type (http, database, file)", t.Type))
		}
	}
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Key < ps[j].Key })
	return ps
}

// Secret reads the secret held by the environment variable envName. An
// unset variable is "" (no secret), which Open calls then reject or accept.
func Secret(envName string) string {
	if envName == "" {
		return ""
	}
	if v := os.Getenv(envName); v != "" {
		return v
	}
	// NAME_FILE points at a file holding the secret (for mounted secrets).
	if p := os.Getenv(envName + "_FILE"); p != "" {
		b, err := os.ReadFile(p)
		if err == nil {
			return strings.TrimSpace(string(b))
		}
	}
	return ""
}

func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

// decodeProblems turns mapstructure's decode error into one problem per key.
func decodeProblems(path string, err error) Problems {
	var ps Problems
	for _, e := range flatten(err) {
		msg := e.Error()
		for _, line := range strings.Split(msg, "\n") {
			line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "*"))
			if line == "" || strings.HasPrefix(line, "decoding failed") || strings.HasSuffix(line, "error(s) decoding:") {
				continue
			}
			ps = append(ps, decodeLine(path, line))
		}
	}
	if len(ps) == 0 {
		ps = append(ps, Problem{File: path, Key: "(file)", Msg: err.Error()})
	}
	return ps
}

// decodeLine extracts the key from mapstructure messages such as
// `'sources[x].batch_size' expected type 'int', got unconvertible type 'string'`
// and `” has invalid keys: colour`.
func decodeLine(path, line string) Problem {
	if i := strings.Index(line, " has invalid keys: "); i >= 0 {
		parent := strings.Trim(line[:i], "'\" ")
		keys := line[i+len(" has invalid keys: "):]
		key := keys
		if parent != "" {
			key = normKey(parent) + "." + keys
		}
		return Problem{File: path, Key: key, Msg: "unknown key"}
	}
	if strings.HasPrefix(line, "'") {
		if end := strings.Index(line[1:], "'"); end >= 0 {
			return Problem{File: path, Key: normKey(line[1 : end+1]), Msg: strings.TrimSpace(line[end+2:])}
		}
	}
	return Problem{File: path, Key: "(file)", Msg: line}
}

// normKey turns mapstructure's `sources[discipline].http.url` into
// `sources.discipline.http.url`.
func normKey(k string) string {
	return strings.NewReplacer("[", ".", "]", "").Replace(k)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
