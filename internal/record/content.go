package record

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"sync"
	"time"
)

// ComputeContentHash returns the hex SHA-256 of the record's canonical content:
// every field that a platform or auditor sees, and none of identity-version or
// provenance. Two payloads with the same content hash are the same record
// version, so an identical re-send is a duplicate, not a new version.
func (r *Record) ComputeContentHash() string {
	bp := hashBufs.Get().(*[]byte)
	b := (*bp)[:0]
	str := func(s string) {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
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
	b = appendInt64(b, int64(r.FineAmount))
	b = appendInt64(b, int64(r.ConfiscationAmount))
	b = appendDate(b, r.DecisionDate)
	b = appendDate(b, r.ValidUntil)
	b = appendDate(b, r.PublicityUntil)
	str(r.AuthorityName)
	str(r.AuthorityUSCC)
	str(r.DataSourceUnit)
	str(r.DataSourceUSCC)
	str(r.Remark)
	sum := sha256.Sum256(b)
	if cap(b) <= maxPooledHashBuf {
		*bp = b
		hashBufs.Put(bp)
	}
	return hex.EncodeToString(sum[:])
}

// hashBufs holds the buffers ComputeContentHash lays a record out in before
// hashing it in one call: hashing field by field through hash.Hash costs a
// call and a conversion per field.
var hashBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// maxPooledHashBuf keeps a huge record's buffer from staying in the pool.
const maxPooledHashBuf = 64 << 10

func appendInt64(b []byte, v int64) []byte {
	return binary.LittleEndian.AppendUint64(b, uint64(v))
}

func appendDate(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return appendInt64(b, 0)
	}
	y, m, d := t.Date()
	return appendInt64(b, int64(y)*10000+int64(m)*100+int64(d))
}
