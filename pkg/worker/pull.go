package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/yourci/yourci/pkg/artifacts"
	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/pipeline"
	"github.com/yourci/yourci/pkg/status"
)

// configLogName is the log directory of a build whose .yci.py failed. It
// cannot collide with a test: a build with a broken matrix has no tests.
const configLogName = "yci"

// HandlePull builds one head commit of a pull request: it claims a build
// number, mirrors and checks out the commit, evaluates .yci.py, sets a
// pending status per test and queues the tests. The message is acked once
// every test is queued; a commit already built is acked and left alone.
func (w *Worker) HandlePull(ctx context.Context, d *events.Delivery[events.PullEvent]) {
	w.pulls.handle(ctx, d)
}

// handle is HandlePull: the delivery decided, then settled as decided,
// then the mirror maintained.
func (h *pullHandler) handle(ctx context.Context, d *events.Delivery[events.PullEvent]) {
	ev := d.Payload
	log := h.log.With(ev.LogAttrs()...)
	func() {
		stop := d.KeepAlive(ctx)
		defer stop()
		apply(ctx, log, d, h.decide(ctx, log, ev, prepAttempt{delivered: d.NumDelivered, maxDeliver: uint64(d.MaxDeliver()), published: d.Published}))
	}()
	h.maintainMirror(ctx, log, ev.Repo)
}

// maintainMirror runs the automatic maintenance (a garbage collection
// now and then) that the mirror's fetch skipped to reach the tests
// sooner (artifacts.MaintainMirror): the delivery is settled, the tests,
// if any, queued. It does nothing when nothing was fetched since the last
// time, and stops with ctx (the worker stopping); a failure is only
// logged, as a fetch's maintenance failing would not fail the fetch.
func (h *pullHandler) maintainMirror(ctx context.Context, log *slog.Logger, repo events.Repo) {
	if repo.Validate() != nil {
		return
	}
	if err := h.workspace.MaintainMirror(ctx, repo.Owner, repo.Name); err != nil {
		log.Warn("maintaining the mirror", "err", err)
	}
}

// decide handles one delivery of a pull event: on the last delivery it
// gives up with an error status linking to the head's preparation log
// instead of trying again (an attempt that crashed every worker before
// would crash this one too), and otherwise builds the head commit. An
// attempt that fails (other than by shutdown) is written to the
// preparation log and, when it is handed back, shown at once as the
// pending yci summary with its reason (planPullEnd, planPrepFailure). Its
// Verdict says how the delivery ends.
//
// Each attempt has PrepareTimeout: past it, it is stopped and handed back
// like any failure ("preparing this commit took more than 10m0s;
// stopped"), so a commit that keeps hanging ends, on its last delivery,
// as an error status, and its slot is freed even when the attempt
// ignores being stopped (see guard).
func (h *pullHandler) decide(ctx context.Context, log *slog.Logger, ev events.PullEvent, a prepAttempt) Verdict {
	job := fmt.Sprintf("%s#%d at %s", ev.Repo.FullName(), ev.Number, ev.HeadSHA)
	if a.last() {
		err := h.guard(ctx, "pull", job, "giving up on this commit", h.timeout, h.grace, func(ctx context.Context) error {
			return h.abandon(ctx, log, ev, a)
		})
		h.metrics.pullHandled(err)
		return judgeError(ctx, err, a.delivered)
	}
	p := &prepLog{since: a.published}
	err := h.guard(ctx, "pull", job, "preparing this commit", h.timeout, h.grace, func(ctx context.Context) error {
		return h.prepare(ctx, log, ev, p)
	})
	if errors.Is(err, ErrStuck) {
		// The attempt still runs and may still write its steps.
		p = &prepLog{steps: []string{"(the stuck attempt's steps are not known)"}}
	}
	h.metrics.pullHandled(err)
	h.metrics.countInfra(err)
	end := planPullEnd(pullEndFacts{err: err, stopping: ctx.Err() != nil, delivered: a.delivered})
	if end.recordFailure {
		// Telling of the failure is bounded too: GitHub may be what hangs.
		rctx, cancel := context.WithTimeout(ctx, h.timeout)
		h.journal.recordFailure(rctx, log, ev, planPrepFailure(prepFailureFacts{
			attempt: a, steps: p.steps, build: p.build, verdict: end.verdict, now: time.Now()}))
		cancel()
	}
	return end.verdict
}

