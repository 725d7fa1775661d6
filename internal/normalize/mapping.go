package normalize

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/panjin-gov/syncd/internal/record"
)

// Mapping is the declarative per-source mapping from config: where each
// canonical field comes from in the source's JSON payload, and how source
// values translate.
//
// viper lower-cases map keys, so every map key here (canonical names and
// source values alike) is compared ASCII case-insensitively. Source paths
// (the values of Fields and KindField) keep their case and match payload
// keys exactly first, case-insensitively second.
type Mapping struct {
	// Kind is the constant record kind (a record.Kind value or its Chinese
	// name), or empty when KindField is used. With both, Kind is the fallback
	// when the payload has no kind.
	Kind string `mapstructure:"kind" json:"kind,omitempty"`
	// KindField is the source path of the kind.
	KindField string `mapstructure:"kind_field" json:"kind_field,omitempty"`
	// KindMap maps source kind values to record.Kind values
	// ("纪律处分" -> "disciplinary_action"). It overrides the default names.
	KindMap map[string]string `mapstructure:"kind_map" json:"kind_map,omitempty"`
	// Fields maps canonical field names to source paths; "a.b.c" reads
	// nested JSON objects.
	Fields map[string]string `mapstructure:"fields" json:"fields,omitempty"`
	// Constants maps canonical field names to a constant value, used when
	// Fields gives nothing (no path, or an absent or empty value).
	Constants map[string]string `mapstructure:"constants" json:"constants,omitempty"`
	// ValueMaps maps, per canonical field, source values to canonical
	// values. A source value not in the map passes through unchanged and
	// must then be valid for the field on its own.
	ValueMaps map[string]map[string]string `mapstructure:"value_maps" json:"value_maps,omitempty"`
	// AmountUnits gives the unit of fine_amount and confiscation_amount
	// when the value carries none: 元 or 万元 (the default).
	AmountUnits map[string]string `mapstructure:"amount_units" json:"amount_units,omitempty"`

	// Profile is a ready-made mapping (ProfileCF2021, ProfileCF2016) that
	// the entries above complete and override.
	Profile string `mapstructure:"profile" json:"profile,omitempty"`
	// Rules sets the action of a validation rule (Rule… names): reject,
	// warn or off. Rules not named keep their defaults (see Rules).
	Rules map[string]string `mapstructure:"rules" json:"rules,omitempty"`
	// SeverityRules derive the severity when the source gives none; they
	// are tried before DefaultSeverityRules.
	SeverityRules []SeverityRule `mapstructure:"severity_rules" json:"severity_rules,omitempty"`
	// Publicity overrides DefaultPublicity per severity (轻微, 一般, 严重).
	Publicity map[string]PublicityTier `mapstructure:"publicity" json:"publicity,omitempty"`
	// Authorities is this source's part of the authorities directory,
	// added to the shared one (WithAuthorities).
	Authorities []Authority `mapstructure:"authorities" json:"authorities,omitempty"`
	// DefaultAuthority is the issuing authority of records that name none:
	// a name, alias or 统一社会信用代码 of the directory (which then gives both
	// name and code), else a name or code taken as it is.
	DefaultAuthority string `mapstructure:"default_authority" json:"default_authority,omitempty"`
}

// Validate checks the mapping without I/O. Every problem is reported, one
// per line, naming its key: `fields.subjekt_name: unknown canonical field`.
func (m *Mapping) Validate() error {
	_, err := m.compile(nil)
	return err
}

// fieldSpec is one canonical field's compiled mapping.
type fieldSpec struct {
	path       string            // source path, "" when none
	constant   string            // used when the path gives nothing
	constClean string            // CleanText(constant)
	hasConst   bool              // constant is set (it may be "")
	values     map[string]string // lookupKey(CleanText(source value)) -> canonical value
	unit       string            // amounts: unit of a bare number
}

// spec is a compiled Mapping.
type spec struct {
	fields       [numFields]fieldSpec
	paths        *pathTrie
	actions      [numRules]action
	sevRules     []sevRule
	tiers        [numSeverities]tier
	dir          directory
	defAuthority Authority
}

type problems []string

func (p *problems) add(key, format string, args ...any) {
	*p = append(*p, key+": "+fmt.Sprintf(format, args...))
}

func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	slices.Sort(p)
	p = slices.Compact(p)
	errs := make([]error, len(p))
	for i, s := range p {
		errs[i] = errors.New(s)
	}
	return errors.Join(errs...)
}

// canonical resolves a config key to a canonical field.
func canonical(key string) (field, bool) {
	f, ok := fieldByName[lookupKey(strings.TrimSpace(key))]
	return f, ok
}

