package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// QualityFields are the fields whose presence makes up field completeness
// (DOMAIN.md: cities are assessed on completeness ≥ 95 %). The subject's
// identifier counts as present when it has either a 统一社会信用代码 or an ID
// number.
var QualityFields = []string{
	"subject_name", "subject identifier (uscc or id number)", "doc_no", "violation_type", "facts",
	"legal_basis", "category", "content", "decision_date", "authority_name", "authority_uscc",
	"data_source_unit", "region_code", "publicity_until",
}

var qualityExprs = []string{
	"subject_name != ''", "(subject_uscc != '' OR subject_id_hash != '')", "doc_no != ''", "violation_type != ''",
	"facts != ''", "legal_basis != ''", "category != ''", "content != ''", "decision_date > toDate('1971-01-01')",
	"authority_name != ''", "authority_uscc != ''", "data_source_unit != ''", "region_code != ''",
	"isNotNull(publicity_until)",
}

// SourceQuality is the valid-ingest rate of one source: of the source keys
// it sent, the share that is a stored record rather than only a reject.
// Rejects are not attributable to a data-source unit (they never became a
// record), so this figure is per source only.
type SourceQuality struct {
	Source    string  `json:"source"`
	Keys      uint64  `json:"keys"`     // distinct source keys seen (stored or rejected)
	Stored    uint64  `json:"stored"`   // keys that are stored records
	Rejected  uint64  `json:"rejected"` // keys only ever rejected
	ValidRate float64 `json:"valid_ingest_rate"`
}

// UnitQuality is field completeness and timeliness for one source and data
// source unit (数据来源单位), over current record versions.
type UnitQuality struct {
	Source       string  `json:"source"`
	Unit         string  `json:"data_source_unit"`
	Records      uint64  `json:"records"`
	Completeness float64 `json:"field_completeness"` // mean share of QualityFields present
	Timely       uint64  `json:"timely"`             // first stored within 7 working days of the decision
	TimelyShare  float64 `json:"timely_share"`
}

// Quality is the data-quality report DOMAIN.md's indicators ask for.
type Quality struct {
	Since   time.Time       `json:"since"` // decisions on or after this date
	Sources []SourceQuality `json:"sources"`
	Units   []UnitQuality   `json:"units"`
}

// TimelyWorkingDays is the reporting deadline cities are assessed on.
const TimelyWorkingDays = 7

// Quality computes the data-quality figures for decisions on or after
// since. Working days are Monday to Friday; statutory holidays and 调休
// working weekends are not modelled, so the figure is slightly generous
// around holidays.
func (s *Store) Quality(ctx context.Context, since time.Time) (Quality, error) {
	q := Quality{Since: date(since)}
	rows, err := s.conn.Query(ctx, `SELECT source, uniqExact(source_key),
			uniqExactIf(source_key, stored), uniqExactIf(source_key, NOT stored)
		FROM (
			SELECT source_system AS source, source_key, 1 AS stored FROM `+s.t("records")+` WHERE decision_date >= toDate(?)
			UNION ALL
			SELECT source, source_key, 0 AS stored FROM `+s.t("rejects")+` WHERE rejected_at >= ?
				AND (source, source_key) NOT IN (SELECT source_system, source_key FROM `+s.t("records")+`)
		) GROUP BY source ORDER BY source`, q.Since.Format("2006-01-02"), dateTime(since).UTC())
	if err != nil {
		return q, fmt.Errorf("quality by source: %w", err)
	}
	for rows.Next() {
		var sq SourceQuality
		if err := rows.Scan(&sq.Source, &sq.Keys, &sq.Stored, &sq.Rejected); err != nil {
			rows.Close()
			return q, err
		}
		if sq.Keys > 0 {
			sq.ValidRate = float64(sq.Stored) / float64(sq.Keys)
		}
		q.Sources = append(q.Sources, sq)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return q, err
	}

	// Current versions, their completeness, and when each record was first
	// stored (record_log keeps every version; records collapses them).
	completeness := "((" + strings.Join(qualityExprs, ") + (") + fmt.Sprintf(")) / %d", len(qualityExprs))
	// Aliases differ from column names: ClickHouse would otherwise resolve
	// the columns inside argMax to the aliases.
	rows, err = s.conn.Query(ctx, `SELECT q_src, q_unit, q_decided, toDate(q_first), count(), sum(q_c) FROM (
			SELECT r.record_id, r.q_src AS q_src, r.q_unit AS q_unit, r.q_decided AS q_decided, r.q_c AS q_c, l.q_first AS q_first
			FROM (
				SELECT record_id, argMax(source_system, version) AS q_src, argMax(data_source_unit, version) AS q_unit,
					argMax(decision_date, version) AS q_decided, argMax(`+completeness+`, version) AS q_c
				FROM `+s.t("records")+` WHERE decision_date >= toDate(?) GROUP BY record_id
			) AS r
			ANY LEFT JOIN (
				SELECT record_id, min(ingested_at) AS q_first FROM `+s.t("record_log")+` GROUP BY record_id
			) AS l USING record_id
		) GROUP BY q_src, q_unit, q_decided, toDate(q_first) ORDER BY q_src, q_unit`, q.Since.Format("2006-01-02"))
	if err != nil {
		return q, fmt.Errorf("quality by unit: %w", err)
	}
	defer rows.Close()
	byKey := map[[2]string]*UnitQuality{}
	var order [][2]string
	for rows.Next() {
		var src, unit string
		var decided, first time.Time
		var n uint64
		var c float64
		if err := rows.Scan(&src, &unit, &decided, &first, &n, &c); err != nil {
			return q, err
		}
		k := [2]string{src, unit}
		u := byKey[k]
		if u == nil {
			u = &UnitQuality{Source: src, Unit: unit}
			byKey[k] = u
			order = append(order, k)
		}
		u.Records += n
		u.Completeness += c
		if WorkingDaysBetween(decided, first) <= TimelyWorkingDays {
			u.Timely += n
		}
	}
	if err := rows.Err(); err != nil {
		return q, err
	}
	for _, k := range order {
		u := byKey[k]
		if u.Records > 0 {
			u.Completeness /= float64(u.Records)
			u.TimelyShare = float64(u.Timely) / float64(u.Records)
		}
		q.Units = append(q.Units, *u)
	}
	return q, nil
}

// WorkingDaysBetween counts the working days (Monday–Friday) after from up
// to and including to; 0 when to is not after from.
func WorkingDaysBetween(from, to time.Time) int {
	from = time.Date(from.Year(), from.Month(), from.Day(), 0, 0, 0, 0, time.UTC)
	to = time.Date(to.Year(), to.Month(), to.Day(), 0, 0, 0, 0, time.UTC)
	days := int(to.Sub(from).Hours() / 24)
	if days <= 0 {
		return 0
	}
	n := days / 7 * 5
	wd := from.Weekday()
	for i := 0; i < days%7; i++ {
		wd = (wd + 1) % 7
		if wd != time.Saturday && wd != time.Sunday {
			n++
		}
	}
	return n
}