// prepare prepares ev's head commit, recording each step in p: it
// gathers the facts planAdmit asks for, one step at a time, until the
// plan ends the event or builds it.
func (h *pullHandler) prepare(ctx context.Context, log *slog.Logger, ev events.PullEvent, p *prepLog) error {
	f := admitFacts{invalid: errors.Join(ev.Repo.Validate(), events.ValidatePull(ev.Number), events.ValidateSHA(ev.HeadSHA))}
	var inst Installation
	var pull pullRequest
	for {
		var err error
		plan := planAdmit(f)
		switch plan.step {
		case admitRefuse:
			return permanent(fmt.Errorf("refusing pull event: %w", plan.err))
		case admitRead:
			inst, pull, f.stale, err = h.readPull(ctx, log, ev, p)
			f.read = true
		case admitDropStale:
			log.Info("not building", "reason", f.stale)
			return nil
		case admitJudge:
			f.verdict, err = h.gate.admit(ctx, log, inst, pull.pr, ev)
			f.judged = true
		case admitWait:
			return nil
		case admitClaim:
			p.step("claiming a build number")
			f.claim, err = h.claims.ClaimBuildFor(ctx, ev.Repo, ev.Number, ev.HeadSHA, ev.MsgID(), ev.Rebuild)
			if err != nil {
				return fmt.Errorf("claiming a build number: %w", err)
			}
			f.claimed = true
			log = log.With("build", f.claim.Build)
			p.claimed(f.claim.Build)
			p.step("build %d", f.claim.Build)
		case admitBuilt:
			log.Info("head commit already built")
			h.pullOpen(ctx, log, ev.Repo, ev.Number)
			return nil
		default:
			return h.startBuild(ctx, log, inst, pull, ev, f, plan.claim, p)
		}
		if err != nil {
			return err
		}
	}
}

// readPull records ev's head as seen, authenticates for its installation
// and reads its pull request, and why the head is no longer the pull
// request's ("" when it is). The first sighting of a head is what
// /ok-to-test compares the comment's time with (see okToTest).
func (h *pullHandler) readPull(ctx context.Context, log *slog.Logger, ev events.PullEvent, p *prepLog) (Installation, pullRequest, string, error) {
	if _, err := h.claims.SeeHead(ctx, ev.Repo, ev.Number, ev.HeadSHA, time.Now()); err != nil {
		return Installation{}, pullRequest{}, "", fmt.Errorf("recording head %.7s as seen: %w", ev.HeadSHA, err)
	}
	p.step("authenticating for installation %d", ev.Installation)
	inst, err := h.installs.Installation(ctx, ev.Installation)
	if err != nil {
		return Installation{}, pullRequest{}, "", fmt.Errorf("authenticating for installation %d: %w", ev.Installation, err)
	}
	pull, stale, err := h.heads.pullOf(ctx, log, inst, ev, p)
	return inst, pull, stale, err
}

// startBuild does what claim plan c says of f's claim (announce the head,
// show its approval), then prepares the build (queueBuild).
func (h *pullHandler) startBuild(ctx context.Context, log *slog.Logger, inst Installation, pull pullRequest, ev events.PullEvent, f admitFacts, c claimPlan, p *prepLog) error {
	if c.announce {
		// Running tests of this pull's older heads can stop now.
		if err := h.claims.AnnounceHead(events.HeadAnnouncement{Repo: ev.Repo, Number: ev.Number, SHA: ev.HeadSHA}); err != nil {
			log.Warn("announcing new head", "err", err)
		}
	}
	if c.showApproved {
		if err := h.gate.showApproved(ctx, ev, f.verdict.by, f.claim.Build); err != nil {
			return err
		}
	}
	return h.queueBuild(ctx, log, inst, pull, ev, f.claim, p)
}

// queueBuild prepares the claimed build as planBuild plans it, one step
// at a time (mirror, merge, checkout, evaluate), then ends it or queues
// its tests (endBuild). A claim resumed after a crash queues again: tests
// queued before the crash keep the states they reached in the record
// (recordQueued), and the stream drops their second publication as a
// duplicate.
func (h *pullHandler) queueBuild(ctx context.Context, log *slog.Logger, inst Installation, pull pullRequest, ev events.PullEvent, claim events.Claim, p *prepLog) error {
	b := build(ev.Repo, ev.Number, claim.Build)
	baseRef := pull.pr.GetBase().GetRef()
	f := buildFacts{ev: ev, pr: pull.pr, build: b.Number}
	var src string
	keepSpare := func() {}
	for {
		var err error
		plan := planBuild(f)
		switch plan.step {
		case stepMirror:
			err = h.mirror(ctx, inst, b, plan.cloneURL, p)
			f.mirrored = true
		case stepMerge:
			k := buildKey(ev.Repo, b.Pull, b.Number)
			f.merged, err = h.merger.merge(ctx, k, ev.HeadSHA, baseRef, pull.pr.GetBase().GetSHA(), claim.Fresh)
			f.made = true
		case stepCheckout:
			src, err = h.checkout(ctx, b, ev.HeadSHA, baseRef, f.merged, p)
			f.checkedOut = true
		case stepEvaluate:
			settleSpare := h.makeSpare(ctx, log, b, f.merged.SHA, baseRef)
			defer settleSpare(false) // unless kept: no test will take it
			keepSpare = func() { settleSpare(true) }
			raw, rerr := pullAsTested(pull.raw, f.merged.Base)
			if rerr != nil {
				return permanent(rerr)
			}
			f.tests, f.err = h.evaluate(ctx, raw, b, src, f.merged, p)
			f.evaluated = true
		default:
			return h.endBuild(ctx, log, preparedBuild{pull: pull, facts: f, plan: plan, keepSpare: keepSpare}, p)
		}
		if err != nil {
			return err
		}
	}
}