// compile compiles m; shared is the shared authorities directory (nil for
// none).
func (m *Mapping) compile(shared []Authority) (*spec, error) {
	var probs problems
	sp := &spec{paths: newPathTrie()}
	full := m.withProfile(&probs)
	m = &full

	// Rules first: checking constants needs their actions.
	m.compileRules(&probs, sp)

	// Source paths.
	paths := make(map[field]string)
	for _, key := range slices.Sorted(maps.Keys(m.Fields)) {
		path := m.Fields[key]
		f, ok := canonical(key)
		if !ok {
			probs.add("fields."+key, "unknown canonical field (want one of %s)", strings.Join(fieldNames[:], ", "))
			continue
		}
		if prev, dup := paths[f]; dup {
			probs.add("fields."+key, "given twice (also as %q)", prev)
			continue
		}
		if !validPath(path) {
			probs.add("fields."+key, "bad source path %q", path)
			continue
		}
		paths[f] = path
	}
	if m.KindField != "" {
		switch {
		case paths[fKind] != "":
			probs.add("kind_field", "conflicts with fields.kind")
		case !validPath(m.KindField):
			probs.add("kind_field", "bad source path %q", m.KindField)
		default:
			paths[fKind] = m.KindField
		}
	}
	for f, path := range paths {
		sp.fields[f].path = path
		sp.paths.add(path, f)
	}
	sp.paths.finish()

	// Units come first: value maps and constants of amounts use them.
	for _, key := range slices.Sorted(maps.Keys(m.AmountUnits)) {
		f, ok := canonical(key)
		if !ok || f.class() != classAmount {
			probs.add("amount_units."+key, "not an amount field (want %s or %s)", FieldFineAmount, FieldConfiscationAmount)
			continue
		}
		unit := strings.TrimSpace(m.AmountUnits[key])
		if _, ok := scaleDigits(unit); !ok {
			probs.add("amount_units."+key, "unknown unit %q (want %s or %s)", unit, UnitYuan, UnitWanYuan)
			continue
		}
		sp.fields[f].unit = unit
	}

	// Value maps, kind_map included (it wins over value_maps.kind).
	for _, key := range slices.Sorted(maps.Keys(m.ValueMaps)) {
		f, ok := canonical(key)
		switch {
		case !ok:
			probs.add("value_maps."+key, "unknown canonical field")
			continue
		case f == fSubjectIDNumber:
			probs.add("value_maps."+key, "an ID number cannot be value-mapped")
			continue
		}
		sp.fields[f].values = sp.compileValueMap(&probs, "value_maps."+key, f, m.ValueMaps[key], sp.fields[f].values)
	}
	sp.fields[fKind].values = sp.compileValueMap(&probs, "kind_map", fKind, m.KindMap, sp.fields[fKind].values)

	// Constants.
	for _, key := range slices.Sorted(maps.Keys(m.Constants)) {
		f, ok := canonical(key)
		switch {
		case !ok:
			probs.add("constants."+key, "unknown canonical field")
			continue
		case f == fSubjectIDNumber:
			probs.add("constants."+key, "a clear ID number cannot be a constant")
			continue
		case f == fKind && m.Kind != "":
			probs.add("constants."+key, "conflicts with kind")
			continue
		case sp.fields[f].hasConst:
			probs.add("constants."+key, "given twice")
			continue
		}
		v := m.Constants[key]
		if flt := sp.check(f, v); flt != nil {
			probs.add("constants."+key, "%q: %s", v, flt.why)
			continue
		}
		sp.fields[f].constant, sp.fields[f].constClean, sp.fields[f].hasConst = v, CleanText(v), true
	}
	if m.Kind != "" {
		if flt := sp.check(fKind, m.Kind); flt != nil {
			probs.add("kind", "%q: %s", m.Kind, flt.why)
		} else {
			sp.fields[fKind].constant, sp.fields[fKind].constClean, sp.fields[fKind].hasConst = m.Kind, CleanText(m.Kind), true
		}
	}

	m.compileSeverity(&probs, sp)
	// The shared directory first: a source's entries may repeat its entries
	// but not contradict them.
	compileAuthorities(&probs, "authorities(shared)", shared, &sp.dir)
	compileAuthorities(&probs, "authorities", m.Authorities, &sp.dir)
	m.compileDefaultAuthority(&probs, sp)

	// Every required field needs a source.
	has := func(f field) bool { return sp.fields[f].path != "" || sp.fields[f].hasConst }
	if !has(fKind) {
		probs.add("kind", "no kind: set kind, kind_field, fields.kind or constants.kind")
	}
	for _, f := range []field{fSubjectName, fDocNo, fDecisionDate} {
		if !has(f) {
			probs.add("fields."+f.String(), "required field has no source path or constant")
		}
	}
	if !has(fAuthorityName) && !has(fAuthorityUSCC) && m.DefaultAuthority == "" {
		probs.add("fields."+FieldAuthorityName, "required: authority_name or authority_uscc needs a source path or constant (or set default_authority)")
	}
	return sp, probs.err()
}

// validPath reports whether path is a usable dotted source path.
func validPath(path string) bool {
	if strings.TrimSpace(path) != path || path == "" {
		return false
	}
	for seg := range strings.SplitSeq(path, ".") {
		if seg == "" {
			return false
		}
	}
	return true
}

// compileValueMap adds the entries of in to into, keyed by lookup key, and
// checks each canonical value is valid for f.
func (sp *spec) compileValueMap(probs *problems, key string, f field, in map[string]string, into map[string]string) map[string]string {
	if len(in) == 0 {
		return into
	}
	if into == nil {
		into = make(map[string]string, len(in))
	}
	seen := make(map[string]string, len(in))
	for _, src := range slices.Sorted(maps.Keys(in)) {
		v := in[src]
		lk := lookupKey(CleanText(src))
		if prev, dup := seen[lk]; dup && in[prev] != v {
			probs.add(key+"."+src, "same source value as %q with a different target", prev)
			continue
		}
		seen[lk] = src
		if flt := sp.check(f, v); flt != nil {
			probs.add(key+"."+src, "%q: %s", v, flt.why)
			continue
		}
		into[lk] = v
	}
	return into
}

// check converts a configured value of f as Normalize would and returns
// the fault, if any. It needs no protector: configured values never hold ID
// numbers.
func (sp *spec) check(f field, v string) *fault {
	if CleanText(v) == "" {
		return nil // an empty value means "nothing", as in a payload
	}
	var r record.Record
	return sp.set(&r, f, v, CleanText(v), time.Now(), nil, nil)
}
