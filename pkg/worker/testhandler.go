package worker

import (
	"context"
	"log/slog"
	"time"

	"github.com/yourci/yourci/pkg/artifacts"
	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/pipeline"
)

// testHandler carries out handle_test: one attempt of one test. It gathers
// the facts (the delivery, the disk, the head, the prepared copy, the
// attempt's result), decides with the pure plans of testplan.go, and acts
// on them. It holds only what the test handler needs, behind the small
// interfaces below; the Worker's HandleTest delegates to it. Its methods
// may be called concurrently. Like pullHandler, it has a method per step
// its plans name, and so a few more than ~15.
type testHandler struct {
	installs                     installer
	heads                        testHeads
	running                      *runningTests
	workspace                    testWorkspace
	runner                       attemptRunner
	disk                         diskChecker
	publish                      testPublisher
	board                        RunningRecorder
	rec                          *testRecorder
	runLogURL                    logLinker
	pageURL                      func(events.BuildKey) string
	metrics                      *Metrics
	log                          *slog.Logger
	box                          string
	infraGiveUp, infraRetryDelay time.Duration
}

// installer authenticates as an installation; GitHub has it.
type installer interface {
	Installation(ctx context.Context, id int64) (Installation, error)
}

// testHeads tells whether a test's head is still its pull request's open
// head; headReader has it (headOfTest), with the head record and the pull
// handler's read of GitHub.
type testHeads interface {
	headOfTest(ctx context.Context, log *slog.Logger, inst Installation, job events.TestJob) (testHead, error)
}

// testWorkspace is what an attempt needs of the box's files: its run
// directory, log and working copy, and the mirror it is checked out
// from; artifacts.Workspace has it.
type testWorkspace interface {
	CreateRunDir(b artifacts.Build, name string, rerun int) (string, error)
	RunSourceDir(b artifacts.Build, name string, rerun int) (string, error)
	RunLogPath(b artifacts.Build, name string, rerun int) (string, error)
	LinkLog(b artifacts.Build, name string) error
	Checkout(ctx context.Context, b artifacts.Build, sha, base, dest string) error
	TakeSpare(b artifacts.Build, dest string) (bool, error)
	UpdateMirror(ctx context.Context, owner, repo, cloneURL string, auth artifacts.GitAuth) error
	RemakeMerge(ctx context.Context, owner, repo, head, base, want string) (artifacts.Merged, error)
}

// attemptRunner runs one attempt in its sandbox; pipeline.Runner has it.
type attemptRunner interface {
	Run(ctx context.Context, a pipeline.Attempt) (pipeline.Result, error)
	TimeoutOf(t pipeline.Test) time.Duration
}

// diskChecker keeps attempts off a full disk: none starts below the
// floor, and a running one is stopped when the disk fills; DiskGuard
// (nil included) has it.
type diskChecker interface {
	BelowFloor() error
	Watch(ctx context.Context, dir string) (context.Context, func())
}

// testPublisher queues a test job: the next attempt, a wait for
// infrastructure, or an owed final state; Queue has it.
type testPublisher interface {
	PublishTest(ctx context.Context, job events.TestJob) error
}

// testRecorder writes a test's state changes into its build record, the
// one truth the projector shows (record.go).
type testRecorder struct {
	records buildUpdater
	publish testPublisher
	log     *slog.Logger
}

// buildUpdater changes one build record; BuildRecords has it.
type buildUpdater interface {
	UpdateBuild(ctx context.Context, k events.BuildKey, change func(*events.BuildRecord) error) (events.BuildRecord, error)
}

// newTestHandler is w's test handler, over w's options.
func newTestHandler(w *Worker) *testHandler {
	o := w.opts
	return &testHandler{
		installs: o.GitHub, heads: w.heads, running: &w.running, workspace: o.Workspace, runner: o.Runner,
		disk: o.Disk, publish: o.Queue, board: o.Running,
		rec:       &testRecorder{records: o.Records, publish: o.Queue, log: w.log},
		runLogURL: w.runLogURL, pageURL: w.pageURL, metrics: o.Metrics, log: w.log, box: o.Box,
		infraGiveUp: o.InfraGiveUp, infraRetryDelay: o.InfraRetryDelay,
	}
}
