package normalize

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/panjin-gov/syncd/internal/record"
)

// SeverityRule derives a record's severity (失信程度) when the source gives
// none. Rules are tried in order, a source's own (Mapping.SeverityRules)
// before the defaults (DefaultSeverityRules); the first whose conditions
// all hold gives the severity. A rule without conditions matches every
// record, so it ends the list.
type SeverityRule struct {
	// Kinds the rule applies to (record.Kind values or their Chinese
	// names); empty means every kind.
	Kinds []string `mapstructure:"kinds" json:"kinds,omitempty"`
	// Categories: the rule applies when one item of the record's category
	// (处罚类别 / 处分种类, split at ; ， 、 / and spaces) contains one of these.
	Categories []string `mapstructure:"categories" json:"categories,omitempty"`
	// OnlyCategories: the rule applies when the category is not empty and
	// every item of it contains one of these.
	OnlyCategories []string `mapstructure:"only_categories" json:"only_categories,omitempty"`
	// FineAtLeast and FineBelow bound the fine amount in 万元 (e.g. "10",
	// "0.5"); empty means no bound. FineBelow needs a fine: a record
	// without one (no amount given) does not match it.
	FineAtLeast string `mapstructure:"fine_at_least" json:"fine_at_least,omitempty"`
	FineBelow   string `mapstructure:"fine_below" json:"fine_below,omitempty"`
	// Severity is 轻微, 一般 or 严重 (or minor, general, serious), or none to
	// leave the severity unknown (then no publicity period is computed).
	Severity string `mapstructure:"severity" json:"severity"`
}

// DefaultSeverityRules are tried after a source's own rules. Why these:
//
//   - 失信被执行人 is 严重: listing as a dishonest judgment debtor is the
//     courts' own "serious" finding (联合惩戒).
//   - 行政处罚 follows the tiers of the 信用修复 rules (DOMAIN.md): 严重 for
//     the penalties that take away a licence, the business or liberty
//     (吊销, 责令关闭, 责令停产停业, 限制开展生产经营活动, 限制从业, 降低资质等级,
//     行政拘留) and for fines from 10 万元; 轻微 for 警告 or 通报批评 alone and
//     for a 警告/通报批评/罚款 decision whose fine is below 1 万元 (the
//     "较低数额罚款"); 一般 otherwise. The two amounts are not in the
//     national standard (each province sets its own): they are placeholders
//     to confirm, overridable by severity_rules.
//   - 纪律处分 by the 处分期 of the sanction (政务处分法 art. 22, 中国共产党纪律处分条例):
//     警告 (6 months), 记过 (12 months), 严重警告 (党纪, 1 year) are 一般; 记大过
//     (18 months), 降级, 撤职 (24 months), 撤销党内职务, 留党察看, 开除 are 严重.
//     An unknown sanction is 一般.
//   - 问责处理: 改组, 免职, 降职, 责令辞职, 停职, 组织调整/组织处理 remove
//     people or bodies from office and are 严重; 通报, 诫勉, 检查 and the rest
//     are 一般.
//   - 司法判决 and contract breaches (政府采购/PPP/招商引资) are 一般: the
//     judgment or breach itself says nothing finer.
func DefaultSeverityRules() []SeverityRule {
	return []SeverityRule{
		{Kinds: []string{string(record.JudgmentDebtor)}, Severity: record.SeveritySerious},

		{Kinds: []string{string(record.AdminPenalty)}, Categories: []string{"吊销", "责令关闭", "责令停产停业", "停产停业", "限制开展生产经营活动", "限制从业", "降低资质等级", "行政拘留"}, Severity: record.SeveritySerious},
		{Kinds: []string{string(record.AdminPenalty)}, FineAtLeast: "10", Severity: record.SeveritySerious},
		{Kinds: []string{string(record.AdminPenalty)}, OnlyCategories: []string{"警告", "通报批评"}, Severity: record.SeverityMinor},
		{Kinds: []string{string(record.AdminPenalty)}, OnlyCategories: []string{"警告", "通报批评", "罚款"}, FineBelow: "1", Severity: record.SeverityMinor},
		{Kinds: []string{string(record.AdminPenalty)}, Severity: record.SeverityGeneral},

		{Kinds: []string{string(record.DisciplinaryAction)}, Categories: []string{"记大过", "降级", "撤职", "撤销党内职务", "留党察看", "开除"}, Severity: record.SeveritySerious},
		{Kinds: []string{string(record.DisciplinaryAction)}, Severity: record.SeverityGeneral},

		{Kinds: []string{string(record.Accountability)}, Categories: []string{"改组", "免职", "降职", "责令辞职", "停职", "组织调整", "组织处理"}, Severity: record.SeveritySerious},
		{Kinds: []string{string(record.Accountability)}, Severity: record.SeverityGeneral},

		{Severity: record.SeverityGeneral},
	}
}

