package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/yourci/yourci/pkg/artifacts"
	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/pages"
	"github.com/yourci/yourci/pkg/pipeline"
	"github.com/yourci/yourci/pkg/status"
)

// This file keeps each build's record up to date: the worker calls it at
// every change of a test's state. The record is the one truth; a projector
// (pkg/projector) shows it on GitHub, the `yci` summary included.

// BuildRecords keeps one record per build, shared by every box;
// events.Records has it.
type BuildRecords interface {
	UpdateBuild(ctx context.Context, k events.BuildKey, change func(*events.BuildRecord) error) (events.BuildRecord, error)
	BuildRecord(ctx context.Context, k events.BuildKey) (events.BuildRecord, error)
	RecentBuilds(ctx context.Context, repo events.Repo, n int) ([]events.BuildRecord, error)
	SetPullClosed(ctx context.Context, repo events.Repo, pull int, closed bool) (int, error)
	UpdateHeadSummary(ctx context.Context, k events.HeadKey, change func(*events.HeadSummary) error) (events.HeadSummary, error)
}

// recentBuilds is how many of a repository's latest builds its page is
// made from: enough to show every open pull request of a busy repository
// and which tests needed retries lately.
const recentBuilds = 100

func buildKey(repo events.Repo, pull, number int) events.BuildKey {
	return events.BuildKey{Repo: repo, Pull: pull, Build: number}
}

// recordQueued records build b's tests as queued, before any is
// published, so that the summary counts every test from the start. A
// build resumed after a crash keeps the states its tests have reached.
func (h *pullHandler) recordQueued(ctx context.Context, log *slog.Logger, pull pullRequest, b artifacts.Build, ev events.PullEvent, tests []pipeline.Test, changes *events.Changes) {
	pr := pull.pr
	_, err := h.records.UpdateBuild(ctx, buildKey(ev.Repo, b.Pull, b.Number),
		func(r *events.BuildRecord) error {
			r.SHA, r.Title, r.Branch = ev.HeadSHA, pr.GetTitle(), pr.GetHead().GetRef()
			r.Changes = changes
			r.PullURL = pr.GetHTMLURL()
			r.Installation, r.Projected = ev.Installation, true
			for _, t := range tests {
				tr := r.AddTest(t.Name)
				tr.MaxAttempts = t.Retries + 1
				tr.Command = events.RecordedCommand(t.Command)
				if tr.LogURL == "" {
					tr.LogURL = h.logURL(b, t.Name)
				}
				if len(tr.Attempts) == 0 {
					tr.Description = status.Queued()
				}
			}
			return nil
		})
	if err != nil {
		log.Warn("recording queued build", "err", err)
	}
}

// track records that job's test reached state, with st what GitHub is to
// show of it and res the attempt's result when an attempt ended; the
// projector and the pages follow the record. Failures are logged, not
// returned: the next change of the test repairs a state that is not final
// (final states go through recordFinal).
func (r *testRecorder) track(ctx context.Context, job events.TestJob, state events.TestState, st status.Status, res *pipeline.Result) {
	if err := r.changeTest(ctx, job, state, st, res); err != nil {
		r.log.With(job.LogAttrs()...).Warn("recording test state", "state", state, "err", err)
	}
}

// changeTest is track's record change, its error returned.
func (r *testRecorder) changeTest(ctx context.Context, job events.TestJob, state events.TestState, st status.Status, res *pipeline.Result) error {
	return r.trackChange(ctx, job, func(t *events.TestRecord, now time.Time) {
		applyChange(t, job.Rerun, job.Attempt, state, st, res, now)
	})
}

// recordFinal records the final state of job's test. No later change
// would repair a final state lost to a failed record write, so then the
// state is queued as a job of its own (job.Outcome), recorded when it is
// handled, without running the test again; only if that fails too is the
// error returned, and the attempt handed back.
func (r *testRecorder) recordFinal(ctx context.Context, job events.TestJob, st status.Status, res *pipeline.Result) error {
	err := r.changeTest(ctx, job, finalState(st.State), st, res)
	if err == nil || ctx.Err() != nil {
		return err
	}
	owed := job
	owed.Outcome = &events.Outcome{State: string(st.State), Description: st.Description}
	owed.NotBefore = time.Now().Add(handBackDelay(err, 1)).UTC()
	owed.Requeues = 0
	if perr := r.publish.PublishTest(ctx, owed); perr != nil {
		return fmt.Errorf("recording final state (%w), and queuing it for later: %w", err, perr)
	}
	r.log.With(job.LogAttrs()...).Warn("final state queued to be recorded later", "err", err, "state", st.State)
	return nil
}

// trackSuperseded records, as track does, that job's test ended because
// newSHA was pushed to its pull request (dropped before it ran, or
// stopped), with st its status as just set.
func (r *testRecorder) trackSuperseded(ctx context.Context, job events.TestJob, newSHA string, st status.Status) {
	err := r.trackChange(ctx, job, func(t *events.TestRecord, now time.Time) {
		if applyChange(t, job.Rerun, job.Attempt, events.TestSuperseded, st, nil, now) {
			t.SupersededBy = newSHA
		}
	})
	if err != nil {
		r.log.With(job.LogAttrs()...).Warn("recording test state", "state", events.TestSuperseded, "err", err)
	}
}

