// Package testdb gives tests a fresh, uniquely named database on the real
// PostgreSQL and MariaDB servers that scripts/postgres.sh and
// scripts/mariadb.sh start, and drops it when the test ends. It fails the
// test, never skips it, when a server is not there: CI starts them.
//
// It is imported by tests only; it must not depend on any other syncd package.
package testdb

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib" // registers driver "pgx"
)

// Admin DSNs of the servers the scripts start, with their test login.
const (
	DefaultPostgres = "postgres://syncd:syncd-test@127.0.0.1:15432/postgres?sslmode=disable"
	DefaultMySQL    = "syncd:syncd-test@tcp(127.0.0.1:13306)/"
)

// PostgresAdmin is the DSN of the test PostgreSQL server's superuser:
// $SYNCD_TEST_POSTGRES (a postgres:// URL) or DefaultPostgres.
func PostgresAdmin() string {
	if s := os.Getenv("SYNCD_TEST_POSTGRES"); s != "" {
		return s
	}
	return DefaultPostgres
}

// MySQLAdmin is the DSN of the test MariaDB/MySQL server's privileged user
// (go-sql-driver/mysql form): $SYNCD_TEST_MYSQL or DefaultMySQL.
func MySQLAdmin() string {
	if s := os.Getenv("SYNCD_TEST_MYSQL"); s != "" {
		return s
	}
	return DefaultMySQL
}

// Name returns a new database name derived from the test's name: lower case
// letters, digits and underscores, at most 63 characters (PostgreSQL's limit;
// MariaDB's is 64), unique by a random suffix.
func Name(t testing.TB) string {
	var b [4]byte
	rand.Read(b[:])
	var sb strings.Builder
	sb.WriteString("t_")
	for _, r := range strings.ToLower(t.Name()) {
		if sb.Len() >= 42 {
			break
		}
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			sb.WriteRune(r)
		} else {
			sb.WriteByte('_')
		}
	}
	sb.WriteByte('_')
	sb.WriteString(hex.EncodeToString(b[:]))
	return sb.String()
}

func timeout() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 30*time.Second)
}

// Postgres creates a fresh database on the test PostgreSQL server and returns
// its DSN (a postgres:// URL with the admin's login) and an open pool on it.
// The database is dropped when the test ends, connections still open to it
// included, unless SYNCD_TEST_KEEP_DB is set.
func Postgres(t testing.TB) (dsn string, db *sql.DB) {
	t.Helper()
	admin := PostgresAdmin()
	u, err := url.Parse(admin)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("SYNCD_TEST_POSTGRES must be a postgres:// URL")
	}
	where := u.Host
	ctx, cancel := timeout()
	defer cancel()
	adb, err := sql.Open("pgx", admin)
	if err == nil {
		err = adb.PingContext(ctx)
	}
	if err != nil {
		t.Fatalf("test PostgreSQL at %s is not reachable (start it with scripts/postgres.sh start): %v", where, err)
	}
	name := Name(t)
	if _, err := adb.ExecContext(ctx, `CREATE DATABASE "`+name+`" ENCODING 'UTF8' TEMPLATE template0`); err != nil {
		adb.Close()
		t.Fatalf("create database %s on %s: %v", name, where, err)
	}
	u.Path = "/" + name
	dsn = u.String()
	db, err = sql.Open("pgx", dsn)
	if err != nil {
		adb.Close()
		t.Fatalf("open %s: %v", name, err)
	}
	t.Cleanup(func() {
		db.Close()
		defer adb.Close()
		if os.Getenv("SYNCD_TEST_KEEP_DB") != "" {
			t.Logf("kept database %s on %s", name, where)
			return
		}
		ctx, cancel := timeout()
		defer cancel()
		// FORCE ends the sessions a test left open (a connector under test).
		if _, err := adb.ExecContext(ctx, `DROP DATABASE IF EXISTS "`+name+`" WITH (FORCE)`); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	return dsn, db
}

// MySQL creates a fresh database (utf8mb4) on the test MariaDB server and
// returns its DSN (go-sql-driver/mysql form, with the admin's login and
// parseTime=true) and an open pool on it. The database is dropped when the
// test ends, unless SYNCD_TEST_KEEP_DB is set.
func MySQL(t testing.TB) (dsn string, db *sql.DB) {
	t.Helper()
	cfg, err := mysql.ParseDSN(MySQLAdmin())
	if err != nil {
		t.Fatalf("SYNCD_TEST_MYSQL is not a go-sql-driver/mysql DSN: %v", err)
	}
	where := cfg.Addr
	ctx, cancel := timeout()
	defer cancel()
	acfg := cfg.Clone()
	acfg.DBName = ""
	acn, err := mysql.NewConnector(acfg)
	if err != nil {
		t.Fatalf("SYNCD_TEST_MYSQL: %v", err)
	}
	adb := sql.OpenDB(acn)
	if err := adb.PingContext(ctx); err != nil {
		adb.Close()
		t.Fatalf("test MariaDB at %s is not reachable (start it with scripts/mariadb.sh start): %v", where, err)
	}
	name := Name(t)
	if _, err := adb.ExecContext(ctx, "CREATE DATABASE `"+name+"` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"); err != nil {
		adb.Close()
		t.Fatalf("create database %s on %s: %v", name, where, err)
	}
	cfg.DBName = name
	cfg.ParseTime = true
	dsn = cfg.FormatDSN()
	db, err = sql.Open("mysql", dsn)
	if err != nil {
		adb.Close()
		t.Fatalf("open %s: %v", name, err)
	}
	t.Cleanup(func() {
		db.Close()
		defer adb.Close()
		if os.Getenv("SYNCD_TEST_KEEP_DB") != "" {
			t.Logf("kept database %s on %s", name, where)
			return
		}
		ctx, cancel := timeout()
		defer cancel()
		if _, err := adb.ExecContext(ctx, "DROP DATABASE IF EXISTS `"+name+"`"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	return dsn, db
}

// Exec runs statements on db, failing the test on the first error.
func Exec(t testing.TB, db *sql.DB, stmts ...string) {
	t.Helper()
	ctx, cancel := timeout()
	defer cancel()
	for _, s := range stmts {
		if _, err := db.ExecContext(ctx, s); err != nil {
			t.Fatalf("%s: %v", firstLine(s), err)
		}
	}
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i] + " …"
	}
	return fmt.Sprintf("%q", s)
}