// preparedBuild is a claimed build whose preparation queueBuild has
// carried as far as its plan goes: what endBuild ends or queues.
type preparedBuild struct {
	pull  pullRequest // the pull request as read for the build
	facts buildFacts  // what preparing it found; its event and number too
	plan  buildPlan   // its last step
	// keepSpare keeps the spare copy for the first test, once there is one.
	keepSpare func()
}

// endBuild carries out the last step of pb's plan: it ends the build
// without tests (a conflict, a refused .yci.py), fails the attempt, or
// records and publishes the tests; then it marks the build queued.
func (h *pullHandler) endBuild(ctx context.Context, log *slog.Logger, pb preparedBuild, p *prepLog) error {
	f, plan, ev := pb.facts, pb.plan, pb.facts.ev
	b := build(ev.Repo, ev.Number, f.build)
	m := f.merged
	var err error
	switch plan.step {
	case stepEndConflict:
		log.Info("head does not merge into its base", "base", m.Base, "conflicts", len(m.Conflicts))
		err = h.endWithoutTests(ctx, ev, b, plan.log, func(r *events.BuildRecord) {
			r.Base, r.ConfigError = plan.base, plan.summary
		})
	case stepEndConfigError:
		err = h.reportConfigError(ctx, log, ev, b, plan.refusal)
	case stepFailBuild:
		err = plan.err
	default:
		h.recordQueued(ctx, log, pb.pull, b, ev, f.tests, plan.changes)
		p.step("queuing %d tests", len(plan.jobs))
		log.Info("queuing tests", "tests", len(plan.jobs), "changed", len(m.Changes))
		if len(plan.jobs) > 0 {
			pb.keepSpare()
		}
		err = h.queueTests(ctx, plan.jobs)
	}
	if err != nil {
		return err
	}
	if err := h.claims.MarkQueued(ctx, ev.Repo, ev.Number, ev.HeadSHA, b.Number); err != nil {
		return fmt.Errorf("recording build as queued: %w", err)
	}
	log.Info("build queued", "tested", m.SHA, "base", m.Base)
	return nil
}

// evaluate runs the build's .yci.py in src, the checkout of m.SHA,
// telling it what changed. .yci.py reads raw, the pull request as GitHub
// sent it (the webhook's or the API's), nulls included, not as
// go-github's struct would encode it again; only base.sha is the base the
// build tested (pullAsTested).
func (h *pullHandler) evaluate(ctx context.Context, raw json.RawMessage, b artifacts.Build, src string, m artifacts.Merged, p *prepLog) ([]pipeline.Test, error) {
	p.step("evaluating .yci.py (%d changed files)", len(m.Changes))
	return h.evaluator.EvaluateChange(ctx, src, b.Number, raw, &pipeline.Change{Files: m.Changes})
}

// mirror brings the mirror of b's repository up to date from cloneURL.
// Up to date means as new as GitHub was when the event was queued: a
// fetch this box began after that serves (so a burst of pull requests
// costs a fetch or two, not one each), and its step says so.
func (h *pullHandler) mirror(ctx context.Context, inst Installation, b artifacts.Build, cloneURL string, p *prepLog) error {
	p.step("updating the mirror from %s", cloneURL)
	fetched, err := h.workspace.UpdateMirrorSince(ctx, b.Owner, b.Repo, cloneURL, inst.Git, p.mirrorSince())
	if err != nil {
		return mirrorFailed(err)
	}
	if !fetched {
		p.step("the mirror was fetched after the event was queued")
	}
	return nil
}

// checkout checks out m, the commit build b tests of head sha, as the
// build's source, where .yci.py is evaluated, and returns its directory.
func (h *pullHandler) checkout(ctx context.Context, b artifacts.Build, sha, base string, m artifacts.Merged, p *prepLog) (string, error) {
	src, err := h.workspace.SourceDir(b)
	if err != nil {
		return "", permanent(err)
	}
	if m.SHA != sha {
		p.step("merged %s into %s at %s (%d commits behind): %s", sha, base, m.Base, m.Behind, m.SHA)
	}
	p.step("checking out %s (base branch %s)", m.SHA, base)
	if err := h.workspace.Checkout(ctx, b, m.SHA, base, src); err != nil {
		return "", classifyPrepare(fmt.Errorf("checking out %s: %w", m.SHA, err))
	}
	return src, nil
}

