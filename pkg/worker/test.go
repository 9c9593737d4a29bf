package worker

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/yourci/yourci/pkg/artifacts"
	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/pipeline"
	"github.com/yourci/yourci/pkg/status"
)

// HandleTest runs one attempt of one test. It makes sure the test's own
// working copy exists on this box (another box may have handled the pull),
// streams the output to out.txt, and either sets the final status or
// queues the next attempt with its wait. The message is acked once the
// outcome is reported; on shutdown it is handed back to the queue.
func (w *Worker) HandleTest(ctx context.Context, d *events.Delivery[events.TestJob]) {
	w.tests.handle(ctx, d)
}

// handle is HandleTest: a last chance abandons the test, else the attempt
// is handled, and the delivery settled with what became of it.
func (h *testHandler) handle(ctx context.Context, d *events.Delivery[events.TestJob]) {
	job := d.Payload
	log := h.log.With(job.LogAttrs()...)
	stop := d.KeepAlive(ctx)
	defer stop()
	var err error
	if d.LastChance() {
		err = h.abandonTest(ctx, log, job, d.NumDelivered)
	} else {
		err = h.handleTest(ctx, log, job)
	}
	h.settleTest(ctx, log, d, err)
}

func (h *testHandler) handleTest(ctx context.Context, log *slog.Logger, job events.TestJob) error {
	inst, err := h.installs.Installation(ctx, job.Installation)
	if err != nil {
		return fmt.Errorf("authenticating for installation %d: %w", job.Installation, err)
	}
	b := build(job.Repo, job.Number, job.Build)
	t := testOf(job.Test)
	st := status.Status{Owner: b.Owner, Repo: b.Repo, SHA: job.HeadSHA, Pull: b.Pull, Build: b.Number, Rerun: job.Rerun, Test: t.Name, TargetURL: h.runLogURL(b, t.Name, job.Rerun)}
	switch start := planTestStart(testStartFacts{job: job, diskLow: h.disk.BelowFloor()}); start.step {
	case stepRecordOwed:
		st.State, st.Description = status.State(job.Outcome.State), job.Outcome.Description
		return h.rec.changeTest(ctx, job, finalState(st.State), st, nil)
	case stepWaitInfra:
		// Below the disk's floor no attempt starts: the job goes back to
		// the queue, and its status says why, until space is back.
		return h.infraFailed(ctx, st, job, start.err)
	}
	// Registered before the pull is checked, so that a head announced
	// while the attempt is prepared still stops it.
	runCtx, done := h.running.start(ctx, job)
	defer done()
	p, err := h.readAndPrepare(ctx, log, inst, b, job)
	switch plan := planPrepared(preparedFacts{known: p.known, stale: p.stale, newSHA: p.newSHA, err: err}); plan.step {
	case stepDrop:
		log.Info("dropping test", "reason", p.stale)
		st.State, st.Description, st.Conclusion = status.Error, status.Errored("not run: "+p.stale), status.ConclusionCancelled
		st.TargetURL = h.droppedTestURL(b, job)
		if newSHA := p.newSHA; newSHA != "" {
			st.Description = status.SupersededBeforeRun(newSHA)
			h.rec.trackSuperseded(ctx, job, newSHA, st)
		} else {
			h.rec.track(ctx, job, events.TestErrored, st, nil)
		}
		return nil
	case stepWaitInfra:
		return h.infraFailed(ctx, st, job, plan.err)
	case stepFailPrepare:
		// The job ends here: its status must say so, not stay pending.
		st.State, st.Description = status.Error, status.Errored("cannot prepare the test: "+status.ErrorReason(plan.err))
		h.rec.track(ctx, job, events.TestErrored, st, nil)
		return plan.err
	case stepHandBack:
		return plan.err
	}
	st.State, st.Description, st.Started = status.Pending, status.Running(job.Attempt, t.Retries+1), true
	announced := h.announceRunning(ctx, log, job, st)
	return h.runAttempt(ctx, runCtx, log, st, job, pipeline.Attempt{
		Test: t, Number: job.Attempt, Dir: p.work, LogPath: p.logPath, Facts: facts(job, p.headRef, p.baseRef),
	}, announced)
}