// PublicityTier is what a severity means for publication.
type PublicityTier struct {
	// Period is how long after the decision date the record is published
	// when the source gives no publicity_until (公示截止期), and the longest a
	// source may give before publicity_too_long: a number and a unit, y
	// (年), m (月, 个月) or d (日, 天): "3m", "1y", "3年". "none" computes
	// nothing.
	Period string `mapstructure:"period" json:"period,omitempty"`
	// Publish is yes or no: no marks the records of this tier Unpublished.
	Publish string `mapstructure:"publish" json:"publish,omitempty"`
}

// DefaultPublicity is the tier table of DOMAIN.md: 轻微 up to 3 months and
// normally not published, 一般 up to 1 year, 严重 up to 3 years.
func DefaultPublicity() map[string]PublicityTier {
	return map[string]PublicityTier{
		record.SeverityMinor:   {Period: "3m", Publish: "no"},
		record.SeverityGeneral: {Period: "1y", Publish: "yes"},
		record.SeveritySerious: {Period: "3y", Publish: "yes"},
	}
}

// severity indexes record.Severities; sevNone is unknown.
type severity uint8

const (
	sevNone severity = iota
	sevMinor
	sevGeneral
	sevSerious
	numSeverities
)

var severityValues = [numSeverities]string{"", record.SeverityMinor, record.SeverityGeneral, record.SeveritySerious}

// severityIndex reads a configured severity; ok is false for none.
func severityIndex(s string) (severity, bool) {
	switch lookupKey(strings.TrimSpace(s)) {
	case record.SeverityMinor, "minor", "轻微失信":
		return sevMinor, true
	case record.SeverityGeneral, "general", "一般失信":
		return sevGeneral, true
	case record.SeveritySerious, "serious", "严重失信":
		return sevSerious, true
	}
	return sevNone, false
}

func severityOf(s string) severity {
	i, _ := severityIndex(s)
	return i
}

// period is a publicity period; zero means none.
type period struct{ years, months, days int }

func (p period) zero() bool { return p == period{} }

// add returns t + p, clamped to the last day of a month (2024-02-29 + 1y is
// 2025-02-28, not 03-01).
func (p period) add(t time.Time) time.Time {
	y, m, d := t.Date()
	first := time.Date(y+p.years, m+time.Month(p.months), 1, 0, 0, 0, 0, t.Location())
	last := first.AddDate(0, 1, -1).Day()
	return time.Date(first.Year(), first.Month(), min(d, last), 0, 0, 0, 0, t.Location()).AddDate(0, 0, p.days)
}

func parsePeriod(s string) (period, error) {
	s = strings.TrimSpace(foldWidth(s))
	if lookupKey(s) == "none" {
		return period{}, nil
	}
	n := 0
	for n < len(s) && isDigit(s[n]) {
		n++
	}
	if n == 0 || n > 3 {
		return period{}, fmt.Errorf("period %q: want a number and a unit (3m, 1y, 90d) or none", s)
	}
	v, _ := strconv.Atoi(s[:n])
	switch strings.TrimSpace(lookupKey(s[n:])) {
	case "y", "年":
		return period{years: v}, nil
	case "m", "月", "个月":
		return period{months: v}, nil
	case "d", "日", "天":
		return period{days: v}, nil
	}
	return period{}, fmt.Errorf("period %q: unknown unit (want y, m or d)", s)
}

// tier is a compiled PublicityTier.
type tier struct {
	period  period
	publish bool
}

// sevRule is a compiled SeverityRule.
type sevRule struct {
	kinds          []record.Kind
	categories     []string
	onlyCategories []string
	fineAtLeast    record.Amount
	fineBelow      record.Amount
	hasAtLeast     bool
	hasBelow       bool
	severity       severity
}

