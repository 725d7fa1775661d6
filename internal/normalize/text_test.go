package normalize

import (
	"testing"
	"unicode/utf8"
)

func TestCleanText(t *testing.T) {
	cases := []struct{ in, want string }{
		{"盘锦市生态环境局", "盘锦市生态环境局"},
		{"  盘锦市生态环境局\u3000", "盘锦市生态环境局"},
		{"违反《中华人民共和国大气污染防治法》第一百零八条，\n\n责令改正。", "违反《中华人民共和国大气污染防治法》第一百零八条， 责令改正。"},
		{"a\t \u3000 b", "a b"},
		{"中共盘锦市\u200b纪律检查委员会", "中共盘锦市纪律检查委员会"},
		{"\ufeff记过处分", "记过处分"},
		{"a \u200b b", "a b"},
		{"x\x00y\x7f", "xy"},
		{"bad \xff utf8", "bad \ufffd utf8"},
		{"", ""},
		{" \u3000\n", ""},
		{"（一）、【二】；“三”", "（一）、【二】；“三”"},
	}
	for _, c := range cases {
		if got := CleanText(c.in); got != c.want {
			t.Errorf("CleanText(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestCleanTextNoAllocWhenClean(t *testing.T) {
	s := "盘锦市双台子区人民政府 2026年"
	if n := testing.AllocsPerRun(100, func() { _ = CleanText(s) }); n != 0 {
		t.Errorf("CleanText of clean text allocates %v times", n)
	}
}

func TestCleanCode(t *testing.T) {
	cases := []struct{ in, want string }{
		{"91350100M000100Y43", "91350100M000100Y43"},
		{"９１３５０１００Ｍ０００１００Ｙ４３", "91350100M000100Y43"},
		{" 9135 0100 m000 100y43\u3000", "91350100M000100Y43"},
		{"21110219850312001x", "21110219850312001X"},
		{"19220382－1", "19220382-1"},
		{"", ""},
	}
	for _, c := range cases {
		if got := CleanCode(c.in); got != c.want {
			t.Errorf("CleanCode(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestNormalizeDocNo(t *testing.T) {
	cases := []struct{ in, want string }{
		{"盘纪处[2026] 12号", "盘纪处〔2026〕12号"},
		{"盘纪处〔2026〕12号", "盘纪处〔2026〕12号"},
		{"盘环罚字(2026)3号", "盘环罚字〔2026〕3号"},
		{"盘环罚字（2026）3号", "盘环罚字〔2026〕3号"},
		{"盘环罚字【2026】3号", "盘环罚字〔2026〕3号"},
		{"盘环罚字﹝2026﹞3号", "盘环罚字〔2026〕3号"},
		{"盘环罚字［２０２６］３号", "盘环罚字〔2026〕3号"},
		{"盘环罚字[２０２６]第 ３ 号", "盘环罚字〔2026〕第3号"},
		{"（2026）辽1102执12号", "〔2026〕辽1102执12号"},
		{"盘环罚字（大气）[2026]3号", "盘环罚字（大气）〔2026〕3号"}, // only a year's brackets change
		{"盘环罚字(202)3号", "盘环罚字(202)3号"},
		{"盘环罚字(20261)3号", "盘环罚字(20261)3号"},
		{"（2026〕", "〔2026〕"},
		{"", ""},
	}
	for _, c := range cases {
		if got := NormalizeDocNo(c.in); got != c.want {
			t.Errorf("NormalizeDocNo(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func fuzzSeeds(f *testing.F, seeds ...string) {
	for _, s := range seeds {
		f.Add(s)
	}
}

func FuzzCleanText(f *testing.F) {
	fuzzSeeds(f, "  盘锦市\u3000生态 环境局\n", "a\u200b b", "\xff", "\u0085x\u00a0")
	f.Fuzz(func(t *testing.T, s string) {
		c := CleanText(s)
		if again := CleanText(c); again != c {
			t.Fatalf("CleanText not idempotent: %q -> %q -> %q", s, c, again)
		}
		if !utf8.ValidString(c) {
			t.Fatalf("CleanText(%q) = %q: invalid UTF-8", s, c)
		}
		if textIsClean(c) != true {
			t.Fatalf("CleanText(%q) = %q, which textIsClean rejects", s, c)
		}
	})
}

func FuzzCleanCode(f *testing.F) {
	fuzzSeeds(f, "９１３５０１００ｍ０００１００ｙ４３", " 2111 02x ", "\xffａ", "\u2060１")
	p := testProtector(f)
	f.Fuzz(func(t *testing.T, s string) {
		c := CleanCode(s)
		if again := CleanCode(c); again != c {
			t.Fatalf("CleanCode not idempotent: %q -> %q -> %q", s, c, again)
		}
		// pii normalizes ID numbers with its own copy of these rules.
		if p.Hash(s) != p.Hash(c) {
			t.Fatalf("pii.Hash(%q) != pii.Hash(CleanCode) = pii.Hash(%q)", s, c)
		}
	})
}

func FuzzNormalizeDocNo(f *testing.F) {
	fuzzSeeds(f, "盘纪处[2026] 12号", "((2017)", "(2017)2018)", "［２０２６］", "【2017〕")
	f.Fuzz(func(t *testing.T, s string) {
		c := NormalizeDocNo(s)
		if again := NormalizeDocNo(c); again != c {
			t.Fatalf("NormalizeDocNo not idempotent: %q -> %q -> %q", s, c, again)
		}
	})
}
