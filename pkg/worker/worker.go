// Package worker handles the three kinds of work YourCI queues, each from a
// consumer of its own: handle_pull (mirror, check out, evaluate .yci.py,
// record the build, queue one test per configuration), handle_test (check
// out, run one attempt, record and report its state, queue the retry) and
// handle_command (a comment's /retest and /ok-to-test, and GitHub's re-run
// buttons, which find the failed tests in the build records). It wires the
// pipeline, the workspace, the records in pkg/events and GitHub statuses or
// check runs together, keeps the build pages from the records
// (PageKeeper), and leaves settling each message (ack, hand back,
// terminate) to the decision it returns.
package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/google/go-github/v88/github"

	"github.com/yourci/yourci/pkg/artifacts"
	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/pipeline"
)

// PullReader makes raw REST calls; go-github's *Client has it. The worker
// reads a pull request through it to keep the JSON exactly as GitHub sent
// it (go-github's struct drops the fields GitHub sends as null).
type PullReader interface {
	NewRequest(ctx context.Context, method, urlStr string, body any, opts ...github.RequestOption) (*http.Request, error)
	Do(req *http.Request, v any) (*github.Response, error)
}

// Installation is GitHub as one App installation (or the one configured
// token) sees it. Git credentials are fresh for each call: App tokens expire.
type Installation struct {
	Pulls PullReader
	// There is no writer of statuses or check runs: handlers change
	// records, and only the projector (pkg/projector) writes GitHub.
	Permissions PermissionGetter
	// Issues, when set, finds who added the approval label to a pull
	// request whose labeled webhook never arrived; without it such a
	// label needs its webhook (or a command) to count.
	Issues IssueEventLister
	Git    artifacts.GitAuth
	// Comments and Reactions answer comment commands.
	Comments  CommentCreator
	Reactions ReactionCreator
}

// GitHub gives the access a job needs for the installation named in its
// event (zero when the worker authenticates with a token).
type GitHub interface {
	Installation(ctx context.Context, id int64) (Installation, error)
}

// Queue is what handling a pull needs of JetStream: build numbers, the
// publication of test attempts and the approval record of each pull
// request (which head commit who approved), and each pull request's head
// record. An events.Registry, an events.Queue and events.Heads have it
// together.
type Queue interface {
	ClaimBuildFor(ctx context.Context, repo events.Repo, pull int, sha, claimant string, rebuild bool) (events.Claim, error)
	MarkQueued(ctx context.Context, repo events.Repo, pull int, sha string, build int) error
	PublishTest(ctx context.Context, job events.TestJob) error
	AnnounceHead(a events.HeadAnnouncement) error
	ApprovalOf(ctx context.Context, repo events.Repo, pull int) (events.Approval, error)
	Approve(ctx context.Context, repo events.Repo, pull int, sha, by string) error
	AskApproval(ctx context.Context, repo events.Repo, pull int, sha string) (bool, error)
	ForgetAsked(ctx context.Context, repo events.Repo, pull int, sha string) error
	// SeeHead records that a head commit is seen at now, unless it was
	// seen before, and returns when it was first seen (events.Registry).
	SeeHead(ctx context.Context, repo events.Repo, pull int, sha string, now time.Time) (time.Time, error)
	// HeadBook answers whether a head is current (events.Heads).
	HeadBook
}

// Options are a Worker's parts. Workspace, Evaluator, Runner, GitHub,
// Queue and Records are required.
type Options struct {
	Workspace *artifacts.Workspace
	Evaluator *pipeline.Evaluator
	Runner    *pipeline.Runner
	GitHub    GitHub
	Queue     Queue
	// HTTPRoot is the URL this box's workspace is served under; status
	// links to logs start with it.
	HTTPRoot string
	Logger   *slog.Logger
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
	// HeadOnly tests each pull request's head alone, as it was pushed. By
	// default a build tests the head merged into the tip of its base
	// branch as the build fetched it, which is what merging would make.
	HeadOnly bool
	// Records keeps each build's record, the one truth about its tests:
	// the worker changes records and writes none of a test's states, nor
	// the summary, to GitHub; a projector (pkg/projector) shows them, and
	// the pages are made from them.
	Records BuildRecords
	// Reruns numbers and queues re-runs for comment commands; without it
	// HandleCommand cannot act and terminates every command.
	Reruns RerunQueue
	// Running, when set, records each attempt while it runs, under the
	// name Box, so that a listing shows who runs what.
	Running RunningRecorder
	Box     string
	// PrepareTimeout bounds handling one pull event (default
	// DefaultPrepareTimeout) and CommandTimeout one comment's commands
	// (default DefaultCommandTimeout): past it the handler is cancelled.
	PrepareTimeout, CommandTimeout time.Duration
	// Disk, when set, bounds what each attempt writes into its working
	// copy and keeps a free-space floor on the workspace's filesystem.
	Disk *DiskGuard
	// InfraGiveUp bounds how long a test waits out infrastructure errors
	// before it ends as error (default DefaultInfraGiveUp), and
	// InfraRetryDelay is the first of its growing waits (default
	// DefaultInfraRetryDelay). See infrawait.go.
	InfraGiveUp, InfraRetryDelay time.Duration
}

// RunningRecorder records a test attempt as running until done is called;
// events.Attempts has it. An error leaves the attempt to run unrecorded.
type RunningRecorder interface {
	MarkRunning(ctx context.Context, a events.RunningAttempt) (done func(), err error)
}

