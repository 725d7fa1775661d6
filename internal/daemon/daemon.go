// Package daemon assembles syncd from its config: the store, one ingest
// runner per source, one push runner per target, the publicity-expiry job,
// the scheduler and the admin HTTP API. cmd/syncd calls it; everything it
// wires lives in the packages it names.
package daemon

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/panjin-gov/syncd/internal/config"
	"github.com/panjin-gov/syncd/internal/connectors"
	"github.com/panjin-gov/syncd/internal/ingest"
	"github.com/panjin-gov/syncd/internal/normalize"
	"github.com/panjin-gov/syncd/internal/pii"
	"github.com/panjin-gov/syncd/internal/publicity"
	"github.com/panjin-gov/syncd/internal/push"
	"github.com/panjin-gov/syncd/internal/record"
	"github.com/panjin-gov/syncd/internal/store"
)

// SourceFactory opens a connector of one source type.
type SourceFactory func(name string, cfg config.Source) (connectors.Source, error)

// TargetFactory opens a push target of one exchange style.
type TargetFactory func(name string, cfg config.Target) (push.Target, error)

// Registry is the set of connector and target kinds this binary knows,
// built explicitly in main.
type Registry struct {
	Sources map[string]SourceFactory
	Targets map[string]TargetFactory
}

// Daemon is a configured syncd.
type Daemon struct {
	cfg   *config.Config
	reg   Registry
	log   *zap.Logger
	store *store.Store
	pii   *pii.Protector

	normalizers map[string]*normalize.Normalizer
	layouts     map[string]*push.Layout
	breakers    map[string]*push.Breaker // per target, spanning runs
	// AfterStore, when set, is given to every ingest runner (tests use it to
	// crash between store and cursor save).
	AfterStore func(source string, batch int)
	// AfterSend, when set, is given to every push runner (tests use it to
	// crash between a platform's answer and the ledger write).
	AfterSend func(target string, batch int)
}

// Open connects to the store and prepares every source's normalizer. It
// does not contact sources or platforms.
func Open(ctx context.Context, cfg *config.Config, reg Registry, log *zap.Logger) (*Daemon, error) {
	p, err := protector(cfg.PII)
	if err != nil {
		return nil, err
	}
	d := &Daemon{cfg: cfg, reg: reg, log: log, pii: p, normalizers: map[string]*normalize.Normalizer{},
		layouts: map[string]*push.Layout{}, breakers: map[string]*push.Breaker{}}
	for name, tc := range cfg.Targets {
		l, err := tc.Profile.Compile()
		if err != nil {
			return nil, fmt.Errorf("%s: targets.%s.profile: %w", cfg.File(), name, err)
		}
		d.layouts[name] = l
		d.breakers[name] = push.NewBreaker(tc.Circuit)
	}
	for name, sc := range cfg.Sources {
		n, err := normalize.New(name, sc.Mapping, p, normalize.WithAuthorities(cfg.Authorities))
		if err != nil {
			return nil, fmt.Errorf("%s: sources.%s.mapping: %w", cfg.File(), name, err)
		}
		d.normalizers[name] = n
	}
	d.store, err = store.Open(ctx, cfg.ClickHouse, config.Secret(cfg.ClickHouse.PasswordEnv), log.Named("store"))
	if err != nil {
		return nil, err
	}
	return d, nil
}

// NewNormalizer builds one source's normalizer from config alone, touching
// no store: `syncd normalize` uses it for dry runs.
func NewNormalizer(cfg *config.Config, source string) (*normalize.Normalizer, error) {
	sc, ok := cfg.Sources[source]
	if !ok {
		return nil, fmt.Errorf("no source %q in %s (have: %s)", source, cfg.File(), strings.Join(keys(cfg.Sources), ", "))
	}
	p, err := protector(cfg.PII)
	if err != nil {
		return nil, err
	}
	return normalize.New(source, sc.Mapping, p, normalize.WithAuthorities(cfg.Authorities))
}

