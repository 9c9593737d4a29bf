package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-github/v88/github"

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
	ev := d.Payload
	log := w.log.With(ev.LogAttrs()...)
	stop := d.KeepAlive(ctx)
	defer stop()
	apply(ctx, log, d, w.decidePull(ctx, log, ev, prepAttempt{delivered: d.NumDelivered, maxDeliver: uint64(d.MaxDeliver()), published: d.Published}))
}

// handlePull prepares ev's head commit, recording each step in p.
func (w *Worker) handlePull(ctx context.Context, log *slog.Logger, ev events.PullEvent, p *prepLog) error {
	// Nothing publishes such an event (every edge validates with the same
	// rule), but one from an older receiver ends here, at once.
	if err := errors.Join(ev.Repo.Validate(), events.ValidatePull(ev.Number), events.ValidateSHA(ev.HeadSHA)); err != nil {
		return permanent(fmt.Errorf("refusing pull event: %w", err))
	}
	// The first sighting of a head is what /ok-to-test compares the
	// comment's time with (see okToTest).
	if _, err := w.opts.Queue.SeeHead(ctx, ev.Repo, ev.Number, ev.HeadSHA, time.Now()); err != nil {
		return fmt.Errorf("recording head %.7s as seen: %w", ev.HeadSHA, err)
	}
	p.step("authenticating for installation %d", ev.Installation)
	inst, err := w.opts.GitHub.Installation(ctx, ev.Installation)
	if err != nil {
		return fmt.Errorf("authenticating for installation %d: %w", ev.Installation, err)
	}
	pull, stale, err := w.pullOf(ctx, log, inst, ev, p)
	if err != nil {
		return err
	}
	if stale != "" {
		log.Info("not building", "reason", stale)
		return nil
	}
	v, err := w.approved(ctx, log, inst, pull.pr, ev)
	if !v.build || err != nil {
		return err
	}
	p.step("claiming a build number")
	claim, err := w.opts.Queue.ClaimBuildFor(ctx, ev.Repo, ev.Number, ev.HeadSHA, ev.MsgID(), ev.Rebuild)
	if err != nil {
		return fmt.Errorf("claiming a build number: %w", err)
	}
	log = log.With("build", claim.Build)
	p.claimed(claim.Build)
	p.step("build %d", claim.Build)
	if !claim.Mine {
		log.Info("head commit already built")
		w.pullOpen(ctx, log, ev.Repo, ev.Number)
		return nil
	}
	if claim.Fresh {
		// Running tests of this pull's older heads can stop now.
		if err := w.opts.Queue.AnnounceHead(events.HeadAnnouncement{Repo: ev.Repo, Number: ev.Number, SHA: ev.HeadSHA}); err != nil {
			log.Warn("announcing new head", "err", err)
		}
		if v.asked {
			if err := w.setApprovedSummary(ctx, ev, v.by, claim.Build); err != nil {
				return err
			}
		}
	}
	return w.queueBuild(ctx, log, inst, pull, ev, claim, p)
}

// setApprovedSummary records on the head's summary that the head commit
// was approved, pending "approved by ...; building" about build n (0 when
// not yet claimed), so GitHub no longer asks for an approval that was
// given; the projector shows it until the build's summary takes over.
func (w *Worker) setApprovedSummary(ctx context.Context, ev events.PullEvent, by string, n int) error {
	if by == "" {
		by = "a writer"
	}
	err := w.updateHead(ctx, ev, func(h *events.HeadSummary) bool {
		changed := !h.Approved
		h.Approved = true
		return h.Set(n, string(status.Pending), status.Approved(by), "") || changed
	})
	if err != nil {
		return fmt.Errorf("recording the approval on the head's summary: %w", err)
	}
	return nil
}

// queueBuild checks out the claimed build, evaluates its .yci.py and
// queues its tests, then marks it queued. A claim resumed after a crash
// queues again without "queued" statuses: tests queued before the crash
// may have run since, and their statuses must not go back to pending (the
// stream drops their second publication as a duplicate).
func (w *Worker) queueBuild(ctx context.Context, log *slog.Logger, inst Installation, pull pullRequest, ev events.PullEvent, claim events.Claim, p *prepLog) error {
	b := build(ev.Repo, ev.Number, claim.Build)
	src, m, err := w.checkoutBuild(ctx, inst, pull.pr, b, ev.HeadSHA, p)
	if err != nil {
		return err
	}
	if len(m.Conflicts) > 0 {
		err = w.reportConflict(ctx, log, ev, b, pull.pr.GetBase().GetRef(), m)
	} else {
		err = w.evaluateAndQueue(ctx, log, pull, ev, b, src, m, p)
	}
	if err != nil {
		return err
	}
	if err := w.opts.Queue.MarkQueued(ctx, ev.Repo, ev.Number, ev.HeadSHA, claim.Build); err != nil {
		return fmt.Errorf("recording build as queued: %w", err)
	}
	log.Info("build queued", "tested", m.SHA, "base", m.Base)
	return nil
}