// Worker handles deliveries of handle_pull, handle_test and handle_command
// (HandlePull, HandleTest, HandleCommand), each by a handler type of its
// own (pullHandler, testHandler, commandHandler) that decides in pure
// plans; the Worker wires them and keeps what they share (the trust
// cache, the running tests, the watchdog, the log links). Its methods may
// be called concurrently; it keeps no state between jobs beyond its parts.
type Worker struct {
	opts     Options
	log      *slog.Logger
	trust    trustCache
	running  runningTests
	watchdog *Watchdog
	// commands handles handle_command; nil without Options.Reruns.
	commands *commandHandler
	// tests handles handle_test.
	tests *testHandler
	// pulls handles handle_pull.
	pulls *pullHandler
	// heads tells whether a head is current; the pull and test handlers
	// share it.
	heads *headReader
	// grace is how long a cancelled handler may take to return before
	// it is called stuck (stuckGrace).
	grace time.Duration
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
	if opts.Records == nil {
		errs = append(errs, errors.New("worker: no build records"))
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
	if opts.PrepareTimeout <= 0 {
		opts.PrepareTimeout = DefaultPrepareTimeout
	}
	if opts.CommandTimeout <= 0 {
		opts.CommandTimeout = DefaultCommandTimeout
	}
	if opts.InfraGiveUp <= 0 {
		opts.InfraGiveUp = DefaultInfraGiveUp
	}
	if opts.InfraRetryDelay <= 0 {
		opts.InfraRetryDelay = DefaultInfraRetryDelay
	}
	w := &Worker{opts: opts, log: log, trust: trustCache{entries: map[string]trustEntry{}, now: time.Now},
		watchdog: NewWatchdog(), grace: stuckGrace}
	w.heads = &headReader{heads: opts.Queue, keepSuperseded: opts.KeepSuperseded}
	w.commands = newCommandHandler(w)
	w.tests = newTestHandler(w)
	w.pulls = newPullHandler(w, w.heads)
	return w, nil
}

// Watchdog lists the worker's handlers running past their deadline, for
// a health check.
func (w *Worker) Watchdog() *Watchdog { return w.watchdog }

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

// runLogURL is where one run of a test logs (see Workspace.RunLogURL), or
// "" when this box serves none.
func (w *Worker) runLogURL(b artifacts.Build, name string, rerun int) string {
	if w.opts.HTTPRoot == "" {
		return ""
	}
	u, err := w.opts.Workspace.RunLogURL(w.opts.HTTPRoot, b, name, rerun)
	if err != nil {
		return ""
	}
	return u
}

// pullRequest is a pull request as go-github decodes it, and as GitHub
// sent it, in the webhook's pull_request or the API's answer (for
// .yci.py).
type pullRequest struct {
	pr  *github.PullRequest
	raw json.RawMessage
}

// openPullRaw reads the pull request, keeping the JSON as GitHub sent it,
// and says whether sha is still worth building: when it is not (closed,
// or a newer commit pushed and keepSuperseded, Options.KeepSuperseded, is
// not set) the reason says why. A pull request or repository that no
// longer exists (404) is a permanent error: asking again cannot bring it
// back.
func openPullRaw(ctx context.Context, inst Installation, repo events.Repo, number int, sha string, keepSuperseded bool) (pullRequest, string, error) {
	pull, err := getPull(ctx, inst.Pulls, repo, number)
	if err != nil {
		return pullRequest{}, "", err
	}
	pr := pull.pr
	switch {
	case pr.GetState() != "open":
		return pull, "pull request is " + pr.GetState(), nil
	case pr.GetHead().GetSHA() != sha && !keepSuperseded:
		return pull, "superseded by " + pr.GetHead().GetSHA(), nil
	}
	return pull, "", nil
}

// getPull reads GET /repos/{owner}/{repo}/pulls/{number}, keeping the body.
//
// A merge group has no pull request: asking for one is a permanent error.
func getPull(ctx context.Context, api PullReader, repo events.Repo, number int) (pullRequest, error) {
	if events.IsGroup(number) {
		return pullRequest{}, permanent(fmt.Errorf("%s %s has no pull request to read; GitHub's merge queue asks for it again", repo.FullName(), events.DescribePull(number)))
	}
	where := fmt.Sprintf("%s#%d", repo.FullName(), number)
	u := fmt.Sprintf("repos/%s/%s/pulls/%d", url.PathEscape(repo.Owner), url.PathEscape(repo.Name), number)
	req, err := api.NewRequest(ctx, http.MethodGet, u, nil)
	if err != nil {
		return pullRequest{}, permanent(fmt.Errorf("reading pull request %s: %w", where, err))
	}
	var body bytes.Buffer
	resp, err := api.Do(req, &body)
	switch {
	case err != nil && resp != nil && resp.StatusCode == http.StatusNotFound:
		return pullRequest{}, permanent(fmt.Errorf("pull request %s no longer exists (GitHub answers 404): %w", where, err))
	case err != nil:
		return pullRequest{}, fmt.Errorf("reading pull request %s: %w", where, err)
	}
	var pr github.PullRequest
	if err := json.Unmarshal(body.Bytes(), &pr); err != nil {
		return pullRequest{}, fmt.Errorf("decoding pull request %s: %w", where, err)
	}
	return pullRequest{pr: &pr, raw: body.Bytes()}, nil
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
