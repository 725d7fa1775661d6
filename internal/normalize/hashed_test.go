package normalize

import (
	"reflect"
	"testing"

	"github.com/panjin-gov/syncd/internal/record"
)

// NormalizeHashed given the payload's hash is Normalize, records and
// rejects alike.
func TestNormalizeHashedIsNormalize(t *testing.T) {
	m := Mapping{
		Kind:      "admin_penalty",
		Fields:    map[string]string{"doc_no": "wsh", "subject_name": "mc", "decision_date": "rq", "authority_name": "jg", "fine_amount": "fk"},
		Constants: map[string]string{"subject_type": "agency"},
	}
	n, err := New("penalties", m, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, raw := range []record.Raw{
		{Source: "penalties", Key: "ok", Payload: []byte(`{"wsh":"盘市监罚〔2026〕1号","mc":"盘锦市某局","rq":"2026-01-02","jg":"盘锦市市场监督管理局","fk":"0.1"}`)},
		{Key: "no-source", Payload: []byte(`{"wsh":"盘市监罚〔2026〕2号","mc":"某局","rq":"2026-01-02","jg":"盘锦市市场监督管理局"}`)},
		{Source: "penalties", Key: "missing", Payload: []byte(`{"mc":"某局","rq":"2026-01-02","jg":"局"}`)},
		{Source: "penalties", Key: "bad-date", Payload: []byte(`{"wsh":"1号","mc":"某局","rq":"someday","jg":"局"}`)},
		{Source: "penalties", Key: "not-utf8", Payload: []byte("{\"wsh\":\"\xff\"}")},
		{Source: "penalties", Key: "not-json", Payload: []byte(`[1,2]`)},
	} {
		want, wantRej := n.Normalize(&raw, goldenNow)
		got, gotRej := n.NormalizeHashed(&raw, raw.Hash(), goldenNow)
		if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(gotRej, wantRej) {
			t.Errorf("%s: NormalizeHashed = %+v %+v, Normalize = %+v %+v", raw.Key, got, gotRej, want, wantRej)
		}
		if wantRej == nil && got.RawHash != raw.Hash() || wantRej != nil && gotRej.RawHash != raw.Hash() {
			t.Errorf("%s: raw hash not kept", raw.Key)
		}
	}
}