// announceRunning records job's attempt as running, in its build record
// and, when the worker keeps one, on the running board, while the attempt
// starts: no write stands between a test and its start. The returned
// function waits until both are recorded and returns what removes the
// board's entry; the attempt calls it before it records anything else, so
// the record never goes from a later state back to running.
func (h *testHandler) announceRunning(ctx context.Context, log *slog.Logger, job events.TestJob, st status.Status) func() (unmark func()) {
	done := make(chan func(), 1)
	go func() {
		h.rec.track(ctx, job, events.TestRunning, st, nil)
		done <- h.markRunning(ctx, log, job)
	}()
	return func() func() { return <-done }
}

// runAttempt runs the attempt under runCtx (which a head announcement
// cancels) and reports what became of it: its outcome, a stop because its
// head went stale, or a hand-back because the worker (ctx) is stopping.
// announced is announceRunning's: it is waited for once the attempt ends.
func (h *testHandler) runAttempt(ctx, runCtx context.Context, log *slog.Logger, st status.Status, job events.TestJob, a pipeline.Attempt, announced func() func()) error {
	h.metrics.TestsRunning.Inc()
	guardCtx, unguard := h.disk.Watch(runCtx, a.Dir)
	res, runErr := h.runner.Run(guardCtx, a)
	unguard()
	announced()()
	full, isFull := diskStopCause(guardCtx)
	stopped, isStale := staleCause(runCtx)
	h.metrics.TestsRunning.Dec()
	st.Started = false
	plan := planAttemptEnd(attemptFacts{job: job, test: a.Test, timeout: h.runner.TimeoutOf(a.Test),
		diskStopped: isFull, staleStop: isStale, stopping: ctx.Err() != nil, res: res, runErr: runErr, now: time.Now()})
	switch plan.step {
	case stepStopForDisk:
		return h.stoppedForDisk(ctx, log, st, job, a, res, full)
	case stepStopStale:
		removeWorkCopy(log, a.Dir)
		log.Info("stopped test", "reason", stopped.reason)
		st.State, st.Description, st.Conclusion = status.Error, status.Errored("stopped: "+stopped.reason), status.ConclusionCancelled
		if stopped.newSHA != "" {
			st.Description = status.Superseded(stopped.newSHA)
			h.rec.trackSuperseded(ctx, job, stopped.newSHA, st)
		} else {
			h.rec.track(ctx, job, events.TestErrored, st, nil)
		}
		return nil
	case stepRequeueStopped:
		// The worker is stopping: the attempt did not finish, so the job
		// goes back to the queue and its record says so meanwhile.
		st.Description = status.Queued() + " again: worker stopped"
		h.rec.track(context.WithoutCancel(ctx), job, events.TestQueued, st, nil)
		return ctx.Err()
	case stepWaitInfra:
		h.metrics.attemptDone(res)
		return h.infraFailed(ctx, st, job, infrastructure(InfraSandbox, errors.New(res.Reason)))
	}
	h.metrics.attemptDone(plan.res)
	log.Info("attempt finished", "outcome", plan.res.Outcome.String(), "exit", plan.res.ExitCode, "duration", plan.res.Duration)
	if plan.removeCopy {
		removeWorkCopy(log, a.Dir)
	}
	return h.reportAttempt(ctx, st, job, a, plan)
}

// markRunning records the attempt as running, when the worker records
// attempts, and returns what removes the record.
func (h *testHandler) markRunning(ctx context.Context, log *slog.Logger, job events.TestJob) func() {
	if h.board == nil {
		return func() {}
	}
	done, err := h.board.MarkRunning(ctx, events.RunningAttemptOf(job, h.box, time.Now()))
	if err != nil {
		log.Warn("recording the attempt as running; listings will not show it", "err", err)
	}
	return done
}

// reportAttempt carries out plan, an attempt's end as planAttemptEnd
// decided it: the final status, or a "retrying" status and the next
// attempt queued with its wait.
func (h *testHandler) reportAttempt(ctx context.Context, st status.Status, job events.TestJob, a pipeline.Attempt, plan attemptEnd) error {
	res := plan.res
	st.State, st.Description, st.Conclusion = plan.state, plan.description, plan.conclusion
	if plan.step == stepRetry {
		h.rec.track(ctx, job, events.TestRetrying, st, &res)
		if err := h.publish.PublishTest(ctx, plan.next); err != nil {
			return fmt.Errorf("queuing attempt %d: %w", plan.next.Attempt, err)
		}
		h.metrics.TestsRetried.Inc()
		return nil
	}
	st.Output = attemptReport(a.LogPath, st)
	return h.rec.recordFinal(ctx, job, st, &res)
}

