// Package connectors declares what syncd needs of a source system and holds
// one sub-package per kind of source (httpsrc, and later sqlsrc, kafka,
// filedrop). Connectors only read: the ingest runner owns the lifecycle,
// retries, storing and cursor saving.
package connectors

import (
	"context"
	"errors"

	"github.com/panjin-gov/syncd/internal/backoff"
	"github.com/panjin-gov/syncd/internal/record"
)

// Source is a source system that can be read incrementally from a cursor.
//
// A cursor is an opaque string the source itself produced (empty means "from
// the beginning"). The runner saves Batch.Next only after the batch is
// durably stored, so a source must be able to resume from any cursor it
// returned: pull is at-least-once, storage is idempotent.
type Source interface {
	// Fetch returns the records after cursor, at most max of them.
	Fetch(ctx context.Context, cursor string, max int) (Batch, error)
	// Close releases connections.
	Close(ctx context.Context) error
}

// Batch is one fetch's worth of raw records.
type Batch struct {
	Records []record.Raw
	// Next is the cursor just after the last record of this batch.
	Next string
	// More says the source has more after Next right now; false means the
	// runner has caught up.
	More bool
	// Token is connector-private state handed back to Committer.Commit
	// (Kafka messages, a claimed file); nil for cursor-only sources.
	Token any
}

// Committer is implemented by sources whose position lives in the source
// system itself: Kafka consumer-group offsets, claimed files in a drop
// folder. The runner calls Commit after the batch is durably stored and its
// cursor saved; a batch never committed (a crash) is delivered again when
// the source is reopened.
type Committer interface {
	Commit(ctx context.Context, b Batch) error
}

// ErrPermanent marks an error a retry cannot fix (bad credentials, a 4xx
// answer, a cursor the source does not understand). Wrap it:
// fmt.Errorf("...: %w", connectors.ErrPermanent).
var ErrPermanent = errors.New("permanent source error")

// RetryAfterError is a transient error with a delay the source asked for
// (an HTTP Retry-After, say).
type RetryAfterError = backoff.RetryAfterError
