// Package worker handles the two kinds of work YourCI queues: handle_pull
// (mirror, check out, evaluate .yci.py, queue one test per configuration)
// and handle_test (check out, run one attempt, report its status, queue the
// retry). It wires the pipeline, the workspace and GitHub statuses together
// and leaves settling each message (ack, hand back, terminate) to the
// decision it returns.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/go-github/v88/github"

	"github.com/yourci/yourci/pkg/artifacts"
	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/pipeline"
	"github.com/yourci/yourci/pkg/status"
)

// PullGetter reads a pull request; go-github's PullRequestsService has it.
type PullGetter interface {
	Get(ctx context.Context, owner, repo string, number int) (*github.PullRequest, *github.Response, error)
}

// Installation is GitHub as one App installation (or the one configured
// token) sees it. Git credentials are fresh for each call: App tokens expire.
type Installation struct {
	Pulls       PullGetter
	Statuses    status.StatusCreator
	Permissions PermissionGetter
	Git         artifacts.GitAuth
}

// GitHub gives the access a job needs for the installation named in its
// event (zero when the worker authenticates with a token).
type GitHub interface {
	Installation(ctx context.Context, id int64) (Installation, error)
}

// Queue is what handling a pull needs of JetStream: build numbers and the
// publication of test attempts. events.Bus has it.
type Queue interface {
	ClaimBuildFor(ctx context.Context, repo events.Repo, pull int, sha, claimant string, rebuild bool) (events.Claim, error)
	MarkQueued(ctx context.Context, repo events.Repo, pull int, sha string, build int) error
	PublishTest(ctx context.Context, job events.TestJob) error
	AnnounceHead(a events.HeadAnnouncement) error
}

// Options are a Worker's parts. Workspace, Evaluator, Runner, GitHub and
// Queue are required.
type Options struct {
	Workspace *artifacts.Workspace
	Evaluator *pipeline.Evaluator
	Runner    *pipeline.Runner
	GitHub    GitHub
	Queue     Queue
	// HTTPRoot is the URL this box's workspace is served under; status
	// links to logs start with it.
	HTTPRoot string
	// StatusOptions tune every status reporter (retries, secrets to mask).
	StatusOptions []status.Option
	Logger        *slog.Logger
	// Metrics, when set, counts what the worker does.
	Metrics *Metrics
	// Policy decides which pull requests are built without approval, and
	// ApprovalLabel (default DefaultApprovalLabel) is how a maintainer
	// approves one.
	Policy        Policy
	ApprovalLabel string
	// KeepSuperseded tests every commit pushed to a pull request: by
	// default the tests of a head that a newer commit replaced are dropped
	// (queued) or stopped (running), to spend no hours on stale commits.
	KeepSuperseded bool
	// Running, when set, records each attempt while it runs, under the
	// name Box, so that a listing shows who runs what.
	Running RunningRecorder
	Box     string
}

// RunningRecorder records a test attempt as running until done is called;
// events.Bus has it. An error leaves the attempt to run unrecorded.
type RunningRecorder interface {
	MarkRunning(ctx context.Context, a events.RunningAttempt) (done func(), err error)
}

// Worker handles deliveries of handle_pull and handle_test. Its methods may
// be called concurrently; it keeps no state between jobs beyond its parts.
type Worker struct {
	opts    Options
	log     *slog.Logger
	trust   trustCache
	running runningTests
}

// New checks that every part is there.
func New(opts Options) (*Worker, error) {
	var errs []error
	if opts.Workspace == nil {
		errs = append(errs, errors.New("worker: no workspace"))
	}
	if opts.Evaluator == nil {
		errs = append(errs, errors.New("worker: no .yci.py evaluator"))
	}
	if opts.Runner == nil {
		errs = append(errs, errors.New("worker: no test runner"))
	}
	if opts.GitHub == nil {
		errs = append(errs, errors.New("worker: no GitHub access"))
	}
	if opts.Queue == nil {
		errs = append(errs, errors.New("worker: no queue"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics(nil)
	}
	if opts.ApprovalLabel == "" {
		opts.ApprovalLabel = DefaultApprovalLabel
	}
	return &Worker{opts: opts, log: log, trust: trustCache{entries: map[string]trustEntry{}, now: time.Now}}, nil
}

// reporter sends statuses through one installation's client.
func (w *Worker) reporter(inst Installation, log *slog.Logger) *status.Reporter {
	opts := append([]status.Option{status.WithLogger(log)}, w.opts.StatusOptions...)
	return status.NewReporter(inst.Statuses, opts...)
}

// build names a job's build in the workspace.
func build(repo events.Repo, pull, number int) artifacts.Build {
	return artifacts.Build{Owner: repo.Owner, Repo: repo.Name, Pull: pull, Number: number}
}

// logURL is where a test's log is served, or "" when this box serves none.
func (w *Worker) logURL(b artifacts.Build, name string) string {
	if w.opts.HTTPRoot == "" {
		return ""
	}
	u, err := w.opts.Workspace.LogURL(w.opts.HTTPRoot, b, name)
	if err != nil {
		return ""
	}
	return u
}

// openPull reads the pull request and says whether sha is still worth
// building: when it is not (closed, or a newer commit pushed and the
// worker does not keep superseded commits) the reason says why.
func (w *Worker) openPull(ctx context.Context, inst Installation, repo events.Repo, number int, sha string) (*github.PullRequest, string, error) {
	pr, _, err := inst.Pulls.Get(ctx, repo.Owner, repo.Name, number)
	if err != nil {
		return nil, "", fmt.Errorf("reading pull request %s#%d: %w", repo.FullName(), number, err)
	}
	switch {
	case pr.GetState() != "open":
		return pr, "pull request is " + pr.GetState(), nil
	case pr.GetHead().GetSHA() != sha && !w.opts.KeepSuperseded:
		return pr, "superseded by " + pr.GetHead().GetSHA(), nil
	}
	return pr, "", nil
}

// specOf and testOf convert between the queue's and the pipeline's view
// of one configuration; they are the same data.
func specOf(t pipeline.Test) events.TestSpec {
	return events.TestSpec{Name: t.Name, Command: t.Command, Env: t.Env, Timeout: t.Timeout,
		Retries: t.Retries, RetryIncrement: t.RetryIncrement}
}

func testOf(s events.TestSpec) pipeline.Test {
	return pipeline.Test{Name: s.Name, Command: s.Command, Env: s.Env, Timeout: s.Timeout,
		Retries: s.Retries, RetryIncrement: s.RetryIncrement}
}