// preparedTest is a test's head as the head record (or, when it cannot
// tell, GitHub) has it now and, unless that made the test stale, its
// working copy and log.
type preparedTest struct {
	testHead
	work, logPath string
}

// readAndPrepare learns whether the job's head is still its pull request's
// open head (headOfTest: from the head record, without a GitHub request,
// whenever the record can tell) and, when it is, prepares the attempt's
// working copy (prepareTest). The check's error comes with known false; a
// stale test has no working copy; otherwise err is the preparation's.
func (h *testHandler) readAndPrepare(ctx context.Context, log *slog.Logger, inst Installation, b artifacts.Build, job events.TestJob) (preparedTest, error) {
	head, err := h.heads.headOfTest(ctx, log, inst, job)
	if err != nil || head.stale != "" {
		return preparedTest{testHead: head}, err
	}
	work, logPath, err := h.prepareTest(ctx, log, inst, head.cloneURL, head.baseRef, b, job)
	if err == nil && job.Rerun == 0 { // the seed's symlink names the first run
		if err = h.workspace.LinkLog(b, job.Test.Name); err != nil {
			err = fmt.Errorf("linking log: %w", err)
		}
	}
	return preparedTest{testHead: head, work: work, logPath: logPath}, err
}

// prepareTest gives the attempt a fresh working copy of the build's commit,
// fetching it into this box's mirror first when this box has not seen it;
// its log is linked by the caller, once the test is known to run.
// Every attempt starts clean: a retry must not inherit a failure's debris.
// How long each step took is logged at debug level.
func (h *testHandler) prepareTest(ctx context.Context, log *slog.Logger, inst Installation, cloneURL, base string, b artifacts.Build, job events.TestJob) (work, logPath string, err error) {
	ws := h.workspace
	began := time.Now()
	if work, err = ws.RunSourceDir(b, job.Test.Name, job.Rerun); err != nil {
		return "", "", permanent(err)
	}
	if logPath, err = ws.RunLogPath(b, job.Test.Name, job.Rerun); err != nil {
		return "", "", permanent(err)
	}
	// A run directory made now has had no attempt: nothing to clear.
	_, statErr := os.Lstat(filepath.Dir(logPath))
	earlier := !errors.Is(statErr, fs.ErrNotExist)
	dir, err := ws.CreateRunDir(b, job.Test.Name, job.Rerun)
	if err != nil {
		if noSpace(err) {
			return "", "", infrastructure(InfraDisk, err)
		}
		return "", "", permanent(err)
	}
	if earlier {
		// A worker killed during an earlier attempt left that attempt's
		// processes running here; they must not share the new attempt's
		// files.
		if n, err := pipeline.KillLeftovers(dir); err != nil {
			h.log.Warn("killing an earlier attempt's processes", "dir", dir, "err", err)
		} else if n > 0 {
			h.log.Info("killed an earlier attempt's processes", "dir", dir, "groups", n)
		}
		if err := os.RemoveAll(work); err != nil {
			return "", "", classifyPrepare(fmt.Errorf("clearing the previous attempt's copy: %w", err))
		}
	}
	cleared := time.Now()
	spare := h.takeSpare(log, b, work)
	fetched, err := h.checkoutTest(ctx, inst, cloneURL, base, b, job, work)
	if err != nil && spare {
		// The spare was not a checkout of this test's commit: make one.
		log.Warn("the build's spare copy does not fit the test; checking out its own", "err", err)
		if err = os.RemoveAll(work); err == nil {
			spare = false
			fetched, err = h.checkoutTest(ctx, inst, cloneURL, base, b, job, work)
		}
	}
	if err != nil {
		return "", "", classifyPrepare(err)
	}
	log.Debug("prepared test", "fetched", fetched, "spare", spare, "rundir", cleared.Sub(began), "checkout", time.Since(cleared))
	return work, logPath, nil
}

// takeSpare moves the build's spare copy (made by the pull handler while
// .yci.py was evaluated, and touched by nothing since) to work, which
// does not exist, and tells whether it did: the first test of a build
// then starts without a checkout of its own. A spare that cannot be
// taken is no failure: the test checks out its own copy.
func (h *testHandler) takeSpare(log *slog.Logger, b artifacts.Build, work string) bool {
	taken, err := h.workspace.TakeSpare(b, work)
	if err != nil {
		log.Warn("taking the build's spare copy; checking out the test's own", "err", err)
	}
	return taken
}

