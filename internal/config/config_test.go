package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestGoodConfigLoadsWithDefaults(t *testing.T) {
	c, err := Load("testdata/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := c.Sources["discipline"]
	if s.BatchSize != 1000 || s.Retry.MaxAttempts != 5 || s.HTTP.PageSize != 200 || s.HTTP.Timeout != 30*time.Second {
		t.Fatalf("source defaults not applied: %+v %+v", s, s.HTTP)
	}
	tg := c.Targets["liaoning"]
	if tg.BatchSize != 200 || tg.Profile.Base != "national_cf2021" || tg.Circuit.Failures != 3 || len(tg.Kinds) != 1 {
		t.Fatalf("target defaults: %+v", tg)
	}
	if c.Log.Format != "json" || c.Timezone != "Asia/Shanghai" || c.Shutdown.Grace != 30*time.Second {
		t.Fatalf("top defaults: %+v", c)
	}
}

func TestEnvOverridesFile(t *testing.T) {
	t.Setenv("SYNCD_CLICKHOUSE_DATABASE", "from_env")
	t.Setenv("SYNCD_SOURCES_DISCIPLINE_HTTP_URL", "http://10.0.0.9:8080/api")
	t.Setenv("SYNCD_LOG_FORMAT", "console")
	c, err := Load("testdata/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.ClickHouse.Database != "from_env" || c.Sources["discipline"].HTTP.URL != "http://10.0.0.9:8080/api" || c.Log.Format != "console" {
		t.Fatalf("env not applied: db=%s url=%s log=%s", c.ClickHouse.Database, c.Sources["discipline"].HTTP.URL, c.Log.Format)
	}
}

// Every testdata/*.bad.yaml names the problem it must produce in its first
// line ("# want: file-relative key: message prefix").
func TestBadConfigsNameTheKey(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.bad.yaml")
	if len(files) < 5 {
		t.Fatalf("only %d bad configs", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			first, _, _ := strings.Cut(string(b), "\n")
			want := strings.TrimSpace(strings.TrimPrefix(first, "# want:"))
			_, err = Load(f)
			var ps Problems
			if !errors.As(err, &ps) {
				t.Fatalf("want Problems, got %v", err)
			}
			for _, p := range ps {
				if !strings.HasPrefix(p.Error(), f+": ") {
					t.Errorf("problem does not start with the file name: %q", p.Error())
				}
			}
			if !strings.Contains(ps.Error(), f+": "+want) {
				t.Fatalf("problems:\n%s\nwant a line containing %q", ps.Error(), f+": "+want)
			}
		})
	}
}

func TestMissingFile(t *testing.T) {
	_, err := Load("testdata/nope.yaml")
	if err == nil || !strings.Contains(err.Error(), "testdata/nope.yaml") {
		t.Fatalf("err = %v", err)
	}
}

func TestSecretFromEnvOrFile(t *testing.T) {
	t.Setenv("SYNCD_T_SECRET", "s3")
	if Secret("SYNCD_T_SECRET") != "s3" {
		t.Fatal("env secret not read")
	}
	p := filepath.Join(t.TempDir(), "tok")
	os.WriteFile(p, []byte("from-file\n"), 0o600)
	t.Setenv("SYNCD_T_OTHER_FILE", p)
	if got := Secret("SYNCD_T_OTHER"); got != "from-file" {
		t.Fatalf("file secret = %q", got)
	}
	if Secret("") != "" {
		t.Fatal("empty env name gave a secret")
	}
}
