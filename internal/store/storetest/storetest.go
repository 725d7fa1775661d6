// Package storetest gives tests a fresh, migrated database on the real
// ClickHouse server that scripts/clickhouse.sh starts. It fails the test,
// never skips it, when the server is not there: CI starts it.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/panjin-gov/syncd/internal/store"
)

// Addr is the test ClickHouse server: $SYNCD_TEST_CLICKHOUSE or the port
// scripts/clickhouse.sh uses.
func Addr() string {
	if a := os.Getenv("SYNCD_TEST_CLICKHOUSE"); a != "" {
		return a
	}
	return "127.0.0.1:19000"
}

// Config returns a store config for a new uniquely named database.
func Config(t testing.TB) store.Config {
	var b [4]byte
	rand.Read(b[:])
	name := strings.ToLower(strings.NewReplacer("/", "_", "-", "_", " ", "_").Replace(t.Name()))
	if len(name) > 40 {
		name = name[:40]
	}
	return store.Config{
		Addr:     []string{Addr()},
		Database: "t_" + name + "_" + hex.EncodeToString(b[:]),
		Username: "default",
	}
}

// New opens a store on a fresh database, migrates it and drops it when the
// test ends.
func New(t testing.TB) *store.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := Config(t)
	s, err := store.Open(ctx, cfg, "", zaptest.NewLogger(t))
	if err != nil {
		t.Fatalf("test ClickHouse at %s (start it with scripts/clickhouse.sh start): %v", Addr(), err)
	}
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if os.Getenv("SYNCD_TEST_KEEP_DB") == "" {
			_ = s.Conn().Exec(ctx, "DROP DATABASE IF EXISTS `"+cfg.Database+"`")
		}
		s.Close(ctx)
	})
	return s
}
