package sqlsrc

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Drivers accepted in Config.Driver.
const (
	Postgres = "postgres" // PostgreSQL, through github.com/jackc/pgx/v5/stdlib
	MySQL    = "mysql"    // MySQL and MariaDB, through github.com/go-sql-driver/mysql
)

// Placeholders a custom Config.Query must hold, each exactly once.
const (
	// CursorPlaceholder becomes the keyset predicate, a boolean expression:
	// "updated IS NOT NULL" on the first fetch, then
	// "updated >= $1 AND (updated > $1 OR id > $2)".
	CursorPlaceholder = "{{cursor}}"
	// LimitPlaceholder becomes the row limit parameter.
	LimitPlaceholder = "{{limit}}"
)

// Config is the SQL source's part of a source's config.
//
// Either Table (and optionally Columns) or Query is set. With Table the
// source runs
//
//	SELECT <columns or *> FROM <table>
//	WHERE <updated> >= ? AND (<updated> > ? OR <id> > ?)
//	ORDER BY <updated>, <id> LIMIT ?
//
// With Query it runs the query as written after replacing {{cursor}} and
// {{limit}}; the query must select the updated and id columns and end with
// ORDER BY <updated>, <id> LIMIT {{limit}}, for example
//
//	SELECT s.*, e.uscc AS employer_uscc
//	FROM sanctions s JOIN employers e ON e.id = s.employer_id
//	WHERE s.deleted = false AND {{cursor}}
//	ORDER BY s.updated_at, s.id LIMIT {{limit}}
//
// with updated_column "s.updated_at" and id_column "s.id": in query mode
// they are SQL expressions used as written in the predicate, and the result
// column is found by the part after the last dot ("updated_at", "id").
// In table mode names are quoted as given, so on PostgreSQL they are case
// sensitive (write them as the catalog has them, normally lower case).
type Config struct {
	Driver string `mapstructure:"driver"` // postgres | mysql (MariaDB too)
	// DSNEnv names the environment variable holding the DSN (a postgres://
	// URL, or a go-sql-driver/mysql DSN); the DSN, password included, never
	// sits in the config file.
	DSNEnv        string        `mapstructure:"dsn_env"`
	Table         string        `mapstructure:"table"`   // may be schema-qualified: hr.sanctions
	Columns       []string      `mapstructure:"columns"` // empty: all
	Query         string        `mapstructure:"query"`
	UpdatedColumn string        `mapstructure:"updated_column"` // default updated_at; must be NOT NULL
	IDColumn      string        `mapstructure:"id_column"`      // default id; unique
	PageSize      int           `mapstructure:"page_size"`      // rows per fetch, default 500
	Timeout       time.Duration `mapstructure:"timeout"`        // per fetch, default 30s
	// TimeZone is the zone of the source's zone-less times (PostgreSQL
	// timestamp, MySQL DATETIME): an IANA name or an offset such as
	// "+08:00". Default Asia/Shanghai.
	TimeZone string `mapstructure:"time_zone"`
}

// SetDefaults fills unset fields.
func (c *Config) SetDefaults() {
	if c.UpdatedColumn == "" {
		c.UpdatedColumn = "updated_at"
	}
	if c.IDColumn == "" {
		c.IDColumn = "id"
	}
	if c.PageSize == 0 {
		c.PageSize = 500
	}
	if c.Timeout == 0 {
		c.Timeout = 30 * time.Second
	}
	if c.TimeZone == "" {
		c.TimeZone = "Asia/Shanghai"
	}
}

