// Command syncd keeps a city's government-integrity (政务诚信) records in
// sync: it pulls them from source systems, normalizes them into the
// consolidated ClickHouse store and pushes them to the provincial and
// national credit platforms on a schedule. See README.md.
//
// This file is wiring only: commands, config, logger, registry.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/panjin-gov/syncd/internal/config"
	"github.com/panjin-gov/syncd/internal/daemon"
	"github.com/panjin-gov/syncd/internal/ingest"
	"github.com/panjin-gov/syncd/internal/logging"
	"github.com/panjin-gov/syncd/internal/push"
	"github.com/panjin-gov/syncd/internal/store"
)

// version is set at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

func main() {
	if err := rootCmd().Execute(); err != nil {
		var code exitCode
		if errors.As(err, &code) {
			os.Exit(int(code))
		}
		fmt.Fprintln(os.Stderr, "syncd:", err)
		os.Exit(1)
	}
}

// exitCode ends the process with a code after the command printed its own
// report.
type exitCode int

func (e exitCode) Error() string { return "exit " + strconv.Itoa(int(e)) }

func rootCmd() *cobra.Command {
	var cfgPath string
	root := &cobra.Command{
		Use:           "syncd",
		Short:         "Sync government-integrity records from source systems to credit platforms",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	def := os.Getenv("SYNCD_CONFIG")
	if def == "" {
		def = "config/syncd.yaml"
	}
	root.PersistentFlags().StringVarP(&cfgPath, "config", "c", def, "config file (env SYNCD_CONFIG)")

	// withDaemon loads config, builds the logger, opens the daemon and hands
	// fn the command's arguments.
	withDaemon := func(fn func(ctx context.Context, d *daemon.Daemon, cfg *config.Config, args []string) error) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, args []string) error {
			cfg, err := config.Load(cfgPath)
			if err != nil {
				return err
			}
			log, err := logging.New(cfg.Log.Format, cfg.Log.Level)
			if err != nil {
				return err
			}
			defer log.Sync()
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			d, err := daemon.Open(ctx, cfg, registry(), log)
			if err != nil {
				return err
			}
			defer d.Close(context.Background())
			installTestHooks(d)
			return fn(ctx, d, cfg, args)
		}
	}

	var once bool
	run := &cobra.Command{
		Use:   "run",
		Short: "Run the daemon: every pull, push and housekeeping job on its schedule, plus the admin API",
		Args:  cobra.NoArgs,
		RunE: withDaemon(func(ctx context.Context, d *daemon.Daemon, cfg *config.Config, args []string) error {
			if once {
				if _, err := d.Migrate(ctx); err != nil {
					return err
				}
				return d.RunOnce(ctx)
			}
			return d.Serve(ctx)
		}),
	}
	run.Flags().BoolVar(&once, "once", false, "run every pull, then every push, once and exit (non-zero if any failed)")

	migrate := &cobra.Command{
		Use:   "migrate",
		Short: "Create or upgrade the ClickHouse schema (idempotent)",
		Args:  cobra.NoArgs,
		RunE: withDaemon(func(ctx context.Context, d *daemon.Daemon, _ *config.Config, args []string) error {
			applied, err := d.Migrate(ctx)
			if err != nil {
				return err
			}
			fmt.Printf("schema at version %d in database %s (applied now: %v)\n", store.SchemaVersion(), d.Store().Database(), applied)
			return nil
		}),
	}

	checkConfig := &cobra.Command{
		Use:   "check-config",
		Short: "Validate the config file; print every problem as file: key: problem",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := config.Load(cfgPath)
			var ps config.Problems
			if errors.As(err, &ps) {
				for _, p := range ps {
					fmt.Fprintln(os.Stderr, p.Error())
				}
				return exitCode(2)
			}
			if err != nil {
				return err
			}
			fmt.Printf("%s: ok\n", cfgPath)
			return nil
		},
	}

	pull := &cobra.Command{
		Use:   "pull SOURCE",
		Short: "Pull one source until it has caught up, then exit",
		Args:  cobra.ExactArgs(1),
		RunE: withDaemon(func(ctx context.Context, d *daemon.Daemon, _ *config.Config, args []string) error {
			if _, err := d.Migrate(ctx); err != nil {
				return err
			}
			st, err := d.Pull(ctx, args[0])
			fmt.Printf("pulled %d, stored %d, rejected %d, duplicates %d, stale %d in %s\n",
				st.Pulled, st.Stored, st.Rejected, st.Duplicates, st.Stale, st.Duration.Round(time.Millisecond))
			return err
		}),
	}

	var pushDry bool
	pushCmd := &cobra.Command{
		Use:   "push TARGET",
		Short: "Push pending record versions to one target once, then exit (--dry-run: print what would be sent)",
		Long: `Push pending record versions to one target once, then exit.

With --dry-run nothing is sent, written to the ledger or moved: each version
that would be sent is printed as one JSON line (op, key, data in the
platform's fields, person ID numbers masked), and each version that would be
skipped with the reason.`,
		Args: cobra.ExactArgs(1),
		RunE: withDaemon(func(ctx context.Context, d *daemon.Daemon, _ *config.Config, args []string) error {
			if _, err := d.Migrate(ctx); err != nil {
				return err
			}
			if pushDry {
				enc := json.NewEncoder(os.Stdout)
				enc.SetEscapeHTML(false)
				var encErr error
				st, err := d.PushDryRun(ctx, args[0], func(it push.Item, skip string) {
					line := map[string]any{"op": it.Op, "key": it.Key, "kind": it.Record.Kind, "status": it.Record.Status}
					if skip != "" {
						line["skip"] = skip
					} else if it.Data != nil {
						line["data"] = it.Data
					}
					if e := enc.Encode(line); e != nil && encErr == nil {
						encErr = e
					}
				})
				fmt.Fprintf(os.Stderr, "dry run: would send %d, would skip %d, render rejects %d; nothing sent\n",
					st.Pushed, st.Skipped, st.Rejected)
				return errors.Join(err, encErr)
			}
			st, err := d.Push(ctx, args[0])
			fmt.Printf("pushed %d, accepted %d, rejected %d, sent (awaiting feedback) %d, feedback %d, failed %d, skipped %d in %s\n",
				st.Pushed, st.Accepted, st.Rejected, st.Sent, st.Feedback, st.Failed, st.Skipped, st.Duration.Round(time.Millisecond))
			return err
		}),
	}
	pushCmd.Flags().BoolVar(&pushDry, "dry-run", false, "print what would be sent; send and write nothing")

	var requeueSent time.Duration
	ledger := &cobra.Command{
		Use:   "ledger TARGET [--requeue-sent-older-than DURATION]",
		Short: "Show a target's delivery ledger: accepted, rejected, failed, pending and the last errors",
		Args:  cobra.ExactArgs(1),
		RunE: withDaemon(func(ctx context.Context, d *daemon.Daemon, cfg *config.Config, args []string) error {
			if _, ok := cfg.Targets[args[0]]; !ok {
				return fmt.Errorf("no target %q in %s", args[0], cfg.File())
			}
			if requeueSent > 0 {
				n, err := d.RequeueSent(ctx, args[0], requeueSent)
				if err != nil {
					return err
				}
				fmt.Printf("requeued %d versions sent more than %s ago without feedback; the next push sends them again\n", n, requeueSent)
			}
			sum, err := d.Store().Summary(ctx, args[0], 10)
			if err != nil {
				return err
			}
			fmt.Printf("target %s\n  accepted %d\n  rejected %d\n  failed   %d (retried next run)\n  skipped  %d\n  sent     %d (awaiting the platform's feedback)\n  pending  %d\n",
				args[0], sum.Accepted, sum.Rejected, sum.Failed, sum.Skipped, sum.Sent, sum.Pending)
			if sum.Sent > 0 {
				fmt.Printf("  oldest awaiting feedback since %s\n", sum.OldestSent.Format(time.DateTime))
			}

			if len(sum.LastErrors) > 0 {
				fmt.Println("last errors:")
				for _, e := range sum.LastErrors {
					fmt.Printf("  %s  %s v%d %s %s %s %s\n", e.AttemptAt.Format(time.DateTime), e.RecordID, e.Version, e.Op, e.Outcome, e.Code, e.Message)
				}
			}
			return nil
		}),
	}

	ledger.Flags().DurationVar(&requeueSent, "requeue-sent-older-than", 0,
		"put versions handed to a database or file platform longer ago than this, still without feedback, back in the queue")

	expire := &cobra.Command{
		Use:   "expire",
		Short: "Run the publicity-expiry housekeeping once",
		Args:  cobra.NoArgs,
		RunE: withDaemon(func(ctx context.Context, d *daemon.Daemon, _ *config.Config, args []string) error {
			n, err := d.Expire(ctx)
			fmt.Printf("expired %d records\n", n)
			return err
		}),
	}

	var replaySource string
	var replayDry bool
	replay := &cobra.Command{
		Use:   "replay [--source NAME] [--dry-run]",
		Short: "Re-normalize stored raw payloads with the current mapping; write new versions only where the result changed",
		Long: `Re-normalize stored raw payloads after a mapping change.

For each source (or the one named), the latest stored payload of every source
key is normalized again with the mapping in the config file. A record whose
canonical content changed gets a new version (pushed as an update on the
next push run); an unchanged one is left alone; a payload the new mapping
rejects is recorded as a reject and the stored record is kept. Sealed
originals are opened with the PII key, so ID numbers are replayed too.
--dry-run counts what would change and writes nothing.`,
		Args: cobra.NoArgs,
		RunE: withDaemon(func(ctx context.Context, d *daemon.Daemon, _ *config.Config, _ []string) error {
			if _, err := d.Migrate(ctx); err != nil {
				return err
			}
			stats, err := d.Replay(ctx, replaySource, replayDry)
			for _, name := range slices.Sorted(maps.Keys(stats)) {
				st := stats[name]
				verb := "changed"
				if replayDry {
					verb = "would change"
				}
				fmt.Printf("%s: replayed %d, %s %d (new records %d), unchanged %d, rejected %d in %s\n",
					name, st.Raws, verb, st.Changed, st.New, st.Unchanged, st.Rejected, st.Duration.Round(time.Millisecond))
			}
			return err
		}),
	}
	replay.Flags().StringVar(&replaySource, "source", "", "replay only this source (default: all)")
	replay.Flags().BoolVar(&replayDry, "dry-run", false, "count what would change; write nothing")

	status := &cobra.Command{
		Use:   "status",
		Short: "Where every source and target stands: cursors, watermarks, ledger counts",
		Args:  cobra.NoArgs,
		RunE: withDaemon(func(ctx context.Context, d *daemon.Daemon, cfg *config.Config, _ []string) error {
			st := d.Store()
			n, err := st.RecordCount(ctx)
			if err != nil {
				return err
			}
			fmt.Printf("store %s/%s: %d records\n\n", strings.Join(cfg.ClickHouse.Addr, ","), st.Database(), n)
			fmt.Printf("%-16s %-9s %s\n", "source", "type", "cursor (the position after the last stored batch)")
			for _, name := range slices.Sorted(maps.Keys(cfg.Sources)) {
				cur, ok, err := st.Cursor(ctx, ingest.CursorName(name))
				if err != nil {
					return err
				}
				if !ok {
					cur = "(never pulled)"
				} else if len(cur) > 90 {
					cur = cur[:87] + "..."
				}
				fmt.Printf("%-16s %-9s %s\n", name, cfg.Sources[name].Type, cur)
			}
			fmt.Printf("\n%-16s %-9s %-21s %9s %9s %8s %8s %8s\n", "target", "type", "watermark", "accepted", "rejected", "sent", "failed", "pending")
			for _, name := range slices.Sorted(maps.Keys(cfg.Targets)) {
				wm, ok, err := st.Cursor(ctx, push.WatermarkName(name))
				if err != nil {
					return err
				}
				if !ok {
					wm = "(never pushed)"
				}
				sum, err := st.Summary(ctx, name, 0)
				if err != nil {
					return err
				}
				fmt.Printf("%-16s %-9s %-21s %9d %9d %8d %8d %8d\n", name, cfg.Targets[name].Type, wm,
					sum.Accepted, sum.Rejected, sum.Sent, sum.Failed, sum.Pending)
			}
			return nil
		}),
	}

	var qualitySince string
	var qualityJSON bool
	quality := &cobra.Command{
		Use:   "quality [--since YYYY-MM-DD] [--json]",
		Short: "Data-quality figures: valid-ingest rate per source, field completeness and 7-working-day timeliness per data-source unit",
		Args:  cobra.NoArgs,
		RunE: withDaemon(func(ctx context.Context, d *daemon.Daemon, cfg *config.Config, _ []string) error {
			since, err := daemon.QualitySince(qualitySince, time.Now(), cfg.Location())
			if err != nil {
				return err
			}
			q, err := d.Store().Quality(ctx, since)
			if err != nil {
				return err
			}
			if qualityJSON {
				enc := json.NewEncoder(os.Stdout)
				enc.SetEscapeHTML(false)
				return enc.Encode(q)
			}
			fmt.Printf("decisions since %s\n\nsource                  keys   stored  rejected  valid-ingest\n", since.Format(time.DateOnly))
			for _, s := range q.Sources {
				fmt.Printf("%-20s %7d  %7d  %8d  %11.1f%%\n", s.Source, s.Keys, s.Stored, s.Rejected, 100*s.ValidRate)
			}
			fmt.Printf("\nsource               records  complete  within 7 working days  data-source unit\n")
			for _, u := range q.Units {
				fmt.Printf("%-20s %7d  %7.1f%%  %20.1f%%  %s\n", u.Source, u.Records, 100*u.Completeness, 100*u.TimelyShare, u.Unit)
			}
			return nil
		}),
	}
	quality.Flags().StringVar(&qualitySince, "since", "", "decisions on or after this date (default: 1 January of this year)")
	quality.Flags().BoolVar(&qualityJSON, "json", false, "print the figures as JSON")

	var normSource string
	normalizeCmd := &cobra.Command{
		Use:   "normalize --source NAME FILE",
		Short: "Dry run: normalize a file of raw payloads (one JSON object per line) and print records and rejects as JSON lines; touches no store",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := config.Load(cfgPath)
			if err != nil {
				return err
			}
			n, err := daemon.NewNormalizer(cfg, normSource)
			if err != nil {
				return err
			}
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			return dryRun(n, normSource, f, os.Stdout)
		},
	}
	normalizeCmd.Flags().StringVar(&normSource, "source", "", "configured source whose mapping to use")
	normalizeCmd.MarkFlagRequired("source")

	versionCmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Printf("syncd %s (schema %d, %s)\n", buildVersion(), store.SchemaVersion(), goVersion())
		},
	}

	root.AddCommand(run, migrate, checkConfig, status, pull, pushCmd, ledger, expire, normalizeCmd, replay, quality, versionCmd)
	return root
}

func buildVersion() string {
	if version != "dev" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return "dev-" + s.Value[:12]
			}
		}
	}
	return version
}

func goVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		return bi.GoVersion
	}
	return "unknown go"
}

// installTestHooks arms fault injection for the crash tests: with
// SYNCD_TEST_KILL_AFTER_STORE=N the process kills itself with SIGKILL right
// after storing batch N of any source and before saving its cursor; with
// SYNCD_TEST_KILL_AFTER_SEND=N, right after a platform answered push batch N
// and before the ledger records it.
func installTestHooks(d *daemon.Daemon) {
	if n := testHookBatch("SYNCD_TEST_KILL_AFTER_STORE"); n > 0 {
		d.AfterStore = func(_ string, batch int) {
			if batch == n {
				killSelf()
			}
		}
	}
	if n := testHookBatch("SYNCD_TEST_KILL_AFTER_SEND"); n > 0 {
		d.AfterSend = func(_ string, batch int) {
			if batch == n {
				killSelf()
			}
		}
	}
}

func testHookBatch(env string) int {
	n, err := strconv.Atoi(os.Getenv(env))
	if err != nil || n < 1 {
		return 0
	}
	return n
}

func killSelf() {
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // never returns: the signal ends the process
}
