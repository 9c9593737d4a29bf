package worker

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/yourci/yourci/pkg/artifacts"
	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/pipeline"
)

// pullHandler carries out handle_pull: it prepares one head commit of a
// pull request (reads or takes the pull request, asks the approval gate,
// claims a build, mirrors, merges and checks out, evaluates .yci.py) and
// queues its tests. It gathers the facts, decides with the pure plans of
// pullplan.go and approvalplan.go, and acts on them; the Worker's
// HandlePull delegates to it. It holds only what it needs, behind the
// small interfaces below. Its methods may be called concurrently.
//
// It has more methods than the ~15 a type should: one per step its plans
// name (mirror, merge, checkout, evaluate, end, queue ...), each a few
// lines of acting with no decision in it. Splitting them across types
// would spread one handler's sequence over several without making any
// of them simpler.
type pullHandler struct {
	installs  installer
	heads     *headReader
	gate      *approvalGate
	claims    buildClaims
	merger    *baseMerger
	workspace pullWorkspace
	evaluator changeEvaluator
	records   pullRecords
	publish   testPublisher
	summaries headSummaries
	journal   *prepJournal
	logURL    func(b artifacts.Build, name string) string
	// guard runs one attempt under its deadline (Worker.guard); grace is
	// how long a cancelled attempt may take to return.
	guard   guardFunc
	grace   time.Duration
	timeout time.Duration
	metrics *Metrics
	log     *slog.Logger
}

// guardFunc is Worker.guard: work run under a deadline, listed in the
// watchdog while it runs.
type guardFunc func(ctx context.Context, kind, job, doing string, limit, grace time.Duration, work func(context.Context) error) error

// buildClaims is what preparing a head needs of the registry and the
// queue: the head's first sighting, its build number, the build marked
// queued, and the announcement that stops an older head's tests; Queue
// has it.
type buildClaims interface {
	SeeHead(ctx context.Context, repo events.Repo, pull int, sha string, now time.Time) (time.Time, error)
	ClaimBuildFor(ctx context.Context, repo events.Repo, pull int, sha, claimant string, rebuild bool) (events.Claim, error)
	MarkQueued(ctx context.Context, repo events.Repo, pull int, sha string, build int) error
	AnnounceHead(a events.HeadAnnouncement) error
}

// pullWorkspace is what preparing a build needs of the box's files: the
// mirror (and its maintenance, once the tests are queued), the build's
// source checkout, and the log a build without tests links to;
// artifacts.Workspace has it.
type pullWorkspace interface {
	UpdateMirrorSince(ctx context.Context, owner, repo, cloneURL string, auth artifacts.GitAuth, since time.Time) (fetched bool, err error)
	SourceDir(b artifacts.Build) (string, error)
	Checkout(ctx context.Context, b artifacts.Build, sha, base, dest string) error
	MakeSpare(ctx context.Context, b artifacts.Build, sha, base string) error
	DropSpare(b artifacts.Build) error
	MaintainMirror(ctx context.Context, owner, repo string) error
	CreateTestDir(b artifacts.Build, name string) (string, error)
	LinkLog(b artifacts.Build, name string) error
}

// changeEvaluator runs a checkout's .yci.py; pipeline.Evaluator has it.
type changeEvaluator interface {
	EvaluateChange(ctx context.Context, sourceDir string, buildID int, pull json.RawMessage, change *pipeline.Change) ([]pipeline.Test, error)
}

// pullRecords is what preparing a head changes of the build records: the
// build's record, and the closed mark of a pull's builds; BuildRecords
// has it.
type pullRecords interface {
	UpdateBuild(ctx context.Context, k events.BuildKey, change func(*events.BuildRecord) error) (events.BuildRecord, error)
	SetPullClosed(ctx context.Context, repo events.Repo, pull int, closed bool) (int, error)
}

// newPullHandler is w's pull handler, over w's options, with the head
// reader it shares with the test handler.
func newPullHandler(w *Worker, heads *headReader) *pullHandler {
	o := w.opts
	summaries := headSummaries{records: o.Records}
	return &pullHandler{
		installs: o.GitHub, heads: heads, claims: o.Queue, workspace: o.Workspace, evaluator: o.Evaluator,
		gate: &approvalGate{trust: &w.trust, approvals: o.Queue, summaries: summaries,
			policy: o.Policy, label: o.ApprovalLabel},
		merger:    &baseMerger{workspace: o.Workspace, records: o.Records, headOnly: o.HeadOnly},
		records:   o.Records,
		publish:   o.Queue,
		summaries: summaries,
		journal: &prepJournal{logs: o.Workspace, summaries: summaries, httpRoot: o.HTTPRoot,
			secrets: runnerSecrets(o.Runner)},
		logURL: w.logURL, guard: w.guard, grace: w.grace, timeout: o.PrepareTimeout,
		metrics: o.Metrics, log: w.log,
	}
}
