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
			if err := w.setApprovedSummary(ctx, log, inst, ev, v.by); err != nil {
				return err
			}
		}
	}
	return w.queueBuild(ctx, log, inst, pull, ev, claim, p)
}

// setApprovedSummary replaces the "approval needed" yci status of an
// approved head commit with pending "approved by ...; building", so GitHub
// no longer asks for an approval that was given. It is the one place the
// worker writes yci for an approval; the build's summary (when one is
// written) takes over from it.
func (w *Worker) setApprovedSummary(ctx context.Context, log *slog.Logger, inst Installation, ev events.PullEvent, by string) error {
	if by == "" {
		by = "a writer"
	}
	err := w.reporter(inst, log).Set(ctx, status.Status{
		Owner: ev.Repo.Owner, Repo: ev.Repo.Name, SHA: ev.HeadSHA,
		State: status.Pending, Description: status.Approved(by),
	})
	if err != nil {
		return fmt.Errorf("replacing the approval status: %w", err)
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
	src, err := w.checkoutBuild(ctx, inst, pull.pr, b, ev.HeadSHA, p)
	if err != nil {
		return err
	}
	// .yci.py reads the pull request as GitHub sent it (the webhook's
	// or the API's), nulls included, not as go-github's struct would
	// encode it again.
	p.step("evaluating .yci.py")
	tests, err := w.opts.Evaluator.Evaluate(ctx, src, claim.Build, pull.raw)
	var cfgErr *pipeline.ConfigError
	if errors.As(err, &cfgErr) {
		err = w.reportConfigError(ctx, log, ev, b, cfgErr)
	} else if err != nil {
		return fmt.Errorf("evaluating .yci.py: %w", err)
	} else {
		w.recordQueued(ctx, log, pull.pr, b, ev.HeadSHA, ev.Installation, tests)
		p.step("queuing %d tests", len(tests))
		err = w.queueTests(ctx, ev, pull.pr, b, tests)
	}
	if err != nil {
		return err
	}
	if err := w.opts.Queue.MarkQueued(ctx, ev.Repo, ev.Number, ev.HeadSHA, claim.Build); err != nil {
		return fmt.Errorf("recording build as queued: %w", err)
	}
	log.Info("build queued", "tests", len(tests))
	return nil
}

// checkoutBuild brings the mirror up to date and checks out the build's
// source, where .yci.py is evaluated. The clone URL is the base
// repository's, as GitHub's API gives it, never one the author controls.
// Up to date means as new as GitHub was when the event was queued: a fetch
// this box began after that serves (so a burst of pull requests costs a
// fetch or two, not one each), and its step says so.
func (w *Worker) checkoutBuild(ctx context.Context, inst Installation, pr *github.PullRequest, b artifacts.Build, sha string, p *prepLog) (string, error) {
	cloneURL := pr.GetBase().GetRepo().GetCloneURL()
	if cloneURL == "" {
		return "", permanent(fmt.Errorf("pull request %s has no base clone URL", b))
	}
	p.step("updating the mirror from %s", cloneURL)
	fetched, err := w.opts.Workspace.UpdateMirrorSince(ctx, b.Owner, b.Repo, cloneURL, inst.Git, p.mirrorSince())
	if err != nil {
		return "", mirrorFailed(err)
	}
	if !fetched {
		p.step("the mirror was fetched after the event was queued")
	}
	src, err := w.opts.Workspace.SourceDir(b)
	if err != nil {
		return "", permanent(err)
	}
	p.step("checking out %s (base branch %s)", sha, pr.GetBase().GetRef())
	if err := w.opts.Workspace.Checkout(ctx, b, sha, pr.GetBase().GetRef(), src); err != nil {
		return "", classifyPrepare(fmt.Errorf("checking out %s: %w", sha, err))
	}
	return src, nil
}

// queueTests publishes every test of the build, which recordQueued has
// already recorded as queued: the projector shows "queued" from that record.
func (w *Worker) queueTests(ctx context.Context, ev events.PullEvent, pr *github.PullRequest, b artifacts.Build, tests []pipeline.Test) error {
	for _, t := range tests {
		job := events.TestJob{
			Version: events.Version, Repo: ev.Repo, Number: ev.Number, HeadSHA: ev.HeadSHA,
			Installation: ev.Installation, Build: b.Number, Test: specOf(t), Attempt: 1,
			BaseRef: pr.GetBase().GetRef(), CloneURL: pr.GetBase().GetRepo().GetCloneURL(),
			HeadRef: pr.GetHead().GetRef(), PullUpdatedAt: pr.GetUpdatedAt().UTC(),
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
	dir, err := w.opts.Workspace.CreateTestDir(b, configLogName)
	if err != nil {
		return fmt.Errorf("creating config log: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "out.txt"), []byte(detail), 0o644); err != nil {
		return fmt.Errorf("writing config log: %w", err)
	}
	if err := w.opts.Workspace.LinkLog(b, configLogName); err != nil {
		return fmt.Errorf("linking config log: %w", err)
	}
	_, err = w.opts.Records.UpdateBuild(ctx, buildKey(ev.Repo, b.Pull, b.Number), func(r *events.BuildRecord) error {
		r.SHA, r.Installation, r.Projected = ev.HeadSHA, ev.Installation, true
		r.ConfigError, r.ConfigLogURL = status.ConfigError(reason), w.logURL(b, configLogName)
		return nil
	})
	if err != nil {
		return fmt.Errorf("recording the .yci.py error: %w", err)
	}
	return nil
}

// abandonPull ends a pull event whose every attempt failed (or crashed
// the worker it reached) with an error status linking to the head's
// preparation log, rather than losing it silently. The log gets a last
// line saying so, so the link works even when no attempt wrote to it.
func (w *Worker) abandonPull(ctx context.Context, log *slog.Logger, ev events.PullEvent, a prepAttempt) error {
	inst, err := w.opts.GitHub.Installation(ctx, ev.Installation)
	if err != nil {
		return fmt.Errorf("authenticating for installation %d: %w", ev.Installation, err)
	}
	log.Error("giving up on pull event", "deliveries", a.delivered)
	url := w.appendPrepLog(log, ev, fmt.Appendf(nil, "%sgave up after %d attempts (attempts that crashed a worker or were handed back on shutdown count too; see the worker's log)\n",
		pipeline.LogPrefix, a.attempts()))
	return w.reporter(inst, log).Set(ctx, status.Status{
		Owner: ev.Repo.Owner, Repo: ev.Repo.Name, SHA: ev.HeadSHA, Pull: ev.Number, State: status.Error,
		Description: status.GaveUpPreparing(int(a.attempts())), TargetURL: url,
	})
}

// approved reports whether the policy lets ev's commit be built now, and
// otherwise sets the yci status saying approval is needed. No build is
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
	err = w.reporter(inst, log).Set(ctx, status.Status{
		Owner: ev.Repo.Owner, Repo: ev.Repo.Name, SHA: ev.HeadSHA, Pull: ev.Number,
		State: status.Pending, Description: status.ApprovalNeeded(w.opts.ApprovalLabel),
	})
	if err != nil {
		if ferr := w.opts.Queue.ForgetAsked(ctx, ev.Repo, ev.Number, ev.HeadSHA); ferr != nil {
			err = errors.Join(err, ferr)
		}
		return v, fmt.Errorf("asking for approval: %w", err)
	}
	// An approval recorded meanwhile (its event handled on another slot
	// or box) may have read the record before this request: then its
	// "approved" status would not follow this one, so it is written here.
	rec, err := w.opts.Queue.ApprovalOf(ctx, ev.Repo, ev.Number)
	if err != nil || !rec.Covers(ev.HeadSHA) {
		return v, err
	}
	return v, w.setApprovedSummary(ctx, log, inst, ev, rec.By)
}
