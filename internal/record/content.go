package record

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"time"
)

// ComputeContentHash returns the hex SHA-256 of the record's canonical content:
// every field that a platform or auditor sees, and none of identity-version or
// provenance. Two payloads with the same content hash are the same record
// version, so an identical re-send is a duplicate, not a new version.
func (r *Record) ComputeContentHash() string {
	h := sha256.New()
	str := func(s string) {
		var n [4]byte
		binary.LittleEndian.PutUint32(n[:], uint32(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	str(string(r.Kind))
	str(string(r.Status))
	str(r.Severity)
	str(string(r.SubjectType))
	str(r.SubjectName)
	str(r.SubjectUSCC)
	str(r.SubjectIDType)
	str(r.SubjectIDHash)
	str(r.LegalRep)
	str(r.RegionCode)
	str(r.DocNo)
	str(r.ViolationType)
	str(r.Facts)
	str(r.LegalBasis)
	str(r.Category)
	str(r.Content)
	writeInt(h, int64(r.FineAmount))
	writeInt(h, int64(r.ConfiscationAmount))
	writeDate(h, r.DecisionDate)
	writeDate(h, r.ValidUntil)
	writeDate(h, r.PublicityUntil)
	str(r.AuthorityName)
	str(r.AuthorityUSCC)
	str(r.DataSourceUnit)
	str(r.DataSourceUSCC)
	str(r.Remark)
	var sum [32]byte
	return hex.EncodeToString(h.Sum(sum[:0]))
}

func writeInt(h hash.Hash, v int64) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(v))
	h.Write(b[:])
}

func writeDate(h hash.Hash, t time.Time) {
	if t.IsZero() {
		writeInt(h, 0)
		return
	}
	y, m, d := t.Date()
	writeInt(h, int64(y)*10000+int64(m)*100+int64(d))
}
