package normalize

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/panjin-gov/syncd/internal/pii"
	"github.com/panjin-gov/syncd/internal/record"
)

var update = flag.Bool("update", false, "rewrite testdata/normalize/*/expected.jsonl")

// goldenDir holds the golden cases: the repository's testdata/normalize, one
// folder per case (mapping.json, input.jsonl, expected.jsonl).
const goldenDir = "../../testdata/normalize"

// goldenNow is the ingest time of every golden case.
var goldenNow = time.Date(2026, 3, 1, 10, 0, 0, 0, shanghai)

func testProtector(tb testing.TB) *pii.Protector {
	tb.Helper()
	p, err := pii.New(bytes.Repeat([]byte{0x11}, pii.KeySize), bytes.Repeat([]byte{0x22}, pii.KeySize))
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// goldenRecord is the JSON rendering of a record in expected.jsonl.
type goldenRecord struct {
	RecordID           string `json:"record_id"`
	Kind               string `json:"kind"`
	Status             string `json:"status"`
	Severity           string `json:"severity,omitempty"`
	SubjectType        string `json:"subject_type"`
	SubjectName        string `json:"subject_name"`
	SubjectUSCC        string `json:"subject_uscc,omitempty"`
	SubjectIDType      string `json:"subject_id_type,omitempty"`
	SubjectIDHash      string `json:"subject_id_hash,omitempty"`
	SubjectIDMasked    string `json:"subject_id_masked,omitempty"`
	SubjectIDSealed    bool   `json:"subject_id_sealed,omitempty"` // SubjectIDEnc opens to the hashed ID
	LegalRep           string `json:"legal_rep,omitempty"`
	RegionCode         string `json:"region_code,omitempty"`
	DocNo              string `json:"doc_no"`
	ViolationType      string `json:"violation_type,omitempty"`
	Facts              string `json:"facts,omitempty"`
	LegalBasis         string `json:"legal_basis,omitempty"`
	Category           string `json:"category,omitempty"`
	Content            string `json:"content,omitempty"`
	FineAmount         string `json:"fine_amount,omitempty"`
	ConfiscationAmount string `json:"confiscation_amount,omitempty"`
	DecisionDate       string `json:"decision_date"`
	ValidUntil         string `json:"valid_until,omitempty"`
	PublicityUntil     string `json:"publicity_until,omitempty"`
	AuthorityName      string `json:"authority_name,omitempty"`
	AuthorityUSCC      string `json:"authority_uscc,omitempty"`
	DataSourceUnit     string `json:"data_source_unit,omitempty"`
	DataSourceUSCC     string `json:"data_source_uscc,omitempty"`
	Remark             string `json:"remark,omitempty"`
	ContentHash        string `json:"content_hash"`
}

type goldenReject struct {
	Field   string `json:"field"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

type goldenLine struct {
	Record      *goldenRecord `json:"record,omitempty"`
	Reject      *goldenReject `json:"reject,omitempty"`
	Warnings    []Warning     `json:"warnings,omitempty"`
	Unpublished bool          `json:"unpublished,omitempty"`
}

func date(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(time.DateOnly)
}

func amount(a record.Amount) string {
	if a == 0 {
		return ""
	}
	return a.String()
}

func renderRecord(t *testing.T, p *pii.Protector, r *record.Record) *goldenRecord {
	g := &goldenRecord{
		RecordID: r.RecordID, Kind: string(r.Kind), Status: string(r.Status), Severity: r.Severity,
		SubjectType: string(r.SubjectType), SubjectName: r.SubjectName, SubjectUSCC: r.SubjectUSCC,
		SubjectIDType: r.SubjectIDType, SubjectIDHash: r.SubjectIDHash, SubjectIDMasked: r.SubjectIDMasked,
		LegalRep: r.LegalRep, RegionCode: r.RegionCode, DocNo: r.DocNo, ViolationType: r.ViolationType,
		Facts: r.Facts, LegalBasis: r.LegalBasis, Category: r.Category, Content: r.Content,
		FineAmount: amount(r.FineAmount), ConfiscationAmount: amount(r.ConfiscationAmount),
		DecisionDate: date(r.DecisionDate), ValidUntil: date(r.ValidUntil), PublicityUntil: date(r.PublicityUntil),
		AuthorityName: r.AuthorityName, AuthorityUSCC: r.AuthorityUSCC,
		DataSourceUnit: r.DataSourceUnit, DataSourceUSCC: r.DataSourceUSCC, Remark: r.Remark,
		ContentHash: r.ContentHash,
	}
	if r.SubjectIDEnc != nil {
		id, err := p.Open(r.SubjectIDEnc)
		if err != nil {
			t.Errorf("%s: SubjectIDEnc does not open: %v", r.SourceKey, err)
		} else if p.Hash(id) != r.SubjectIDHash || pii.Mask(id) != r.SubjectIDMasked {
			t.Errorf("%s: SubjectIDEnc opens to an ID whose hash or mask differs", r.SourceKey)
		} else {
			g.SubjectIDSealed = true
		}
	}
	return g
}

// idShaped finds anything shaped like an 18-char ID number.
var idShaped = regexp.MustCompile(`[0-9]{17}[0-9X]`)

// clearIDs returns the ID-shaped strings of a payload, cleaned, that are
// not 统一社会信用代码 (which may be all digits too).
func clearIDs(payload []byte) []string {
	var ids []string
	for _, m := range idShaped.FindAllString(CleanCode(string(payload)), -1) {
		if !ValidUSCC(m) {
			ids = append(ids, m)
		}
	}
	return ids
}

// TestGolden runs every testdata/normalize/<case>: mapping.json compiled for
// source "<case>", each line of input.jsonl normalized as one payload (key
// "<case>:<line>"), compared with the same line of expected.jsonl.
func TestGolden(t *testing.T) {
	dirs, err := filepath.Glob(goldenDir + "/*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no golden cases: %v", err)
	}
	p := testProtector(t)
	for _, dir := range dirs {
		name := filepath.Base(dir)
		t.Run(name, func(t *testing.T) {
			mb, err := os.ReadFile(filepath.Join(dir, "mapping.json"))
			if err != nil {
				t.Fatal(err)
			}
			var m Mapping
			dec := json.NewDecoder(bytes.NewReader(mb))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&m); err != nil {
				t.Fatalf("mapping.json: %v", err)
			}
			n, err := New(name, m, p)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			in, err := os.ReadFile(filepath.Join(dir, "input.jsonl"))
			if err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			sc := bufio.NewScanner(bytes.NewReader(in))
			sc.Buffer(nil, 1<<20)
			line := 0
			for sc.Scan() {
				line++
				payload := bytes.Clone(sc.Bytes())
				raw := &record.Raw{
					Source: name, Key: name + ":" + strconv.Itoa(line), Payload: payload, Encoding: "utf-8",
					UpdatedAt: goldenNow.Add(-time.Hour), FetchedAt: goldenNow,
				}
				var res Result
				n.NormalizeInto(raw, goldenNow, &res)
				rec, rej := res.Record, res.Reject
				var gl goldenLine
				if rej != nil {
					checkReject(t, raw, rej)
					gl.Reject = &goldenReject{Field: rej.Field, Reason: rej.Reason, Message: rej.Message}
					if len(res.Warnings) > 0 || res.Unpublished {
						t.Errorf("line %d: a reject with warnings or unpublished", line)
					}
				} else {
					checkRecord(t, raw, &rec, m.Authorities)
					gl.Record = renderRecord(t, p, &rec)
					gl.Warnings, gl.Unpublished = res.Warnings, res.Unpublished
					for _, w := range res.Warnings {
						if !slices.Contains(Reasons(), w.Reason) {
							t.Errorf("line %d: undocumented warning reason %q", line, w.Reason)
						}
					}
				}
				b, err := json.Marshal(gl)
				if err != nil {
					t.Fatal(err)
				}
				for _, id := range clearIDs(payload) {
					if bytes.Contains(b, []byte(id)) {
						t.Errorf("line %d: output holds the clear ID number %s", line, id)
					}
				}
				got.Write(b)
				got.WriteByte('\n')
			}
			if err := sc.Err(); err != nil {
				t.Fatal(err)
			}
			expPath := filepath.Join(dir, "expected.jsonl")
			if *update {
				if err := os.WriteFile(expPath, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(expPath)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			gotLines := bytes.Split(got.Bytes(), []byte("\n"))
			wantLines := bytes.Split(want, []byte("\n"))
			if len(gotLines) != len(wantLines) {
				t.Fatalf("%d lines, want %d", len(gotLines)-1, len(wantLines)-1)
			}
			for i := range gotLines {
				if !bytes.Equal(gotLines[i], wantLines[i]) {
					t.Errorf("line %d:\n got %s\nwant %s", i+1, gotLines[i], wantLines[i])
				}
			}
		})
	}
}

func checkReject(t *testing.T, raw *record.Raw, rej *record.Reject) {
	t.Helper()
	if rej.Source != raw.Source || rej.SourceKey != raw.Key || rej.RawHash != raw.Hash() ||
		!bytes.Equal(rej.Payload, raw.Payload) || !rej.RejectedAt.Equal(goldenNow) {
		t.Errorf("%s: reject provenance wrong: %+v", raw.Key, rej)
	}
	if !slices.Contains(Reasons(), rej.Reason) {
		t.Errorf("%s: undocumented reason %q", raw.Key, rej.Reason)
	}
}

func checkRecord(t *testing.T, raw *record.Raw, r *record.Record, dir []Authority) {
	t.Helper()
	switch {
	case r.Version != 0:
		t.Errorf("%s: Version = %d, want 0", raw.Key, r.Version)
	case r.SourceSystem != raw.Source || r.SourceKey != raw.Key || !r.SourceUpdatedAt.Equal(raw.UpdatedAt):
		t.Errorf("%s: provenance wrong", raw.Key)
	case r.RawHash != raw.Hash() || !r.IngestedAt.Equal(goldenNow):
		t.Errorf("%s: RawHash or IngestedAt wrong", raw.Key)
	case r.ContentHash != r.ComputeContentHash():
		t.Errorf("%s: ContentHash is not ComputeContentHash()", raw.Key)
	case !r.Kind.Valid() || !r.Status.Valid() || !r.SubjectType.Valid():
		t.Errorf("%s: invalid enum in %+v", raw.Key, r)
	}
	authority := r.AuthorityUSCC
	if authority == "" {
		authority = r.AuthorityName
		// A directory entry without a code: its name is the identity.
		for _, a := range dir {
			if a.USCC == "" && (a.Name == authority || slices.Contains(a.Aliases, authority)) {
				authority = a.Name
			}
		}
	}
	if r.RecordID != record.ID(r.Kind, authority, r.DocNo) {
		t.Errorf("%s: RecordID is not record.ID(kind, authority, doc_no)", raw.Key)
	}
}
