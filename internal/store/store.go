// Package store is syncd's consolidated store in ClickHouse: canonical records,
// raw payloads, rejects, the per-target push ledger and source cursors.
//
// It speaks the native protocol through clickhouse-go v2 and keeps to what
// ClickHouse 18.16 understands (DESIGN.md §4): no DateTime64, Map, JSON,
// LowCardinality, TTL, Bool or window functions, and every INSERT is a batch
// with an explicit column list. It depends only on package record.
package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"go.uber.org/zap"
)

// Config says where the ClickHouse server is.
type Config struct {
	Addr        []string      `mapstructure:"addr"`
	Database    string        `mapstructure:"database"`
	Username    string        `mapstructure:"username"`
	PasswordEnv string        `mapstructure:"password_env"` // name of the env var holding the password
	DialTimeout time.Duration `mapstructure:"dial_timeout"`
	ReadTimeout time.Duration `mapstructure:"read_timeout"`
	// Cluster, when set, makes migrations create Replicated tables ON CLUSTER.
	Cluster string `mapstructure:"cluster"`
}

// Validate checks the config without touching the network.
func (c *Config) Validate() error {
	var errs []error
	if len(c.Addr) == 0 {
		errs = append(errs, errors.New("addr: at least one host:port is required"))
	}
	for i, a := range c.Addr {
		if !strings.Contains(a, ":") {
			errs = append(errs, fmt.Errorf("addr[%d]: %q is not host:port", i, a))
		}
	}
	if c.Database == "" || strings.ContainsAny(c.Database, "`'\" .;") {
		errs = append(errs, fmt.Errorf("database: %q is not a plain identifier", c.Database))
	}
	if c.Cluster != "" && strings.ContainsAny(c.Cluster, "`'\" ;") {
		errs = append(errs, fmt.Errorf("cluster: %q is not a plain identifier", c.Cluster))
	}
	return errors.Join(errs...)
}

// Store is a handle on the consolidated store. It is safe for concurrent use.
type Store struct {
	conn driver.Conn
	db   string
	cfg  Config
	log  *zap.Logger
}

// Open connects to ClickHouse and checks that it answers. password is the
// resolved secret (never read from the YAML file itself).
func Open(ctx context.Context, cfg Config, password string, log *zap.Logger) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	opts := &clickhouse.Options{
		Addr: cfg.Addr,
		Auth: clickhouse.Auth{Database: "default", Username: cfg.Username, Password: password},
		// LZ4 keeps the native protocol cheap on the wire; 18.16 supports it.
		Compression:  &clickhouse.Compression{Method: clickhouse.CompressionLZ4},
		DialTimeout:  orDefault(cfg.DialTimeout, 5*time.Second),
		ReadTimeout:  orDefault(cfg.ReadTimeout, 60*time.Second),
		MaxOpenConns: 8,
		MaxIdleConns: 4,
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("open clickhouse %v: %w", cfg.Addr, err)
	}
	if err := conn.Ping(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("ping clickhouse %v: %w", cfg.Addr, err)
	}
	return &Store{conn: conn, db: cfg.Database, cfg: cfg, log: log}, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Close releases the connections.
func (s *Store) Close(context.Context) error { return s.conn.Close() }

// Database is the database the store's tables live in.
func (s *Store) Database() string { return s.db }

// Conn exposes the connection for read-only auditor queries and tests.
func (s *Store) Conn() driver.Conn { return s.conn }

// t qualifies a table name with the store's database.
func (s *Store) t(name string) string { return "`" + s.db + "`." + name }

// maxIDsPerQuery bounds the IN lists we send: ClickHouse's default
// max_query_size is 256 KiB and a record_id is 32 hex chars.
const maxIDsPerQuery = 2000

// chunks calls fn on consecutive slices of ids of at most maxIDsPerQuery.
func chunks(ids []string, fn func([]string) error) error {
	for len(ids) > 0 {
		n := min(len(ids), maxIDsPerQuery)
		if err := fn(ids[:n]); err != nil {
			return err
		}
		ids = ids[n:]
	}
	return nil
}

// inList formats ids as a parenthesized IN list.
func inList(ids []string) clickhouse.GroupSet {
	v := make([]any, len(ids))
	for i, id := range ids {
		v[i] = id
	}
	return clickhouse.GroupSet{Value: v}
}