// protector builds the ID-number protector from keys in the environment.
func protector(c config.PII) (*pii.Protector, error) {
	decode := func(env, s string) ([]byte, error) {
		b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
		if err != nil || len(b) != 32 {
			return nil, fmt.Errorf("%s: must hold base64 of 32 random bytes (generate one with: head -c32 /dev/urandom | base64)", env)
		}
		return b, nil
	}
	hashS, encS := config.Secret(c.HashKeyEnv), config.Secret(c.EncKeyEnv)
	if hashS == "" || encS == "" {
		return nil, fmt.Errorf("person ID numbers need keys: set %s and %s (base64 of 32 random bytes each; see README \"Keys\")", c.HashKeyEnv, c.EncKeyEnv)
	}
	hashKey, err := decode(c.HashKeyEnv, hashS)
	if err != nil {
		return nil, err
	}
	encKey, err := decode(c.EncKeyEnv, encS)
	if err != nil {
		return nil, err
	}
	keys := [][]byte{encKey}
	for _, old := range strings.Split(config.Secret(c.OldEncKeysEnv), ",") {
		if strings.TrimSpace(old) == "" {
			continue
		}
		k, err := decode(c.OldEncKeysEnv, old)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return pii.New(hashKey, keys...)
}

// Store is the opened store.
func (d *Daemon) Store() *store.Store { return d.store }

// Close releases the store.
func (d *Daemon) Close(ctx context.Context) error { return d.store.Close(ctx) }

// Migrate applies pending schema migrations.
func (d *Daemon) Migrate(ctx context.Context) ([]uint32, error) { return d.store.Migrate(ctx) }

// Pull runs one source's pull until it has caught up.
func (d *Daemon) Pull(ctx context.Context, name string) (ingest.Stats, error) {
	sc, ok := d.cfg.Sources[name]
	if !ok {
		return ingest.Stats{}, fmt.Errorf("no source %q in %s (have: %s)", name, d.cfg.File(), strings.Join(keys(d.cfg.Sources), ", "))
	}
	factory, ok := d.reg.Sources[sc.Type]
	if !ok {
		return ingest.Stats{}, fmt.Errorf("source %s: type %q is not built into this binary", name, sc.Type)
	}
	src, err := factory(name, sc)
	if err != nil {
		return ingest.Stats{}, fmt.Errorf("source %s: %w", name, err)
	}
	defer src.Close(context.WithoutCancel(ctx))
	r := &ingest.Runner{
		Name: name, Source: src, Normalizer: d.normalizers[name], Store: d.store, Sealer: d.pii,
		BatchSize: sc.BatchSize, Retry: sc.Retry, Log: d.log.Named("pull").With(zap.String("source", name)),
		Workers: sc.Workers, BatchBytes: sc.BatchBytes,
	}
	if d.AfterStore != nil {
		r.AfterStore = func(batch int) { d.AfterStore(name, batch) }
	}
	return r.Run(ctx)
}

// Push runs one target's push.
func (d *Daemon) Push(ctx context.Context, name string) (push.Stats, error) {
	return d.push(ctx, name, nil)
}

// PushDryRun decides what a push would send and passes each item to preview
// (skip says why an item would not be sent); it sends nothing and writes
// nothing. The target is opened (its config checked) but not contacted.
func (d *Daemon) PushDryRun(ctx context.Context, name string, preview func(it push.Item, skip string)) (push.Stats, error) {
	return d.push(ctx, name, preview)
}

func (d *Daemon) push(ctx context.Context, name string, preview func(push.Item, string)) (push.Stats, error) {
	r, closeFn, err := d.pushRunner(name)
	if err != nil {
		return push.Stats{}, err
	}
	defer closeFn()
	if preview != nil {
		r.Preview = preview
		// A dry run prints to a terminal: ID numbers appear masked.
		r.IDs = maskingOpener{d.pii}
	}
	return r.Run(ctx)
}

// maskingOpener opens a sealed ID number and masks it.
type maskingOpener struct{ p *pii.Protector }

func (m maskingOpener) Open(ct []byte) (string, error) {
	if m.p == nil {
		return "", errors.New("no PII key configured")
	}
	id, err := m.p.Open(ct)
	if err != nil {
		return "", err
	}
	return pii.Mask(id), nil
}

// RequeueSent puts the versions target was handed more than olderThan ago
// and never answered for back into its queue: each gets a 'failed' ledger
// entry saying so, and the target's watermark moves back to the oldest of
// them, so the next push run sends them again (as the same idempotency
// keys; a platform that did hold them answers with duplicates).
func (d *Daemon) RequeueSent(ctx context.Context, target string, olderThan time.Duration) (int, error) {
	if _, ok := d.cfg.Targets[target]; !ok {
		return 0, fmt.Errorf("no target %q in %s", target, d.cfg.File())
	}
	sent, err := d.store.SentBefore(ctx, target, time.Now().Add(-olderThan))
	if err != nil || len(sent) == 0 {
		return 0, err
	}
	now := time.Now()
	earliest := sent[0].IngestedAt
	entries := make([]store.LedgerEntry, len(sent))
	for i, v := range sent {
		entries[i] = store.LedgerEntry{Target: target, RecordID: v.RecordID, Version: v.Version, Op: v.Op,
			Outcome: store.Failed, BatchID: "requeue", AttemptAt: now,
			Message: "requeued by the operator: no feedback since " + v.SentAt.Format(time.DateTime)}
		if v.IngestedAt.Before(earliest) {
			earliest = v.IngestedAt
		}
	}
	if err := d.store.WriteLedger(ctx, entries); err != nil {
		return 0, err
	}
	name := push.WatermarkName(target)
	cur, ok, err := d.store.Cursor(ctx, name)
	if err != nil {
		return 0, err
	}
	back := earliest.Add(-time.Second).UTC()
	if t, perr := time.Parse(time.RFC3339, cur); !ok || perr != nil || back.Before(t) {
		if err := d.store.SaveCursor(ctx, name, back.Format(time.RFC3339)); err != nil {
			return 0, err
		}
	}
	d.log.Info("sent versions requeued", zap.String("target", target), zap.Int("versions", len(sent)),
		zap.Time("watermark", back))
	return len(sent), nil
}

func (d *Daemon) pushRunner(name string) (*push.Runner, func(), error) {
	tc, ok := d.cfg.Targets[name]
	if !ok {
		return nil, nil, fmt.Errorf("no target %q in %s (have: %s)", name, d.cfg.File(), strings.Join(keys(d.cfg.Targets), ", "))
	}
	factory, ok := d.reg.Targets[tc.Type]
	if !ok {
		return nil, nil, fmt.Errorf("target %s: type %q is not built into this binary", name, tc.Type)
	}
	t, err := factory(name, tc)
	if err != nil {
		return nil, nil, fmt.Errorf("target %s: %w", name, err)
	}
	kinds := map[record.Kind]bool{}
	for _, k := range tc.Kinds {
		kinds[record.Kind(k)] = true
	}
	r := &push.Runner{
		Name: name, Target: t, Ledger: d.store, Layout: d.layouts[name], IDs: d.pii, Kinds: kinds,
		BatchSize: tc.BatchSize, Retry: tc.Retry, Log: d.log.Named("push").With(zap.String("target", name)),
		Breaker: d.breakers[name], RateLimit: tc.RateLimit,
	}
	if d.AfterSend != nil {
		r.AfterSend = func(batch int) { d.AfterSend(name, batch) }
	}
	return r, func() { t.Close(context.Background()) }, nil
}

// Replay re-normalizes a source's stored raw payloads with the current
// mapping and writes new versions where the result changed (dryRun: count
// only). With no source named, every configured source is replayed.
func (d *Daemon) Replay(ctx context.Context, source string, dryRun bool) (map[string]ingest.ReplayStats, error) {
	names := keys(d.cfg.Sources)
	if source != "" {
		if _, ok := d.cfg.Sources[source]; !ok {
			return nil, fmt.Errorf("no source %q in %s (have: %s)", source, d.cfg.File(), strings.Join(names, ", "))
		}
		names = []string{source}
	}
	out := map[string]ingest.ReplayStats{}
	for _, name := range names {
		r := &ingest.Replayer{Source: name, Store: d.store, Normalizer: d.normalizers[name], Unsealer: d.pii,
			BatchSize: d.cfg.Sources[name].BatchSize, DryRun: dryRun, Log: d.log.Named("replay")}
		st, err := r.Run(ctx)
		out[name] = st
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// Expire runs the publicity-expiry housekeeping once.
func (d *Daemon) Expire(ctx context.Context) (int, error) {
	return publicity.Expire(ctx, d.store, time.Now(), d.cfg.Location(), d.log.Named("housekeeping"))
}

// RunOnce runs every pull, then every push, once. It returns an error
// naming every job that failed.
func (d *Daemon) RunOnce(ctx context.Context) error {
	var errs []error
	for _, name := range keys(d.cfg.Sources) {
		if _, err := d.Pull(ctx, name); err != nil {
			errs = append(errs, fmt.Errorf("pull %s: %w", name, err))
		}
	}
	for _, name := range keys(d.cfg.Targets) {
		if _, err := d.Push(ctx, name); err != nil {
			errs = append(errs, fmt.Errorf("push %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
