package push

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/panjin-gov/syncd/internal/record"
)

type fakeOpener struct{ opened int }

func (o *fakeOpener) Open(ct []byte) (string, error) {
	o.opened++
	if string(ct) == "bad" {
		return "", errors.New("no key for key id 9")
	}
	return "11010519491231002X", nil
}

func sample() *record.Record {
	return &record.Record{
		RecordID: "r1", Version: 2, Kind: record.DisciplinaryAction, Status: record.Active, Severity: "一般",
		SubjectType: record.CivilServant, SubjectName: "张三", SubjectIDEnc: []byte("sealed"),
		DocNo: "盘纪处〔2026〕1号", Category: "记过", DecisionDate: time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC),
		AuthorityName: "中共盘锦市纪律检查委员会", AuthorityUSCC: "11211100001234567X", RegionCode: "211100",
	}
}

func TestNationalProfileRendersCFCodes(t *testing.T) {
	l, err := Profile{}.Compile()
	if err != nil {
		t.Fatal(err)
	}
	ids := &fakeOpener{}
	d, err := l.Render(sample(), ids)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"CF_XDR_MC": "张三", "CF_XDR_LB": "自然人", "CF_WSH": "盘纪处〔2026〕1号", "CF_CFLB": "记过",
		"CF_JDRQ": "2026-03-04", "CF_CFJG": "中共盘锦市纪律检查委员会", "CF_CFJGDM": "11211100001234567X",
		"XYXX_LX": "纪律处分", "XYXX_YZCD": "一般", "XZQH_DM": "211100",
		"CF_XDR_ZJLX": "身份证", "CF_XDR_ZJHM": "11010519491231002X",
		"CF_NR_FK": "0", "CF_NR_WFFF": "0",
	}
	for k, v := range want {
		if d[k] != v {
			t.Errorf("%s = %v, want %v", k, d[k], v)
		}
	}
	for k := range d {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected field %s = %v", k, d[k])
		}
	}
	if ids.opened != 1 {
		t.Errorf("ID opened %d times for two ID fields, want once", ids.opened)
	}
	if !l.Published(record.Corrected) || l.Published(record.Disputed) {
		t.Error("default statuses should be active and corrected")
	}
}

func TestProfileOverridesOmitsAndRenames(t *testing.T) {
	p := Profile{
		Base:       "liaoning",
		Fields:     map[string]string{"version": "SJBB", "subject_name": "XDR_MC"},
		Omit:       []string{"zjhm", "zjlx"},
		Statuses:   []string{"active", "corrected", "disputed"},
		KindNames:  map[string]string{"disciplinary_action": "党纪政务处分"},
		DateFormat: "20060102",
	}
	l, err := p.Compile()
	if err != nil {
		t.Fatal(err)
	}
	d, err := l.Render(sample(), nil) // ID fields omitted: no opener needed
	if err != nil {
		t.Fatal(err)
	}
	if d["SJBB"] != "2" || d["cfjdrq"] != "20260304" || d["xxlb"] != "党纪政务处分" || d["XDR_MC"] != "张三" || d["xdrmc"] != nil {
		t.Errorf("rendered %v", d)
	}
	if _, ok := d["zjhm"]; ok {
		t.Error("omitted ID number rendered")
	}
	if !l.Published(record.Disputed) {
		t.Error("configured statuses ignored")
	}
}

func TestProfileRenderFailsWithoutKey(t *testing.T) {
	l, _ := Profile{}.Compile()
	if _, err := l.Render(sample(), nil); err == nil {
		t.Error("rendering a sealed ID without a PII key should fail")
	}
	r := sample()
	r.SubjectIDEnc = []byte("bad")
	if _, err := l.Render(r, &fakeOpener{}); err == nil || !strings.Contains(err.Error(), "key id 9") {
		t.Errorf("open error not passed on: %v", err)
	}
}

func TestProfileValidateNamesTheKey(t *testing.T) {
	p := Profile{Base: "mars", Fields: map[string]string{"subject_nmae": "X"}, Statuses: []string{"gone"}, DateFormat: "yyyy"}
	err := p.Validate()
	if err == nil {
		t.Fatal("bad profile accepted")
	}
	for _, want := range []string{"base: \"mars\"", "fields.subject_nmae: not a canonical field", "statuses[0]: \"gone\"", "date_format:"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if err := (&Profile{Base: "national_cf2021", Omit: []string{"NOPE"}}).Validate(); err == nil {
		t.Error("omitting a field the base does not have should be an error")
	}
}