// evaluateAndQueue evaluates the build's .yci.py in src, the checkout of
// m.SHA, telling it what changed, and queues its tests (none is a verdict
// too: "no tests for this change").
func (w *Worker) evaluateAndQueue(ctx context.Context, log *slog.Logger, pull pullRequest, ev events.PullEvent, b artifacts.Build, src string, m artifacts.Merged, p *prepLog) error {
	// .yci.py reads the pull request as GitHub sent it (the webhook's
	// or the API's), nulls included, not as go-github's struct would
	// encode it again; only base.sha is the base the build tested.
	raw, err := pullAsTested(pull.raw, m.Base)
	if err != nil {
		return permanent(err)
	}
	p.step("evaluating .yci.py (%d changed files)", len(m.Changes))
	tests, err := w.opts.Evaluator.EvaluateChange(ctx, src, b.Number, raw, &pipeline.Change{Files: m.Changes})
	var cfgErr *pipeline.ConfigError
	if errors.As(err, &cfgErr) {
		return w.reportConfigError(ctx, log, ev, b, cfgErr)
	} else if err != nil {
		return fmt.Errorf("evaluating .yci.py: %w", err)
	}
	w.recordQueued(ctx, log, pull.pr, b, ev.HeadSHA, ev.Installation, tests, recordedChanges(m.Changes))
	p.step("queuing %d tests", len(tests))
	log.Info("queuing tests", "tests", len(tests), "changed", len(m.Changes))
	return w.queueTests(ctx, ev, pull.pr, b, tests, m)
}

// checkoutBuild brings the mirror up to date, merges the head into its
// base (mergeForBuild) and checks out the result as the build's source,
// where .yci.py is evaluated. The clone URL is the base repository's, as
// GitHub's API gives it, never one the author controls. A merge that
// conflicts has no source: the caller reports it. Up to date means as new
// as GitHub was when the event was queued: a fetch this box began after
// that serves (so a burst of pull requests costs a fetch or two, not one
// each), and its step says so.
func (w *Worker) checkoutBuild(ctx context.Context, inst Installation, pr *github.PullRequest, b artifacts.Build, sha string, p *prepLog) (string, artifacts.Merged, error) {
	cloneURL := pr.GetBase().GetRepo().GetCloneURL()
	if cloneURL == "" {
		return "", artifacts.Merged{}, permanent(fmt.Errorf("pull request %s has no base clone URL", b))
	}
	p.step("updating the mirror from %s", cloneURL)
	fetched, err := w.opts.Workspace.UpdateMirrorSince(ctx, b.Owner, b.Repo, cloneURL, inst.Git, p.mirrorSince())
	if err != nil {
		return "", artifacts.Merged{}, mirrorFailed(err)
	}
	if !fetched {
		p.step("the mirror was fetched after the event was queued")
	}
	base := pr.GetBase().GetRef()
	k := buildKey(events.Repo{Owner: b.Owner, Name: b.Repo}, b.Pull, b.Number)
	m, err := w.mergeForBuild(ctx, k, sha, base, pr.GetBase().GetSHA())
	if err != nil || len(m.Conflicts) > 0 {
		return "", m, err
	}
	src, err := w.opts.Workspace.SourceDir(b)
	if err != nil {
		return "", m, permanent(err)
	}
	if m.SHA != sha {
		p.step("merged %s into %s at %s (%d commits behind): %s", sha, base, m.Base, m.Behind, m.SHA)
	}
	p.step("checking out %s (base branch %s)", m.SHA, base)
	if err := w.opts.Workspace.Checkout(ctx, b, m.SHA, base, src); err != nil {
		return "", m, classifyPrepare(fmt.Errorf("checking out %s: %w", m.SHA, err))
	}
	return src, m, nil
}

// queueTests publishes every test of the build, which recordQueued has
// already recorded as queued: the projector shows "queued" from that record.
// Every test checks out m.SHA, the commit the build evaluated.
func (w *Worker) queueTests(ctx context.Context, ev events.PullEvent, pr *github.PullRequest, b artifacts.Build, tests []pipeline.Test, m artifacts.Merged) error {
	for _, t := range tests {
		job := events.TestJob{
			Version: events.Version, Repo: ev.Repo, Number: ev.Number, HeadSHA: ev.HeadSHA,
			Installation: ev.Installation, Build: b.Number, Test: specOf(t), Attempt: 1,
			BaseRef: pr.GetBase().GetRef(), CloneURL: pr.GetBase().GetRepo().GetCloneURL(),
			HeadRef: pr.GetHead().GetRef(), PullUpdatedAt: pr.GetUpdatedAt().UTC(),
			BaseSHA: m.Base, TestSHA: m.SHA,
		}
		if err := w.opts.Queue.PublishTest(ctx, job); err != nil {
			return fmt.Errorf("queuing test %s: %w", t.Name, err)
		}
		w.opts.Metrics.TestsQueued.Inc()
	}
	return nil
}