// trackChange applies change to job's test in its build record.
func (r *testRecorder) trackChange(ctx context.Context, job events.TestJob, change func(*events.TestRecord, time.Time)) error {
	now := time.Now().UTC()
	_, err := r.records.UpdateBuild(ctx, buildKey(job.Repo, job.Number, job.Build), func(b *events.BuildRecord) error {
		if b.SHA == "" {
			b.SHA, b.Installation, b.Projected = job.HeadSHA, job.Installation, true
		}
		t := b.AddTest(job.Test.Name)
		t.MaxAttempts = job.Test.Retries + 1
		change(t, now)
		return nil
	})
	if err != nil {
		return fmt.Errorf("recording test %s of build %d: %w", job.Test.Name, job.Build, err)
	}
	return nil
}

// applyChange moves t to state for attempt number attempt of re-run rerun
// (0 for the build's own run), and reports whether it did: a word about an
// attempt older than t's latest arrives late and changes nothing. It
// clears SupersededBy, which only the superseding change sets.
func applyChange(t *events.TestRecord, rerun, attempt int, state events.TestState, st status.Status, res *pipeline.Result, now time.Time) bool {
	if latest := t.Latest(); latest != nil && (events.AttemptRecord{Rerun: rerun, Number: attempt}).Before(latest.Rerun, latest.Number) {
		return false
	}
	t.State, t.Description, t.Updated, t.SupersededBy = state, st.Description, now, ""
	t.Conclusion, t.Report, t.Rerun = string(st.Conclusion), reportOf(st.Output), rerun
	if st.TargetURL != "" {
		t.LogURL = st.TargetURL
	}
	var a *events.AttemptRecord
	if latest := t.Latest(); latest != nil && latest.Rerun == rerun && latest.Number == attempt {
		a = latest
	}
	switch {
	case state == events.TestRunning:
		// A new attempt, or the same one delivered again after a crash.
		if a == nil {
			t.Attempts = append(t.Attempts, events.AttemptRecord{Rerun: rerun, Number: attempt})
			a = t.Latest()
		}
		*a = events.AttemptRecord{Rerun: rerun, Number: attempt, Start: now}
	case res != nil:
		if a == nil {
			t.Attempts = append(t.Attempts, events.AttemptRecord{Rerun: rerun, Number: attempt, Start: now.Add(-res.Duration)})
			a = t.Latest()
		}
		a.Duration, a.Outcome = res.Duration, res.Outcome.String()
	case a != nil && a.Outcome == "":
		// The attempt ended without a result: stopped, handed back or lost.
		a.Duration, a.Outcome = now.Sub(a.Start), "stopped"
	}
	// A pass that took a retry or a re-run is flaky: the same commit failed.
	t.Flaky = state == events.TestPassed && (attempt > 1 || rerun > 0)
	return true
}

// reportOf is what a record keeps of a check run's output: its summary,
// and at most events.MaxReportText of its text's end (a log's tail, whose
// end says most).
func reportOf(o *status.Output) *events.Report {
	if o == nil {
		return nil
	}
	text := o.Text
	if len(text) > events.MaxReportText {
		text = strings.ToValidUTF8(text[len(text)-events.MaxReportText:], "")
	}
	return &events.Report{Summary: o.Summary, Text: text}
}

// PullClosed marks the build records of a pull request that closed, so
// that pages list it as closed; every box may call it for the same pull.
// Failures are logged: the next sweep marks what this missed.
func (w *Worker) PullClosed(ctx context.Context, a events.HeadAnnouncement) {
	if !a.Closed {
		return
	}
	n, err := w.opts.Records.SetPullClosed(ctx, a.Repo, a.Number, true)
	if err != nil {
		w.log.Warn("marking builds of a closed pull request", "repo", a.Repo.FullName(), "pull", a.Number, "err", err)
		return
	}
	if n > 0 {
		w.log.Info("builds of a closed pull request marked", "repo", a.Repo.FullName(), "pull", a.Number, "builds", n)
	}
}

// pageURL is where the build's page is served, or "" when this box serves
// none.
func (w *Worker) pageURL(k events.BuildKey) string {
	return pages.URL(w.opts.HTTPRoot, k)
}

// pullOpen clears the closed mark of an open pull request's build records:
// a pull reopened without a new commit builds nothing, yet belongs on the
// pages again. Failures are logged: the next sweep repairs the mark.
func (h *pullHandler) pullOpen(ctx context.Context, log *slog.Logger, repo events.Repo, number int) {
	if _, err := h.records.SetPullClosed(ctx, repo, number, false); err != nil {
		log.Warn("marking builds of a reopened pull request", "err", err)
	}
}

// finalState is the record's state for a final status state.
func finalState(s status.State) events.TestState {
	switch s {
	case status.Success:
		return events.TestPassed
	case status.Failure:
		return events.TestFailed
	}
	return events.TestErrored
}

// headSummaries changes the summaries of head commits, which the
// projector shows as their `yci` until a build takes over
// (events.HeadSummary).
type headSummaries struct {
	records headSummaryUpdater
}

// headSummaryUpdater changes one head's summary; BuildRecords has it.
type headSummaryUpdater interface {
	UpdateHeadSummary(ctx context.Context, k events.HeadKey, change func(*events.HeadSummary) error) (events.HeadSummary, error)
}

// update changes the summary of ev's head commit. change reports whether
// it changed anything; nothing is written when it did not.
func (s headSummaries) update(ctx context.Context, ev events.PullEvent, change func(*events.HeadSummary) bool) error {
	k := events.HeadKey{Repo: ev.Repo, Pull: ev.Number, SHA: ev.HeadSHA}
	_, err := s.records.UpdateHeadSummary(ctx, k, func(h *events.HeadSummary) error {
		if !change(h) {
			return events.ErrUnchanged
		}
		h.Installation = ev.Installation
		return nil
	})
	if errors.Is(err, events.ErrUnchanged) {
		return nil
	}
	return err
}
