package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/yourci/yourci/pkg/envflag"
	"github.com/yourci/yourci/pkg/githubauth"
	"github.com/yourci/yourci/pkg/natsserver"
	"github.com/yourci/yourci/pkg/reconcile"
)

// Options configure reconcile. Every flag but -cleanup-older-than falls
// back to an environment variable, named as in the seed design where it had
// one. -cleanup-older-than has none on purpose: it chooses the mode, and
// the sweep's and the cleanup's cron entries read the same environment
// file.
type Options struct {
	// Repositories is GITHUB_REPOSITORIES as given: owner/repo names
	// separated by spaces.
	Repositories string
	// NATS is the JetStream server or cluster, or the embedded default.
	NATS natsserver.Endpoint
	// StaleAfter is how long a test may stay unfinished in its build
	// record (or, for a build no projector shows, its yci status pending)
	// with no job queued or running before the sweep repairs it.
	StaleAfter time.Duration
	// MaxRebuilds bounds the repairs of one head commit by rebuilding;
	// past it, the lost tests (pending statuses) are set to error. 0 sets
	// them to error at once.
	MaxRebuilds int
	// Wait is how long to wait for another sweep's lock before giving up.
	Wait    time.Duration
	LockTTL time.Duration
	// RateReserve is how many requests of GitHub's hourly limit the sweep
	// leaves to the workers' statuses.
	RateReserve int
	// CleanupOlderThan, when set, switches to cleanup mode: remove builds
	// of Workspace untouched for that long, and sweep nothing.
	CleanupOlderThan time.Duration
	Workspace        string
	RunningWindow    time.Duration
	// CacheUnusedFor is the age of a repository cache's last use past
	// which cleanup mode removes it; zero keeps caches.
	CacheUnusedFor time.Duration
	JSONLog        bool
	// LogLevel is the least level logged (-log-level).
	LogLevel slog.Level
	// MetricsFile, when set, receives the sweep's summary as Prometheus
	// metrics for node_exporter's textfile collector.
	MetricsFile string
	GitHub      githubauth.Config
	// Version prints the version and exits.
	Version bool
}

const usage = `Usage: reconcile [flags]
       reconcile -cleanup-older-than AGE [-workspace DIR]

Sweeps the open pull requests of GITHUB_REPOSITORIES (or, for a GitHub App
with no list, of every repository it is installed on) and queues a build of
every head commit that has none, as a webhook would have; repairs builds
whose statuses were left pending with no job; prints a summary. Run it from
cron: overlapping runs exclude each other through a lock in JetStream.

With -cleanup-older-than, removes instead the builds of the workspace (and
dangling log links) untouched for that long, never a running one.

GitHub credentials come from the environment: GITHUB_ACCESS_TOKEN, or
GITHUB_USERNAME and GITHUB_PASSWORD, or GITHUB_APP_ID and
GITHUB_APP_PRIVATE_KEY_FILE; GITHUB_API_URL for GitHub Enterprise.

Exit status:
  0  every repository swept (cleanup: done)
  1  a repository could not be swept, the cleanup failed, or SIGTERM
     stopped the run
  2  bad usage or configuration
  3  another sweep held the lock for longer than -wait
  4  stopped at GitHub's rate limit; the summary says where and until when

Flags:
`

