package normalize

import (
	"fmt"
	"strings"

	"github.com/panjin-gov/syncd/internal/record"
)

// Authority is one entry of the authorities directory: an issuing authority
// (处罚机关/决定机关) by its 统一社会信用代码 and names.
//
// record_id hashes kind + authority + document number, with the authority's
// 统一社会信用代码 when known, else its name. A source that sends only the name
// and one that sends the code would give one decision two record_ids; with
// the authority in the directory, Normalize fills in the code from the name
// (and the name from the code) before deriving the record_id, so both give
// one. Aliases are the other names sources use (former names, short forms):
// they resolve to the same entry.
type Authority struct {
	Name    string   `mapstructure:"name" json:"name"`
	USCC    string   `mapstructure:"uscc" json:"uscc,omitempty"`
	Aliases []string `mapstructure:"aliases" json:"aliases,omitempty"`
}

// Authorities is an authorities directory, shared by sources through
// WithAuthorities or given per source in Mapping.Authorities.
type Authorities []Authority

// Validate checks the directory without I/O: every entry has a name, codes
// pass GB 32100, and no name, alias or code points at two entries.
func (a Authorities) Validate() error {
	var probs problems
	compileAuthorities(&probs, "authorities", a, &directory{})
	return probs.err()
}

// directory is the compiled authorities directory.
type directory struct {
	byName map[string]*Authority // authorityKey(name or alias) -> entry
	byUSCC map[string]*Authority
}

func (d *directory) empty() bool { return len(d.byName) == 0 }

// authorityKey is how authority names are compared: CleanText'ed, without
// spaces, full-width ASCII folded, ASCII lower-cased.
func authorityKey(s string) string {
	s = CleanText(s)
	if strings.IndexByte(s, ' ') >= 0 {
		s = strings.ReplaceAll(s, " ", "")
	}
	return lookupKey(foldWidth(s))
}

func compileAuthorities(probs *problems, key string, list []Authority, d *directory) {
	if d.byName == nil {
		d.byName = make(map[string]*Authority)
		d.byUSCC = make(map[string]*Authority)
	}
	for i := range list {
		a := list[i]
		k := fmt.Sprintf("%s[%d]", key, i)
		a.Name = CleanText(a.Name)
		a.USCC = CleanCode(a.USCC)
		if a.Name == "" {
			probs.add(k+".name", "required")
			continue
		}
		if a.USCC != "" {
			if why := usccProblem(a.USCC); why != "" {
				probs.add(k+".uscc", "%q: %s", a.USCC, why)
				continue
			}
			if prev, dup := d.byUSCC[a.USCC]; dup && prev.Name != a.Name {
				probs.add(k+".uscc", "%s is also the code of %q", a.USCC, prev.Name)
				continue
			}
		}
		e := &a
		names := append([]string{a.Name}, a.Aliases...)
		ok := true
		for _, n := range names {
			nk := authorityKey(n)
			if nk == "" {
				probs.add(k+".aliases", "empty alias")
				ok = false
				continue
			}
			if prev, dup := d.byName[nk]; dup && (prev.Name != a.Name || prev.USCC != a.USCC) {
				probs.add(k, "name %q is also an entry for %q", n, prev.Name)
				ok = false
			}
		}
		if !ok {
			continue
		}
		for _, n := range names {
			d.byName[authorityKey(n)] = e
		}
		if a.USCC != "" {
			d.byUSCC[a.USCC] = e
		}
	}
}

// compileDefaultAuthority resolves Mapping.DefaultAuthority: a name, alias
// or code of the directory, else a name or (when it is one) a code taken as
// it is.
func (m *Mapping) compileDefaultAuthority(probs *problems, sp *spec) {
	v := strings.TrimSpace(m.DefaultAuthority)
	if v == "" {
		return
	}
	if e := sp.dir.byName[authorityKey(v)]; e != nil {
		sp.defAuthority = *e
		return
	}
	if c := CleanCode(v); usccProblem(c) == "" {
		if e := sp.dir.byUSCC[c]; e != nil {
			sp.defAuthority = *e
		} else {
			sp.defAuthority = Authority{USCC: c}
		}
		return
	}
	if CleanText(v) == "" {
		probs.add("default_authority", "empty")
		return
	}
	sp.defAuthority = Authority{Name: CleanText(v)}
}

// resolveAuthority completes the record's authority from the directory and
// returns what record.ID is derived from: the code when known, else the
// directory's name for it, else the name as sent.
func (sp *spec) resolveAuthority(r *record.Record, res *Result) (string, *fault) {
	if r.AuthorityName == "" && r.AuthorityUSCC == "" {
		r.AuthorityName, r.AuthorityUSCC = sp.defAuthority.Name, sp.defAuthority.USCC
	}
	if sp.dir.empty() {
		if r.AuthorityUSCC != "" {
			return r.AuthorityUSCC, nil
		}
		return r.AuthorityName, nil
	}
	var byName, byCode *Authority
	if r.AuthorityName != "" {
		byName = sp.dir.byName[authorityKey(r.AuthorityName)]
	}
	if r.AuthorityUSCC != "" {
		byCode = sp.dir.byUSCC[r.AuthorityUSCC]
	}
	switch {
	case byName != nil && r.AuthorityUSCC == "":
		r.AuthorityUSCC = byName.USCC
	case byCode != nil && r.AuthorityName == "":
		r.AuthorityName = byCode.Name
	case byName != nil && byName.USCC != "" && byName.USCC != r.AuthorityUSCC:
		flt := &fault{field: fAuthorityUSCC, reason: ReasonAuthorityMismatch, value: r.AuthorityUSCC,
			why: fmt.Sprintf("the authorities directory gives %s for %q", byName.USCC, r.AuthorityName)}
		if flt = sp.flag(res, ruleAuthorityMismatch, flt); flt != nil {
			return "", flt
		}
	case byName == nil && byCode == nil:
		f, v := fAuthorityName, r.AuthorityName
		if v == "" {
			f, v = fAuthorityUSCC, r.AuthorityUSCC
		}
		flt := &fault{field: f, reason: ReasonUnknownAuthority, value: v, why: "not in the authorities directory"}
		if flt = sp.flag(res, ruleUnknownAuthority, flt); flt != nil {
			return "", flt
		}
	}
	switch {
	case r.AuthorityUSCC != "":
		return r.AuthorityUSCC, nil
	case byName != nil:
		return byName.Name, nil
	}
	return r.AuthorityName, nil
}