// checkoutTest makes work a checkout of the job's tested commit (the
// build's merge, or its head). The mirror is updated only when it lacks
// the commit (this box did not prepare the build), which the checkout
// itself finds out: a box that did prepare it spends nothing on asking.
// A merge this box lacks is made again from the head and the base, and
// is the same commit. fetched tells whether the mirror was updated.
func (h *testHandler) checkoutTest(ctx context.Context, inst Installation, cloneURL, base string, b artifacts.Build, job events.TestJob, work string) (fetched bool, err error) {
	ws := h.workspace
	sha := job.Tested()
	err = ws.Checkout(ctx, b, sha, base, work)
	if errors.Is(err, artifacts.ErrNotMirrored) {
		if cloneURL == "" {
			return false, permanent(fmt.Errorf("pull request %s has no base clone URL", b))
		}
		if err := ws.UpdateMirror(ctx, b.Owner, b.Repo, cloneURL, inst.Git); err != nil {
			return false, mirrorFailed(err)
		}
		fetched = true
		if sha != job.HeadSHA {
			if _, err := ws.RemakeMerge(ctx, b.Owner, b.Repo, job.HeadSHA, job.BaseSHA, sha); err != nil {
				return fetched, fmt.Errorf("merging %.7s into %.7s again: %w", job.HeadSHA, job.BaseSHA, err)
			}
		}
		err = ws.Checkout(ctx, b, sha, base, work)
	}
	if err != nil {
		return fetched, fmt.Errorf("checking out %s: %w", sha, err)
	}
	return fetched, nil
}

// abandonTest ends a test that crashed every worker it reached with an
// error status instead of losing it.
func (h *testHandler) abandonTest(ctx context.Context, log *slog.Logger, job events.TestJob, delivered uint64) error {
	b := build(job.Repo, job.Number, job.Build)
	log.Error("giving up on test", "deliveries", delivered)
	why := planTestStart(testStartFacts{job: job, lastChance: true, delivered: delivered, diskLow: h.disk.BelowFloor()}).why
	st := status.Status{
		Owner: b.Owner, Repo: b.Repo, SHA: job.HeadSHA, Pull: b.Pull, Build: b.Number, Rerun: job.Rerun, Test: job.Test.Name, State: status.Error,
		Description: status.Errored(why),
		TargetURL:   h.runLogURL(b, job.Test.Name, job.Rerun),
	}
	return h.rec.recordFinal(ctx, job, st, nil)
}

// facts are the YCI_* variables a test can read about itself. The branch
// names are the pull request's as its build (or a read) found them:
// YCI_HEAD_REF is the branch the commit was pushed to (perhaps a fork's),
// YCI_BASE_REF the one it merges into, which the checkout also has as
// <base> and origin/<base>. YCI_SHA is the pull request's head, the
// commit GitHub shows the result on; YCI_BASE_SHA the base commit the
// build merged it into (the checkout's HEAD is that merge, or the head
// itself when the head already contained the base or heads are tested
// alone); empty for jobs queued before builds merged.
//
// A merge group's test also has YCI_MERGE_GROUP=1; its YCI_PULL is the
// group's number (events.GroupNumber) and YCI_HEAD_REF its
// gh-readonly-queue/... branch.
func facts(job events.TestJob, headRef, baseRef string) map[string]string {
	f := map[string]string{
		"YCI_REPO":     job.Repo.FullName(),
		"YCI_PULL":     strconv.Itoa(job.Number),
		"YCI_SHA":      job.HeadSHA,
		"YCI_BUILD":    strconv.Itoa(job.Build),
		"YCI_RERUN":    strconv.Itoa(job.Rerun),
		"YCI_HEAD_REF": headRef,
		"YCI_BASE_REF": baseRef,
		"YCI_BASE_SHA": job.BaseSHA,
	}
	if events.IsGroup(job.Number) {
		f["YCI_MERGE_GROUP"] = "1"
	}
	return f
}

// droppedTestURL is what the status of a test dropped before it ran links
// to: its log when an earlier attempt wrote one on this box, else the
// build's page, never a log that does not exist.
func (h *testHandler) droppedTestURL(b artifacts.Build, job events.TestJob) string {
	if path, err := h.workspace.RunLogPath(b, job.Test.Name, job.Rerun); err == nil {
		if _, err := os.Stat(path); err == nil {
			return h.runLogURL(b, job.Test.Name, job.Rerun)
		}
	}
	return h.pageURL(buildKey(job.Repo, job.Number, job.Build))
}
