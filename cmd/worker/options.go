package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"runtime"
	"time"

	"github.com/yourci/yourci/pkg/envflag"
	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/githubauth"
	"github.com/yourci/yourci/pkg/natsserver"
	"github.com/yourci/yourci/pkg/projector"
	"github.com/yourci/yourci/pkg/worker"
)

// Options configure a worker. Every flag falls back to an environment
// variable, named as in the seed design where it had one.
type Options struct {
	// Local, when set, runs the .yci.py matrix of the checkout at this path
	// and exits: no GitHub, no NATS.
	Local string
	// Base is what a local run's changed_files() compares with (-base);
	// "" means the upstream branch when it has another name, else origin/HEAD.
	Base string
	// Workspace is the directory builds are written to; default the
	// current directory, as in the seed.
	Workspace string
	Jobs      int
	// PullSlots are handle_pull's own slots, apart from the -j test
	// slots, so that a new push is prepared (and its superseded tests
	// stopped) while every test slot is busy.
	PullSlots int
	HTTPRoot  string
	// NATS is the JetStream server or cluster, or the embedded default
	// (its store relative to the workspace).
	NATS natsserver.Endpoint
	// MetricsListen serves /metrics and /healthz; empty disables them.
	MetricsListen string
	LogLimit      int64
	TestTimeout   time.Duration
	// PrepareTimeout and CommandTimeout bound one pull event's and one
	// comment's handling (worker.Options).
	PrepareTimeout, CommandTimeout time.Duration
	// InfraGiveUp bounds how long a test waits out infrastructure errors
	// (worker.Options.InfraGiveUp).
	InfraGiveUp time.Duration
	// Grace is how long running tests may go on after SIGTERM before they
	// are stopped and handed back to the queue.
	Grace   time.Duration
	JSONLog bool
	// LogLevel is the least level logged (-log-level).
	LogLevel slog.Level
	GitHub   githubauth.Config
	// BuildPolicy is "trusted" (outsiders' pull requests wait for the
	// approval label) or "all".
	BuildPolicy   string
	ApprovalLabel string
	// AckWait is how long a job whose worker went silent waits before it
	// is delivered again; every worker must use the same value.
	AckWait time.Duration
	// KeepSuperseded tests every commit, not only a pull request's head.
	KeepSuperseded bool
	// TestMerge tests each head merged into the tip of its base branch
	// (the default); false tests the head alone (worker.Options.HeadOnly).
	TestMerge bool
	// StatusHold and SummaryInterval pace the projector's GitHub writes
	// (projector.Pacing).
	StatusHold, SummaryInterval time.Duration
	// ProjectorLease is how long the lease of the fleet's one projector
	// (pkg/projector), which shows the build records on GitHub, lasts
	// unrenewed.
	ProjectorLease time.Duration
	// MaxRunningPerRepo caps every repository's tests running at once on
	// the whole fleet (0: no cap); RepoLimitsFile names the operator's
	// file of per-repository caps and weights (events.ParseRepoLimits).
	// Every worker must be given the same.
	MaxRunningPerRepo int
	RepoLimitsFile    string
	// Sandbox confines tests and .yci.py evaluations.
	Sandbox SandboxOptions
	Limits  LimitsOptions
	Disk    DiskOptions
	// Version prints the version and exits.
	Version bool
}

const usage = `Usage: worker [flags]
       worker -local PATH [-j N] [-workspace DIR]

Consumes handle_pull and the test jobs from JetStream and runs tests in the
workspace, sharing test slots fairly across repositories on every worker
together (capped and weighed by -max-running-per-repo and -repo-limits).
With -local, runs a checkout's .yci.py matrix on this machine and exits
non-zero when a test failed.

GitHub credentials come from the environment: GITHUB_ACCESS_TOKEN, or
GITHUB_USERNAME and GITHUB_PASSWORD, or GITHUB_APP_ID and
GITHUB_APP_PRIVATE_KEY_FILE; GITHUB_API_URL for GitHub Enterprise.

Flags:
`