// makeSpare checks out the build's commit once more, as the copy the
// build's first test will take (artifacts.MakeSpare), while .yci.py is
// evaluated: that test then starts without a checkout of its own. The
// returned settle waits until the copy is made and, unless keep (tests
// are queued after it, so the first finds the spare ready), removes it;
// calls after the first do nothing. A spare that cannot be made costs
// nothing but the log line: the test checks out its own copy, as it would
// without.
func (h *pullHandler) makeSpare(ctx context.Context, log *slog.Logger, b artifacts.Build, sha, base string) (settle func(keep bool)) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		began := time.Now()
		if err := h.workspace.MakeSpare(ctx, b, sha, base); err != nil {
			log.Warn("checking out a spare copy for the first test; it will check out its own", "err", err)
			return
		}
		log.Debug("spare copy made", "took", time.Since(began))
	}()
	var once sync.Once
	return func(keep bool) {
		once.Do(func() {
			<-done
			if keep {
				return
			}
			if err := h.workspace.DropSpare(b); err != nil {
				log.Warn("removing the spare copy no test will take", "err", err)
			}
		})
	}
}

// queueTests publishes jobs, which recordQueued has already recorded as
// queued: the projector shows "queued" from that record.
func (h *pullHandler) queueTests(ctx context.Context, jobs []events.TestJob) error {
	for _, job := range jobs {
		if err := h.publish.PublishTest(ctx, job); err != nil {
			return fmt.Errorf("queuing test %s: %w", job.Test.Name, err)
		}
		h.metrics.TestsQueued.Inc()
	}
	return nil
}

// reportConfigError writes what went wrong with .yci.py to the build's log
// and records it in the build's record, which the projector shows as the
// summary's error pointing at the log. The job is then done: running it
// again cannot fix the file.
func (h *pullHandler) reportConfigError(ctx context.Context, log *slog.Logger, ev events.PullEvent, b artifacts.Build, cfgErr *pipeline.ConfigError) error {
	// The message and detail are the evaluation's, which ran the
	// repository's code: it may have printed anything it could read.
	reason, err := h.journal.mask(cfgErr.Error())
	if err != nil {
		return err
	}
	log.Info(".yci.py refused", "reason", reason)
	return h.endWithoutTests(ctx, ev, b, cfgErr.Detail()+"\n", func(r *events.BuildRecord) {
		r.ConfigError = status.ConfigError(reason)
	})
}

// endWithoutTests ends build b of ev's head with no test run: detail,
// masked here, becomes the log the summary links to, and set says why in
// the record (ConfigError), which the projector shows as the summary's
// error.
func (h *pullHandler) endWithoutTests(ctx context.Context, ev events.PullEvent, b artifacts.Build, detail string, set func(*events.BuildRecord)) error {
	detail, err := h.journal.mask(detail)
	if err != nil {
		return err
	}
	dir, err := h.workspace.CreateTestDir(b, configLogName)
	if err != nil {
		return fmt.Errorf("creating the build's log: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "out.txt"), []byte(detail), 0o644); err != nil {
		return fmt.Errorf("writing the build's log: %w", err)
	}
	if err := h.workspace.LinkLog(b, configLogName); err != nil {
		return fmt.Errorf("linking the build's log: %w", err)
	}
	_, err = h.records.UpdateBuild(ctx, buildKey(ev.Repo, b.Pull, b.Number), func(r *events.BuildRecord) error {
		r.SHA, r.Installation, r.Projected = ev.HeadSHA, ev.Installation, true
		r.ConfigLogURL = h.logURL(b, configLogName)
		set(r)
		return nil
	})
	if err != nil {
		return fmt.Errorf("recording why build %d has no tests: %w", b.Number, err)
	}
	return nil
}

// abandon ends a pull event whose every attempt failed (or crashed the
// worker it reached) with an error on the head's summary linking to its
// preparation log, rather than losing it silently. The log gets a last
// line saying so, so the link works even when no attempt wrote to it. A
// head that a build already took over keeps showing that build.
func (h *pullHandler) abandon(ctx context.Context, log *slog.Logger, ev events.PullEvent, a prepAttempt) error {
	log.Error("giving up on pull event", "deliveries", a.delivered)
	text, desc := planGiveUp(a)
	url := h.journal.append(log, ev, []byte(text))
	err := h.summaries.update(ctx, ev, func(s *events.HeadSummary) bool {
		return s.Set(0, string(status.Error), desc, url)
	})
	if err != nil {
		return fmt.Errorf("recording that preparing was given up: %w", err)
	}
	return nil
}
