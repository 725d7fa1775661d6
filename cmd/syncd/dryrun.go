package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/panjin-gov/syncd/internal/normalize"
	"github.com/panjin-gov/syncd/internal/record"
)

// dryRun normalizes each non-empty line of in as one raw payload and writes
// one JSON line per payload: {"line":N,"record":{…}} or {"line":N,"reject":{…}}.
// Records show the masked ID number only. It ends with a count line.
func dryRun(n *normalize.Normalizer, source string, in io.Reader, out io.Writer) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	now := time.Now()
	var recs, rejects, line int
	for sc.Scan() {
		line++
		b := sc.Bytes()
		if len(b) == 0 {
			continue
		}
		raw := record.Raw{Source: source, Key: "line:" + strconv.Itoa(line), Payload: append([]byte(nil), b...), Encoding: "utf-8", FetchedAt: now}
		rec, rej := n.Normalize(&raw, now)
		if rej != nil {
			rejects++
			enc.Encode(map[string]any{"line": line, "reject": map[string]string{
				"field": rej.Field, "reason": rej.Reason, "message": rej.Message}})
			continue
		}
		recs++
		rec.SubjectIDEnc = nil // ciphertext is noise here
		enc.Encode(map[string]any{"line": line, "record": rec})
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read line %d: %w", line+1, err)
	}
	fmt.Fprintf(out, "{\"records\":%d,\"rejects\":%d}\n", recs, rejects)
	return nil
}