// parseOptions reads flags with their environment fallbacks.
func parseOptions(args []string, getenv func(string) string, stderr io.Writer) (Options, error) {
	o := Options{GitHub: githubauth.ConfigFromEnv(getenv)}
	fs := envflag.New("worker")
	fs.SetOutput(stderr)
	fs.StringVar(&o.Local, "local", "", "run the .yci.py matrix of the checkout at `PATH` on this machine and exit")
	fs.StringVar(&o.Base, "base", "", "with -local: the `REF` yci.changes.changed_files() compares with, from its merge base with HEAD to the working tree (default: the branch's upstream when it is another branch, else origin/HEAD)")
	fs.StringVar(&o.Workspace, "workspace", ".", "workspace `DIR` for mirrors, checkouts and logs; with -local, builds go to DIR/local/")
	fs.Env("workspace", "YCI_WORKSPACE")
	fs.IntVar(&o.Jobs, "j", runtime.NumCPU(), "tests run at once")
	fs.Env("j", "YCI_JOBS")
	fs.IntVar(&o.PullSlots, "pull-slots", 1, "pull events prepared at once (mirror, checkout, .yci.py), apart from the -j test slots")
	fs.Env("pull-slots", "YCI_PULL_SLOTS")
	fs.StringVar(&o.HTTPRoot, "http-root", "", "`URL` under which the workspace is served; log links start with it")
	fs.Env("http-root", "HTTP_ROOT")
	o.NATS.AddFlags(fs)
	fs.StringVar(&o.MetricsListen, "metrics-listen", "127.0.0.1:9101", "`ADDR` serving /metrics and /healthz; empty disables them")
	fs.Env("metrics-listen", "YCI_METRICS_LISTEN")
	fs.Int64Var(&o.LogLimit, "log-limit", 64<<20, "`BYTES` of output kept per test log")
	fs.Env("log-limit", "YCI_LOG_LIMIT")
	fs.DurationVar(&o.TestTimeout, "test-timeout", time.Hour, "time limit of one attempt when .yci.py sets none")
	fs.Env("test-timeout", "YCI_TEST_TIMEOUT")
	fs.DurationVar(&o.PrepareTimeout, "prepare-timeout", worker.DefaultPrepareTimeout, "time limit of preparing one commit (mirror, checkout, .yci.py, queueing); past it the attempt is stopped and retried")
	fs.Env("prepare-timeout", "YCI_PREPARE_TIMEOUT")
	fs.DurationVar(&o.CommandTimeout, "command-timeout", worker.DefaultCommandTimeout, "time limit of carrying out one comment's commands")
	fs.Env("command-timeout", "YCI_COMMAND_TIMEOUT")
	fs.DurationVar(&o.InfraGiveUp, "infra-give-up", worker.DefaultInfraGiveUp, "how long a test waits out infrastructure errors (full disk, sandbox set-up, lost mirror), retried with growing waits, before it ends as error")
	fs.Env("infra-give-up", "YCI_INFRA_GIVE_UP")
	fs.DurationVar(&o.Grace, "grace", 30*time.Second, "how long running tests may finish after SIGTERM before they are handed back")
	fs.Env("grace", "YCI_GRACE")
	fs.StringVar(&o.BuildPolicy, "build-policy", "trusted", "which pull requests build without approval: `trusted` (authors with write access, or labelled) or all")
	fs.Env("build-policy", "YCI_BUILD_POLICY")
	fs.StringVar(&o.ApprovalLabel, "approval-label", worker.DefaultApprovalLabel, "`LABEL` with which a maintainer approves an outsider's pull request")
	fs.Env("approval-label", "YCI_APPROVAL_LABEL")
	fs.DurationVar(&o.AckWait, "ack-wait", events.DefaultAckWait, "how soon a crashed worker's job is delivered again (the same on every worker)")
	fs.Env("ack-wait", "YCI_ACK_WAIT")
	fs.BoolVar(&o.KeepSuperseded, "keep-superseded", false, "finish the tests of a commit a newer push replaced, instead of dropping and stopping them")
	fs.Env("keep-superseded", "YCI_KEEP_SUPERSEDED")
	fs.BoolVar(&o.TestMerge, "test-merge", true, "test each pull request's head merged into the tip of its base branch as fetched when the build starts; false tests the head alone")
	fs.Env("test-merge", "YCI_TEST_MERGE")
	fs.DurationVar(&o.StatusHold, "status-hold", projector.DefaultHold, "how long a running state waits before it is sent, so a quick test's result replaces it unsent; negative sends it at once")
	fs.Env("status-hold", "YCI_STATUS_HOLD")
	fs.DurationVar(&o.SummaryInterval, "summary-interval", projector.DefaultSummaryInterval, "least time between two pending writes of a head's summary yci, whose new counts are written only once a test has been running or retrying for -status-hold; negative: no least time")
	fs.Env("summary-interval", "YCI_SUMMARY_INTERVAL")
	fs.DurationVar(&o.ProjectorLease, "projector-lease", projector.DefaultLeaseTTL, "how long the projector lease lasts unrenewed: how soon another worker takes over writing GitHub when its holder dies")
	fs.Env("projector-lease", "YCI_PROJECTOR_LEASE")
	fs.IntVar(&o.MaxRunningPerRepo, "max-running-per-repo", 0, "most tests of one repository running at once on all workers together; 0 is no cap (the same on every worker)")
	fs.Env("max-running-per-repo", "YCI_MAX_RUNNING_PER_REPO")
	fs.StringVar(&o.RepoLimitsFile, "repo-limits", "", "`FILE` of per-repository limits, lines of owner/repo max_running=N weight=W (the same on every worker)")
	fs.Env("repo-limits", "YCI_REPO_LIMITS")
	o.Sandbox.addFlags(fs)
	o.Limits.addFlags(fs)
	o.Disk.addFlags(fs)
	fs.JSONLogVar(&o.JSONLog)
	fs.LogLevelVar(&o.LogLevel)
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
	if o.Jobs < 1 {
		errs = append(errs, fmt.Errorf("-j must be at least 1, not %d", o.Jobs))
	}
	if o.LogLimit < 1024 {
		errs = append(errs, fmt.Errorf("-log-limit must be at least 1024 bytes, not %d", o.LogLimit))
	}
	if o.TestTimeout <= 0 || o.PrepareTimeout <= 0 || o.CommandTimeout <= 0 {
		errs = append(errs, errors.New("-test-timeout, -prepare-timeout and -command-timeout must be positive"))
	}
	if o.InfraGiveUp <= 0 {
		errs = append(errs, fmt.Errorf("-infra-give-up must be positive, not %s", o.InfraGiveUp))
	}
	if err := o.Limits.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := o.Sandbox.validate(); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, o.Disk.validate()...)
	if o.Base != "" && o.Local == "" {
		errs = append(errs, errors.New("-base is for -local runs; the service compares each pull request with its base branch"))
	}
	if o.Local != "" {
		return errors.Join(errs...)
	}
	if o.PullSlots < 1 {
		errs = append(errs, fmt.Errorf("-pull-slots must be at least 1, not %d", o.PullSlots))
	}
	if err := o.NATS.Validate(); err != nil {
		errs = append(errs, err)
	}
	if o.Grace < 0 {
		errs = append(errs, errors.New("-grace must not be negative"))
	}
	if _, err := o.policy(); err != nil {
		errs = append(errs, err)
	}
	if o.MaxRunningPerRepo < 0 {
		errs = append(errs, fmt.Errorf("-max-running-per-repo must not be negative, not %d", o.MaxRunningPerRepo))
	} else if _, err := o.repoLimits(); err != nil {
		errs = append(errs, err)
	}
	if o.AckWait < time.Second {
		errs = append(errs, fmt.Errorf("-ack-wait must be at least 1s, not %s", o.AckWait))
	}
	if err := o.GitHub.Validate(); err != nil {
		errs = append(errs, err)
	} else if err := o.GitHub.RequireCredentials(); err != nil {
		errs = append(errs, err)
	}
	if err := validHTTPRoot(o.HTTPRoot); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// validHTTPRoot refuses an HTTP_ROOT that cannot start a log link: without
// one, statuses on GitHub would carry no link to their log.
func validHTTPRoot(root string) error {
	const example = "the URL under which nginx serves this worker's workspace, such as https://ci.example.com/yourci/ (log links on GitHub start with it)"
	if root == "" {
		return fmt.Errorf("HTTP_ROOT (-http-root) is not set: give %s", example)
	}
	u, err := url.Parse(root)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("HTTP_ROOT %q is not an http:// or https:// URL: give %s", root, example)
	}
	return nil
}

// repoLimits is the fair share of test slots the flags configure.
func (o Options) repoLimits() (events.RepoLimits, error) {
	return events.LoadRepoLimits(o.RepoLimitsFile, events.RepoLimit{MaxRunning: o.MaxRunningPerRepo})
}

// policy is the build policy BuildPolicy names.
func (o Options) policy() (worker.Policy, error) {
	switch o.BuildPolicy {
	case "trusted":
		return worker.BuildTrusted, nil
	case "all":
		return worker.BuildAll, nil
	}
	return 0, fmt.Errorf("-build-policy must be trusted or all, not %q", o.BuildPolicy)
}
