package testdb_test

import (
	"context"
	"strings"
	"testing"

	"github.com/panjin-gov/syncd/internal/testdb"
)

func TestPostgresFreshDatabase(t *testing.T) {
	var name string
	t.Run("inner", func(t *testing.T) {
		_, db := testdb.Postgres(t)
		testdb.Exec(t, db, `CREATE TABLE x (id int PRIMARY KEY, s text)`, `INSERT INTO x VALUES (1, '盘锦')`)
		if err := db.QueryRowContext(context.Background(), `SELECT current_database()`).Scan(&name); err != nil {
			t.Fatal(err)
		}
		var s string
		if err := db.QueryRowContext(context.Background(), `SELECT s FROM x`).Scan(&s); err != nil || s != "盘锦" {
			t.Fatalf("read back %q, %v", s, err)
		}
	})
	if !strings.HasPrefix(name, "t_testpostgresfreshdatabase_inner_") {
		t.Fatalf("database name %q", name)
	}
	_, db := testdb.Postgres(t)
	var n int
	if err := db.QueryRowContext(context.Background(), `SELECT count(*) FROM pg_database WHERE datname = $1`, name).Scan(&n); err != nil || n != 0 {
		t.Fatalf("database %s still there after its test (%d, %v)", name, n, err)
	}
}

func TestMySQLFreshDatabase(t *testing.T) {
	var name string
	t.Run("inner", func(t *testing.T) {
		_, db := testdb.MySQL(t)
		testdb.Exec(t, db, `CREATE TABLE x (id int PRIMARY KEY, s varchar(20))`, `INSERT INTO x VALUES (1, '盘锦')`)
		if err := db.QueryRowContext(context.Background(), `SELECT DATABASE()`).Scan(&name); err != nil {
			t.Fatal(err)
		}
		var s string
		if err := db.QueryRowContext(context.Background(), `SELECT s FROM x`).Scan(&s); err != nil || s != "盘锦" {
			t.Fatalf("read back %q, %v", s, err)
		}
	})
	_, db := testdb.MySQL(t)
	var n int
	if err := db.QueryRowContext(context.Background(), `SELECT count(*) FROM information_schema.schemata WHERE schema_name = ?`, name).Scan(&n); err != nil || n != 0 {
		t.Fatalf("database %s still there after its test (%d, %v)", name, n, err)
	}
}

func TestNameIsSafe(t *testing.T) {
	t.Run("Ünïcode/and spaces-盘锦", func(t *testing.T) {
		n := testdb.Name(t)
		if len(n) > 63 {
			t.Fatalf("%q longer than 63", n)
		}
		for _, r := range n {
			if !(r == '_' || (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9')) {
				t.Fatalf("%q has %q", n, r)
			}
		}
	})
}