// Validate checks the config without connecting. Each message starts with
// the key at fault.
func (c *Config) Validate() error {
	var errs []error
	switch c.Driver {
	case Postgres, MySQL:
	case "":
		errs = append(errs, errors.New("driver: required (postgres or mysql)"))
	default:
		errs = append(errs, fmt.Errorf("driver: %q is not postgres or mysql (use mysql for MariaDB)", c.Driver))
	}
	if c.DSNEnv == "" {
		errs = append(errs, errors.New("dsn_env: required (the name of the environment variable holding the DSN)"))
	} else if !envName(c.DSNEnv) {
		errs = append(errs, fmt.Errorf("dsn_env: %q is not an environment variable name (the DSN itself belongs in the environment)", c.DSNEnv))
	}
	switch {
	case c.Table == "" && c.Query == "":
		errs = append(errs, errors.New("table: required (or query)"))
	case c.Table != "" && c.Query != "":
		errs = append(errs, errors.New("query: set table or query, not both"))
	case c.Table != "":
		for _, part := range strings.Split(c.Table, ".") {
			if err := identifier(part); err != nil {
				errs = append(errs, fmt.Errorf("table: %q: %w", c.Table, err))
				break
			}
		}
		for i, col := range c.Columns {
			if err := identifier(col); err != nil {
				errs = append(errs, fmt.Errorf("columns[%d]: %w", i, err))
			}
		}
		for _, f := range []struct{ key, v string }{{"updated_column", c.UpdatedColumn}, {"id_column", c.IDColumn}} {
			if err := identifier(f.v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", f.key, err))
			}
		}
	default:
		if len(c.Columns) > 0 {
			errs = append(errs, errors.New("columns: only with table; a query selects its own"))
		}
		for _, p := range []string{CursorPlaceholder, LimitPlaceholder} {
			if n := strings.Count(c.Query, p); n != 1 {
				errs = append(errs, fmt.Errorf("query: must hold %s exactly once (found %d)", p, n))
			}
		}
		if i, j := strings.Index(c.Query, CursorPlaceholder), strings.Index(c.Query, LimitPlaceholder); i > j && j >= 0 {
			// MySQL's placeholders are positional: the predicate's come first.
			errs = append(errs, fmt.Errorf("query: %s must come before %s", CursorPlaceholder, LimitPlaceholder))
		}
		for _, f := range []struct{ key, v string }{{"updated_column", c.UpdatedColumn}, {"id_column", c.IDColumn}} {
			if strings.TrimSpace(f.v) == "" || strings.ContainsAny(f.v, ";\x00") {
				errs = append(errs, fmt.Errorf("%s: %q is not a column", f.key, f.v))
			}
		}
	}
	if c.PageSize < 1 || c.PageSize > 10000 {
		errs = append(errs, fmt.Errorf("page_size: %d not in 1..10000", c.PageSize))
	}
	if c.Timeout < 0 {
		errs = append(errs, errors.New("timeout: must be positive"))
	}
	if _, err := location(c.TimeZone); err != nil {
		errs = append(errs, fmt.Errorf("time_zone: %w", err))
	}
	return errors.Join(errs...)
}

// identifier accepts any name that can be quoted safely: not empty, no
// quote characters, no NUL. Chinese column names (姓名) are fine.
func identifier(s string) error {
	switch {
	case s == "":
		return errors.New("empty name")
	case strings.ContainsAny(s, "\"`\x00"):
		return fmt.Errorf("%q: quotes and NUL are not allowed in a name", s)
	}
	return nil
}

func envName(s string) bool {
	for i, r := range s {
		switch {
		case r == '_', r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return s != ""
}

// location reads an IANA zone name or a fixed offset "+08:00". China has had
// no daylight saving since 1991, so when the zone database is missing
// Asia/Shanghai falls back to a fixed +08:00.
func location(s string) (*time.Location, error) {
	if len(s) == 6 && (s[0] == '+' || s[0] == '-') && s[3] == ':' {
		t, err := time.Parse("-07:00", s)
		if err != nil {
			return nil, fmt.Errorf("%q is not an offset such as +08:00", s)
		}
		_, off := t.Zone()
		return time.FixedZone(s, off), nil
	}
	loc, err := time.LoadLocation(s)
	if err != nil {
		if s == "Asia/Shanghai" {
			return time.FixedZone("CST", 8*3600), nil
		}
		return nil, fmt.Errorf("%q is not a known time zone: %v", s, err)
	}
	return loc, nil
}
