// Command queue prints what YourCI has queued and running now, across every
// box sharing the JetStream: each pull event and test attempt with its
// state, repository, pull request, test and age, and the backlog of each
// consumer. It reads and changes nothing. Installed as yci-queue.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/yourci/yourci/pkg/envflag"
	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/natsserver"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// Options configure the listing.
type Options struct {
	// URL is the JetStream server or cluster; empty joins this box's
	// embedded one on Port (never starts one).
	URL     string
	Port    int
	JSON    bool
	Limit   int
	Timeout time.Duration
	// MaxRunningPerRepo and RepoLimitsFile are the workers' settings of
	// the same names, so the listing shows each repository's cap and
	// place as the workers see them.
	MaxRunningPerRepo int
	RepoLimitsFile    string
	Version           bool
}

const usage = `Usage: queue [flags]

Prints the pull events and test attempts YourCI has queued and running now,
on every box sharing the JetStream, by repository, pull request and test,
with their state and age, then each consumer's backlog, then each
repository with test jobs stored: its place in the order in which a free
test slot serves repositories (1 is next; "at cap" is skipped until one
of its tests ends), its jobs stored, the slots it holds on every worker,
its cap and its weight. Give -max-running-per-repo and -repo-limits as
the workers have them. States:
  queued      stored, no worker has taken it yet
  preparing   a pull event a worker is handling (mirror, checkout, .yci.py)
  starting    a test a worker took and has not started yet (its checkout)
  running     a worker runs it (WHO names the worker)
  retry-wait  an attempt waiting for its retry time
  reporting   an attempt that ran, whose final status GitHub has not taken yet

Exit status: 0 listed, 1 JetStream unreachable, 2 bad usage.

Flags:
`

func parseOptions(args []string, getenv func(string) string, stderr io.Writer) (Options, error) {
	var o Options
	fs := envflag.New("queue")
	fs.SetOutput(stderr)
	fs.StringVar(&o.URL, "nats", "", "JetStream server or cluster `URL`; empty joins this box's embedded one")
	fs.Env("nats", "NATS_URL")
	fs.IntVar(&o.Port, "nats-port", natsserver.DefaultLocalPort, "loopback port of the embedded JetStream")
	fs.Env("nats-port", "YCI_NATS_PORT")
	fs.BoolVar(&o.JSON, "json", false, "print the listing as one JSON object")
	fs.IntVar(&o.Limit, "limit", 1000, "list at most `N` queued jobs (running attempts are always listed)")
	fs.DurationVar(&o.Timeout, "timeout", 30*time.Second, "give up reading JetStream after this long")
	fs.IntVar(&o.MaxRunningPerRepo, "max-running-per-repo", 0, "the workers' cap of one repository's running tests, for the places shown")
	fs.Env("max-running-per-repo", "YCI_MAX_RUNNING_PER_REPO")
	fs.StringVar(&o.RepoLimitsFile, "repo-limits", "", "the workers' `FILE` of per-repository limits, for the places shown")
	fs.Env("repo-limits", "YCI_REPO_LIMITS")
	fs.BoolVar(&o.Version, "version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	return o, fs.Parse(args, getenv)
}

// Validate reports every problem at once.
func (o Options) Validate() error {
	var errs []error
	if o.URL == "" && (o.Port < 1 || o.Port > 65535) {
		errs = append(errs, fmt.Errorf("-nats-port %d is not a port", o.Port))
	}
	if o.Limit < 1 {
		errs = append(errs, fmt.Errorf("-limit must be at least 1, not %d", o.Limit))
	}
	if o.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("-timeout must be positive, not %s", o.Timeout))
	}
	if o.MaxRunningPerRepo < 0 {
		errs = append(errs, fmt.Errorf("-max-running-per-repo must not be negative, not %d", o.MaxRunningPerRepo))
	} else if _, err := o.repoLimits(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (o Options) repoLimits() (events.RepoLimits, error) {
	return events.LoadRepoLimits(o.RepoLimitsFile, events.RepoLimit{MaxRunning: o.MaxRunningPerRepo})
}

func (o Options) natsURL() string {
	if o.URL != "" {
		return o.URL
	}
	return "nats://127.0.0.1:" + strconv.Itoa(o.Port)
}

// run is the whole command; its result is the exit status.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	opts, err := parseOptions(args, getenv, stderr)
	if exit, ok := envflag.Settle("queue", err, opts.Version, opts.Validate, stdout, stderr); !ok {
		return exit
	}
	if err := list(ctx, opts, stdout); err != nil {
		fmt.Fprintln(stderr, "queue:", err)
		return 1
	}
	return 0
}

// listing is what -json prints.
type listing struct {
	events.Snapshot
	Backlog []events.ConsumerBacklog `json:"backlog"`
	// Repositories are those with test jobs stored, by place.
	Repositories []events.RepoShare `json:"repositories"`
}

func list(ctx context.Context, opts Options, stdout io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	nc, err := nats.Connect(opts.natsURL(), nats.Name("yourci-queue"), nats.Timeout(5*time.Second))
	if err != nil {
		return fmt.Errorf("connecting to NATS at %s: %w", events.Redact(opts.natsURL()), err)
	}
	defer nc.Close()
	board, err := events.NewBoard(nc, events.Options{})
	if err != nil {
		return err
	}
	snap, err := board.Snapshot(ctx, opts.Limit)
	if err != nil {
		return err
	}
	backlog, err := board.Backlog(ctx)
	if err != nil {
		return err
	}
	limits, err := opts.repoLimits()
	if err != nil {
		return err
	}
	shares, err := board.Shares(ctx, limits)
	if err != nil {
		return err
	}
	if opts.JSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(listing{Snapshot: snap, Backlog: backlog, Repositories: shares})
	}
	return render(stdout, snap, backlog, shares)
}