// reportConfigError writes what went wrong with .yci.py to the build's log
// and records it in the build's record, which the projector shows as the
// summary's error pointing at the log. The job is then done: running it
// again cannot fix the file.
func (w *Worker) reportConfigError(ctx context.Context, log *slog.Logger, ev events.PullEvent, b artifacts.Build, cfgErr *pipeline.ConfigError) error {
	// The message and detail are the evaluation's, which ran the
	// repository's code: it may have printed anything it could read.
	reason, err := w.mask(cfgErr.Error())
	if err != nil {
		return err
	}
	detail, err := w.mask(cfgErr.Detail() + "\n")
	if err != nil {
		return err
	}
	log.Info(".yci.py refused", "reason", reason)
	return w.endWithoutTests(ctx, ev, b, detail, func(r *events.BuildRecord) {
		r.ConfigError = status.ConfigError(reason)
	})
}

// endWithoutTests ends build b of ev's head with no test run: detail, its
// secrets already masked, becomes the log the summary links to, and set
// says why in the record (ConfigError), which the projector shows as the
// summary's error.
func (w *Worker) endWithoutTests(ctx context.Context, ev events.PullEvent, b artifacts.Build, detail string, set func(*events.BuildRecord)) error {
	dir, err := w.opts.Workspace.CreateTestDir(b, configLogName)
	if err != nil {
		return fmt.Errorf("creating the build's log: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "out.txt"), []byte(detail), 0o644); err != nil {
		return fmt.Errorf("writing the build's log: %w", err)
	}
	if err := w.opts.Workspace.LinkLog(b, configLogName); err != nil {
		return fmt.Errorf("linking the build's log: %w", err)
	}
	_, err = w.opts.Records.UpdateBuild(ctx, buildKey(ev.Repo, b.Pull, b.Number), func(r *events.BuildRecord) error {
		r.SHA, r.Installation, r.Projected = ev.HeadSHA, ev.Installation, true
		r.ConfigLogURL = w.logURL(b, configLogName)
		set(r)
		return nil
	})
	if err != nil {
		return fmt.Errorf("recording why build %d has no tests: %w", b.Number, err)
	}
	return nil
}

// abandonPull ends a pull event whose every attempt failed (or crashed
// the worker it reached) with an error on the head's summary linking to
// its preparation log, rather than losing it silently. The log gets a
// last line saying so, so the link works even when no attempt wrote to
// it. A head that a build already took over keeps showing that build.
func (w *Worker) abandonPull(ctx context.Context, log *slog.Logger, ev events.PullEvent, a prepAttempt) error {
	log.Error("giving up on pull event", "deliveries", a.delivered)
	url := w.appendPrepLog(log, ev, fmt.Appendf(nil, "%sgave up after %d attempts (attempts that crashed a worker or were handed back on shutdown count too; see the worker's log)\n",
		pipeline.LogPrefix, a.attempts()))
	err := w.updateHead(ctx, ev, func(h *events.HeadSummary) bool {
		return h.Set(0, string(status.Error), status.GaveUpPreparing(int(a.attempts())), url)
	})
	if err != nil {
		return fmt.Errorf("recording that preparing was given up: %w", err)
	}
	return nil
}

// approved reports whether the policy lets ev's commit be built now, and
// otherwise records on the head's summary that approval is needed. No build is
// claimed for an unapproved commit: an approval (the label's webhook, a
// command, or a later sweep reading who added the label) brings the same
// commit back, and then it is built.
func (w *Worker) approved(ctx context.Context, log *slog.Logger, inst Installation, pr *github.PullRequest, ev events.PullEvent) (verdict, error) {
	v, err := w.judge(ctx, log, inst, pr, ev)
	if v.build || err != nil {
		return v, err
	}
	log.Info("waiting for approval", "author", pr.GetUser().GetLogin())
	// Every sweep brings an unapproved commit back; its status is written
	// once per head commit, by whichever box gets there first.
	first, err := w.opts.Queue.AskApproval(ctx, ev.Repo, ev.Number, ev.HeadSHA)
	if err != nil || !first {
		return v, err
	}
	err = w.updateHead(ctx, ev, func(h *events.HeadSummary) bool {
		// An approval recorded meanwhile stands.
		return !h.Approved && h.Set(0, string(status.Pending), status.ApprovalNeeded(w.opts.ApprovalLabel), "")
	})
	if err != nil {
		if ferr := w.opts.Queue.ForgetAsked(ctx, ev.Repo, ev.Number, ev.HeadSHA); ferr != nil {
			err = errors.Join(err, ferr)
		}
		return v, fmt.Errorf("asking for approval: %w", err)
	}
	// An approval recorded meanwhile (its event handled on another slot
	// or box) may have read the approval record before this request:
	// then its "approved" would not follow this one, so it is recorded
	// here.
	rec, err := w.opts.Queue.ApprovalOf(ctx, ev.Repo, ev.Number)
	if err != nil || !rec.Covers(ev.HeadSHA) {
		return v, err
	}
	return v, w.setApprovedSummary(ctx, ev, rec.By, 0)
}
