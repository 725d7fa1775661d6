package normalize

import (
	"testing"
	"time"
)

func TestParseDate(t *testing.T) {
	const want = "2017-10-10"
	ok := []struct{ in, want string }{
		{"2017-10-10", want},
		{"2017/10/10", want},
		{"2017.10.10", want},
		{"20171010", want},
		{"2017年10月10日", want},
		{"2017年10月10", want},
		{"2017-10-10 08:30:00", want},
		{"2017-10-10 08:30", want},
		{"2017/10/10 8:30:00", want},
		{"2017-10-10T08:30:00", want},
		{"2017-10-10 00:00:00.0", want}, // JDBC Timestamp.toString
		{"2017年10月10日 08:30", want},
		{"2017-10-10T08:30:00+08:00", want},
		{"2017-10-09T20:00:00Z", want},         // 04:00 on the 10th in Shanghai
		{"2017-10-10T15:59:59Z", want},         // 23:59:59 in Shanghai
		{"2017-10-10T16:00:00Z", "2017-10-11"}, // midnight in Shanghai
		{"2017-10-10T08:30:00.123-05:00", want},
		{"43018", want},
		{"43018.5", want},
		{"1507564800000", want}, // 2017-10-10 00:00 +08:00 in Unix ms
		{"２０１７－１０－１０", want},
		{"２０１７年１０月１０日", want},
		{" 2017-10-10\u3000", want},
		{"2017-1-5", "2017-01-05"},
		{"2016-02-29", "2016-02-29"},
		{"9999-12-31", "9999-12-31"},
		{"20000", "1954-10-03"},
		{"80000", "2119-01-11"},
	}
	for _, c := range ok {
		got, err := ParseDate(c.in)
		if err != nil {
			t.Errorf("ParseDate(%q): %v", c.in, err)
			continue
		}
		if s := got.Format(time.DateOnly); s != c.want {
			t.Errorf("ParseDate(%q) = %s, want %s", c.in, s, c.want)
		}
		if got.Location() != shanghai || got.Hour() != 0 || got.Minute() != 0 || got.Second() != 0 || got.Nanosecond() != 0 {
			t.Errorf("ParseDate(%q) = %v, want 00:00 in Asia/Shanghai", c.in, got)
		}
	}
	bad := []string{
		"", "2017-02-30", "2017-13-01", "2017-00-10", "2017-10-00", "2017-10-32",
		"20170230", "2017年2月30日", "2017-10-10 25:00", "2017-10-10 08:61",
		"2017-10-10 08:30:0", "2017-10-10x", "2017-10/10", "2017年10-10",
		"19999", "80001", "1017-10-10", "171010", "2017", "2017-10",
		"昨天", "2017-10-10T08:30:00+0800x", "43018.x",
		"2017-10-10T", "-2017-10-10", "12345678901234",
	}
	for _, s := range bad {
		if got, err := ParseDate(s); err == nil {
			t.Errorf("ParseDate(%q) = %v, want an error", s, got)
		}
	}
}

func FuzzParseDate(f *testing.F) {
	fuzzSeeds(f, "2017-10-10", "2017/1/5 8:30", "20171010", "2017年10月10日", "43018",
		"2017-10-09T20:00:00Z", "1507564800000", "２０１７－１０－１０", "2017-02-30")
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDate(s)
		if err != nil {
			return
		}
		if d.Location() != shanghai || d.Hour() != 0 || d.Minute() != 0 || d.Second() != 0 || d.Nanosecond() != 0 {
			t.Fatalf("ParseDate(%q) = %v: not 00:00 in Shanghai", s, d)
		}
		for _, layout := range []string{time.DateOnly, time.RFC3339, "2006年01月02日", "20060102"} {
			again, err := ParseDate(d.Format(layout))
			if err != nil || !again.Equal(d) {
				t.Fatalf("ParseDate(%q) = %v, but ParseDate(%q) = %v, %v", s, d, d.Format(layout), again, err)
			}
		}
	})
}