func (m *Mapping) compileSeverity(probs *problems, sp *spec) {
	rules := append(slices.Clone(m.SeverityRules), DefaultSeverityRules()...)
	for i, r := range rules {
		key := fmt.Sprintf("severity_rules[%d]", i)
		var cr sevRule
		for _, k := range r.Kinds {
			kind, ok := mapKind(CleanText(k))
			if !ok {
				probs.add(key+".kinds", "%q: not a record kind", k)
				continue
			}
			cr.kinds = append(cr.kinds, kind)
		}
		clean := func(list []string, sub string) []string {
			var out []string
			for _, c := range list {
				if c = CleanText(c); c == "" {
					probs.add(key+"."+sub, "empty category")
					continue
				}
				out = append(out, c)
			}
			return out
		}
		cr.categories = clean(r.Categories, "categories")
		cr.onlyCategories = clean(r.OnlyCategories, "only_categories")
		amount := func(s, sub string) (record.Amount, bool) {
			if strings.TrimSpace(s) == "" {
				return 0, false
			}
			a, err := parseAmount(s, UnitWanYuan)
			if err != nil {
				probs.add(key+"."+sub, "%q: %s", s, err)
			}
			return a, true
		}
		cr.fineAtLeast, cr.hasAtLeast = amount(r.FineAtLeast, "fine_at_least")
		cr.fineBelow, cr.hasBelow = amount(r.FineBelow, "fine_below")
		sev, ok := severityIndex(r.Severity)
		if !ok && lookupKey(strings.TrimSpace(r.Severity)) != "none" {
			probs.add(key+".severity", "%q: want 轻微, 一般, 严重 or none", r.Severity)
		}
		cr.severity = sev
		sp.sevRules = append(sp.sevRules, cr)
	}

	sp.tiers = [numSeverities]tier{}
	def := DefaultPublicity()
	for _, s := range record.Severities {
		t := def[s]
		sp.tiers[severityOf(s)] = tier{period: mustPeriod(t.Period), publish: t.Publish != "no"}
	}
	for _, key := range slices.Sorted(maps.Keys(m.Publicity)) {
		sev, ok := severityIndex(key)
		if !ok {
			probs.add("publicity."+key, "not a severity (want 轻微, 一般 or 严重)")
			continue
		}
		t := m.Publicity[key]
		if strings.TrimSpace(t.Period) != "" {
			p, err := parsePeriod(t.Period)
			if err != nil {
				probs.add("publicity."+key+".period", "%s", err)
			} else {
				sp.tiers[sev].period = p
			}
		}
		switch lookupKey(strings.TrimSpace(t.Publish)) {
		case "":
		case "yes":
			sp.tiers[sev].publish = true
		case "no":
			sp.tiers[sev].publish = false
		default:
			probs.add("publicity."+key+".publish", "%q: want yes or no", t.Publish)
		}
	}
}

func mustPeriod(s string) period {
	p, err := parsePeriod(s)
	if err != nil {
		panic("normalize: default " + err.Error())
	}
	return p
}

// deriveSeverity returns the severity of the first matching rule.
func (sp *spec) deriveSeverity(r *record.Record) string {
	for i := range sp.sevRules {
		if rl := &sp.sevRules[i]; rl.matches(r) {
			return severityValues[rl.severity]
		}
	}
	return ""
}

func (rl *sevRule) matches(r *record.Record) bool {
	if len(rl.kinds) > 0 && !slices.Contains(rl.kinds, r.Kind) {
		return false
	}
	if rl.hasAtLeast && r.FineAmount < rl.fineAtLeast || rl.hasBelow && (r.FineAmount == 0 || r.FineAmount >= rl.fineBelow) {
		return false
	}
	if len(rl.categories) > 0 && !anyCategory(r.Category, rl.categories) {
		return false
	}
	if len(rl.onlyCategories) > 0 && !onlyCategories(r.Category, rl.onlyCategories) {
		return false
	}
	return true
}

// categorySep reports whether r separates the items of a category value
// ("警告；罚款", "没收违法所得、没收非法财物").
func categorySep(r rune) bool {
	switch r {
	case ';', '；', ',', '，', '、', '/', ' ', '|':
		return true
	}
	return false
}

func anyCategory(category string, patterns []string) bool {
	for _, p := range patterns {
		if strings.Contains(category, p) {
			return true // a pattern holds no separator, so it sits in one item
		}
	}
	return false
}

func onlyCategories(category string, patterns []string) bool {
	items := 0
	rest := category
	for rest != "" {
		i := strings.IndexFunc(rest, categorySep)
		item := rest
		if i >= 0 {
			item = rest[:i]
			_, size := utf8.DecodeRuneInString(rest[i:])
			rest = rest[i+size:]
		} else {
			rest = ""
		}
		if item == "" {
			continue
		}
		items++
		found := false
		for _, p := range patterns {
			if strings.Contains(item, p) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return items > 0
}