// parseOptions reads flags with their environment fallbacks. It returns
// flag.ErrHelp after printing the help for -h.
func parseOptions(args []string, getenv func(string) string, stderr io.Writer) (Options, error) {
	o := Options{GitHub: githubauth.ConfigFromEnv(getenv)}
	fs := envflag.New("reconcile")
	fs.SetOutput(stderr)
	fs.StringVar(&o.Repositories, "repositories", "", "space-separated `owner/repo` list to sweep; empty sweeps every repository of the GitHub App")
	fs.Env("repositories", "GITHUB_REPOSITORIES")
	o.NATS.AddFlags(fs)
	fs.DurationVar(&o.StaleAfter, "stale-after", reconcile.DefaultStaleAfter, "how long a test may stay unfinished (queued or running in its build record, or its yci status pending) with no job queued or running before it is repaired")
	fs.Env("stale-after", "YCI_STALE_AFTER")
	fs.IntVar(&o.MaxRebuilds, "max-rebuilds", reconcile.DefaultMaxRebuilds, "rebuilds of one head commit whose tests were left unfinished with no job, before they are set to error")
	fs.Env("max-rebuilds", "YCI_MAX_REBUILDS")
	fs.DurationVar(&o.Wait, "wait", 0, "how long to wait for another sweep's lock before giving up (exit 3)")
	fs.Env("wait", "YCI_RECONCILE_WAIT")
	fs.DurationVar(&o.LockTTL, "lock-ttl", reconcile.DefaultLockTTL, "life of the sweep lock without renewal: how long a crashed sweep blocks the next")
	fs.Env("lock-ttl", "YCI_RECONCILE_LOCK_TTL")
	fs.IntVar(&o.RateReserve, "rate-reserve", 100, "GitHub requests per hour left to the workers: the sweep stops when no more remain")
	fs.Env("rate-reserve", "YCI_RATE_RESERVE")
	fs.DurationVar(&o.CleanupOlderThan, "cleanup-older-than", 0, "remove builds untouched for this `AGE` (such as 336h) instead of sweeping")
	fs.DurationVar(&o.CacheUnusedFor, "cleanup-caches-unused-for", reconcile.DefaultCacheUnusedFor, "with -cleanup-older-than, also remove repository caches no test used for this `AGE`; 0 keeps them")
	fs.Env("cleanup-caches-unused-for", "YCI_CLEANUP_CACHES_UNUSED_FOR")
	fs.StringVar(&o.Workspace, "workspace", ".", "workspace `DIR` to clean up")
	fs.Env("workspace", "YCI_WORKSPACE")
	fs.DurationVar(&o.RunningWindow, "running-window", reconcile.DefaultRunningWindow, "a build with a file changed this recently counts as running")
	fs.Env("running-window", "YCI_RUNNING_WINDOW")
	fs.StringVar(&o.MetricsFile, "metrics-file", "", "write the sweep's results as Prometheus metrics to `FILE` (node_exporter's textfile collector)")
	fs.Env("metrics-file", "YCI_RECONCILE_METRICS_FILE")
	fs.JSONLogVar(&o.JSONLog)
	fs.LogLevelVar(&o.LogLevel)
	fs.BoolVar(&o.Version, "version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	return o, fs.Parse(args, getenv)
}

// cleanup reports whether the options ask for cleanup mode.
func (o Options) cleanup() bool { return o.CleanupOlderThan != 0 }

// Validate reports every problem at once.
func (o Options) Validate() error {
	var errs []error
	if err := o.NATS.Validate(); err != nil {
		errs = append(errs, err)
	}
	if o.cleanup() {
		return errors.Join(append(errs, o.validateCleanup()...)...)
	}
	return errors.Join(append(errs, o.validateSweep()...)...)
}

func (o Options) validateCleanup() []error {
	var errs []error
	if o.CleanupOlderThan < 0 {
		errs = append(errs, fmt.Errorf("-cleanup-older-than %s is negative", o.CleanupOlderThan))
	}
	if o.CacheUnusedFor < 0 {
		errs = append(errs, fmt.Errorf("-cleanup-caches-unused-for %s is negative", o.CacheUnusedFor))
	}
	if o.RunningWindow <= 0 {
		errs = append(errs, fmt.Errorf("-running-window %s must be positive", o.RunningWindow))
	}
	if info, err := os.Stat(o.Workspace); err != nil {
		errs = append(errs, fmt.Errorf("-workspace: %w", err))
	} else if !info.IsDir() {
		errs = append(errs, fmt.Errorf("-workspace %s is not a directory", o.Workspace))
	}
	return errs
}

func (o Options) validateSweep() []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	repos, err := reconcile.ParseRepositories(o.Repositories)
	if err != nil {
		errs = append(errs, fmt.Errorf("GITHUB_REPOSITORIES: %w", err))
	}
	if err := o.GitHub.RequireCredentials(); err != nil {
		errs = append(errs, err)
	}
	if len(repos) == 0 && err == nil && o.GitHub.Method() != githubauth.MethodApp {
		add("nothing to sweep: set GITHUB_REPOSITORIES, or configure a GitHub App to sweep every repository it is installed on")
	}
	if o.StaleAfter <= 0 {
		add("-stale-after %s must be positive", o.StaleAfter)
	}
	if o.MaxRebuilds < 0 {
		add("-max-rebuilds %d is negative", o.MaxRebuilds)
	}
	if o.Wait < 0 {
		add("-wait %s is negative", o.Wait)
	}
	if o.LockTTL < time.Second {
		add("-lock-ttl %s is under a second", o.LockTTL)
	}
	if o.RateReserve < 0 {
		add("-rate-reserve %d is negative", o.RateReserve)
	}
	return errs
}
