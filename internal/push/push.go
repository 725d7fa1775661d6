// Package push delivers record versions to upstream credit platforms and
// keeps the per-target ledger of what each platform accepted.
//
// The Runner owns a push run: it selects the versions a target has not
// finished since its watermark, decides add / update / withdraw, sends them
// in batches through a Target (one sub-package per exchange style, e.g.
// httpjson), retries transport failures with backoff, and writes every
// outcome to the ledger. A version counts as delivered only when the
// platform's receipt accepts it.
package push

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/panjin-gov/syncd/internal/backoff"
	"github.com/panjin-gov/syncd/internal/record"
	"github.com/panjin-gov/syncd/internal/store"
)

// Target is one platform connection in one exchange style.
type Target interface {
	// Send delivers one batch and returns one receipt per item, in any
	// order, matched by Key. An error means the batch as a whole was not
	// processed (transport failure, 5xx) and may be retried; items the
	// platform answered for individually are receipts, not errors.
	Send(ctx context.Context, batchID string, items []Item) ([]Receipt, error)
	Close(ctx context.Context) error
}

// Item is one record version to deliver.
type Item struct {
	Key    string // idempotency key: record_id:version
	Op     store.Op
	Record *record.Record
	Data   map[string]any // the record in the platform's field layout; nil for withdraw
}

// Receipt is a platform's answer for one item.
type Receipt struct {
	Key      string
	Accepted bool
	// Pending says the platform took the item and will answer later through
	// FeedbackReader (database and file styles).
	Pending bool
	Code    string // the platform's code when rejected
	Message string
	Op      store.Op // the item's op; required in feedback receipts
}

// FeedbackReader is implemented by targets whose platform answers after
// Send returned: a 前置库 writing feedback rows, a file exchange writing
// receipt files. Feedback returns the answers after cursor (empty: from the
// beginning), at most max, and the cursor after them; the runner saves it
// once the answers are in the ledger.
type FeedbackReader interface {
	Feedback(ctx context.Context, cursor string, max int) ([]Receipt, string, error)
}

// FeedbackCursorName is the cursor key of a target's feedback position.
func FeedbackCursorName(target string) string { return "feedback:" + target }

// Key is the idempotency key of a record version.
func Key(id string, version uint64) string { return id + ":" + strconv.FormatUint(version, 10) }

// ParseKey splits an idempotency key into record id and version.
func ParseKey(key string) (id string, version uint64, ok bool) {
	i := strings.LastIndexByte(key, ':')
	if i <= 0 {
		return "", 0, false
	}
	v, err := strconv.ParseUint(key[i+1:], 10, 64)
	if err != nil {
		return "", 0, false
	}
	return key[:i], v, true
}

// ErrPermanent marks a Send error that retrying will not fix (bad
// credentials, a 4xx other than 429).
var ErrPermanent = errors.New("permanent target error")

// RetryAfterError is a transient Send error with the delay the platform
// asked for.
type RetryAfterError = backoff.RetryAfterError
