package worker

import (
	"context"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-github/v88/github"

	"github.com/yourci/yourci/pkg/artifacts"
	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/pages"
	"github.com/yourci/yourci/pkg/pipeline"
	"github.com/yourci/yourci/pkg/status"
)

// This file keeps each build's record and the `yci` summary status of its
// head up to date: the worker calls it at every change of a
// test's state, after the test's own status is set.

// BuildRecords keeps one record per build, shared by every box;
// events.Records has it.
type BuildRecords interface {
	UpdateBuild(ctx context.Context, k events.BuildKey, change func(*events.BuildRecord) error) (events.BuildRecord, error)
	BuildRecord(ctx context.Context, k events.BuildKey) (events.BuildRecord, error)
	RecentBuilds(ctx context.Context, repo events.Repo, n int) ([]events.BuildRecord, error)
	SetPullClosed(ctx context.Context, repo events.Repo, pull int, closed bool) (int, error)
}

// recentBuilds is how many of a repository's latest builds its page is
// made from: enough to show every open pull request of a busy repository
// and which tests needed retries lately.
const recentBuilds = 100

// summaryRounds bounds how often one change re-sends the summary because
// the record moved on while it was being sent.
const summaryRounds = 3

// bookkeeper remembers, per build, the summary this worker last sent, so
// that an unchanged summary is not sent again. Entries go when the build's
// summary is final.
type bookkeeper struct {
	mu    sync.Mutex
	books map[events.BuildKey]*book
}

type book struct {
	mu    sync.Mutex // held while the build's summary is sent
	users int        // goroutines holding or waiting for mu
	sent  string     // summary state and description sent last
}

// lock returns the build's book, locked; release unlocks it.
func (k *bookkeeper) lock(key events.BuildKey) *book {
	k.mu.Lock()
	if k.books == nil {
		k.books = map[events.BuildKey]*book{}
	}
	b := k.books[key]
	if b == nil {
		b = &book{}
		k.books[key] = b
	}
	b.users++
	k.mu.Unlock()
	b.mu.Lock()
	return b
}

// release unlocks b; forget drops it once nobody else uses it.
func (k *bookkeeper) release(key events.BuildKey, b *book, forget bool) {
	b.mu.Unlock()
	k.mu.Lock()
	defer k.mu.Unlock()
	b.users--
	if forget && b.users == 0 {
		delete(k.books, key)
	}
}

func buildKey(repo events.Repo, pull, number int) events.BuildKey {
	return events.BuildKey{Repo: repo, Pull: pull, Build: number}
}

// recordQueued records a build's tests as queued, before any is published,
// so that the summary counts every test from the start. A build resumed
// after a crash keeps the states its tests have reached.
func (w *Worker) recordQueued(ctx context.Context, log *slog.Logger, rep *status.Reporter, pr *github.PullRequest, b artifacts.Build, sha string, installation int64, tests []pipeline.Test) {
	if w.opts.Records == nil {
		return
	}
	rec, err := w.opts.Records.UpdateBuild(ctx, buildKey(events.Repo{Owner: b.Owner, Name: b.Repo}, b.Pull, b.Number),
		func(r *events.BuildRecord) error {
			r.SHA, r.Title, r.Branch = sha, pr.GetTitle(), pr.GetHead().GetRef()
			r.PullURL = pr.GetHTMLURL()
			r.Installation, r.Projected = installation, w.opts.Projected
			for _, t := range tests {
				tr := r.AddTest(t.Name)
				tr.MaxAttempts = t.Retries + 1
				if tr.LogURL == "" {
					tr.LogURL = w.logURL(b, t.Name)
				}
				if len(tr.Attempts) == 0 {
					tr.Description = status.Queued()
				}
			}
			return nil
		})
	if err != nil {
		log.Warn("recording queued build", "err", err)
		return
	}
	w.publishBuild(ctx, log, rep, rec)
}

// track records that job's test reached state, with st its status as just
// set and res the attempt's result when an attempt ended; then it updates
// the build's pages and summary. Failures are logged, not returned: the
// test's own status is already set, and the next change repairs the rest.
func (w *Worker) track(ctx context.Context, rep *status.Reporter, job events.TestJob, state events.TestState, st status.Status, res *pipeline.Result) {
	w.trackChange(ctx, rep, job, state, func(t *events.TestRecord, now time.Time) {
		applyChange(t, job.Rerun, job.Attempt, state, st, res, now)
	})
}

// trackSuperseded records, as track does, that job's test ended because
// newSHA was pushed to its pull request (dropped before it ran, or
// stopped), with st its status as just set.
func (w *Worker) trackSuperseded(ctx context.Context, rep *status.Reporter, job events.TestJob, newSHA string, st status.Status) {
	w.trackChange(ctx, rep, job, events.TestSuperseded, func(t *events.TestRecord, now time.Time) {
		if applyChange(t, job.Rerun, job.Attempt, events.TestSuperseded, st, nil, now) {
			t.SupersededBy = newSHA
		}
	})
}

// trackChange applies change to job's test in its build record, then
// brings the build's summary in line.
func (w *Worker) trackChange(ctx context.Context, rep *status.Reporter, job events.TestJob, state events.TestState, change func(*events.TestRecord, time.Time)) {
	if w.opts.Records == nil {
		return
	}
	log := w.log.With(job.LogAttrs()...)
	now := time.Now().UTC()
	rec, err := w.opts.Records.UpdateBuild(ctx, buildKey(job.Repo, job.Number, job.Build), func(r *events.BuildRecord) error {
		if r.SHA == "" {
			r.SHA, r.Installation, r.Projected = job.HeadSHA, job.Installation, w.opts.Projected
		}
		t := r.AddTest(job.Test.Name)
		t.MaxAttempts = job.Test.Retries + 1
		change(t, now)
		return nil
	})
	if err != nil {
		log.Warn("recording test state", "state", state, "err", err)
		return
	}
	w.publishBuild(ctx, log, rep, rec)
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

// publishBuild brings the summary status of rec's head in line with rec,
// unless a projector shows the records.
// One build's summary is sent by one goroutine of this worker at a time.
// (The pages follow the record by themselves: see PageKeeper.)
func (w *Worker) publishBuild(ctx context.Context, log *slog.Logger, rep *status.Reporter, rec events.BuildRecord) {
	if w.opts.Projected {
		return // the projector shows the summary from the record
	}
	bk := w.books.lock(rec.Key)
	done := false
	defer func() { w.books.release(rec.Key, bk, done) }()
	done = w.sendSummary(ctx, log, rep, bk, rec) && pages.Summarize(rec).State != pages.Pending
}

// PullClosed marks the build records of a pull request that closed, so
// that pages list it as closed; every box may call it for the same pull.
// Failures are logged: the next sweep marks what this missed.
func (w *Worker) PullClosed(ctx context.Context, a events.HeadAnnouncement) {
	if w.opts.Records == nil || !a.Closed {
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

// sendSummary sets the `yci` status of rec's head from the record, unless
// this worker already sent the same. After each send it reads the record
// again: another box may have changed it meanwhile and sent its summary
// first, and the last sender must leave GitHub showing the latest. It
// reports whether GitHub has the summary of the latest record it read.
func (w *Worker) sendSummary(ctx context.Context, log *slog.Logger, rep *status.Reporter, bk *book, rec events.BuildRecord) bool {
	for range summaryRounds {
		sum := pages.Summarize(rec)
		if bk.sent == sum.State+" "+sum.Description {
			return true
		}
		err := rep.Set(ctx, w.summaryStatus(rec))
		if err != nil {
			log.Warn("setting summary status", "err", err)
			return false
		}
		bk.sent = sum.State + " " + sum.Description
		if rec, err = w.opts.Records.BuildRecord(ctx, rec.Key); err != nil {
			log.Warn("reading build record after setting the summary", "err", err)
			return false
		}
	}
	return false
}

// summaryStatus is the summary `yci` of rec's head. Sent late (a Budget
// paces summaries), it is made again from the record as it stands then,
// so that it never shows an older state than another box already sent.
func (w *Worker) summaryStatus(rec events.BuildRecord) status.Status {
	sum := pages.Summarize(rec)
	key := rec.Key
	return status.Status{
		Owner: key.Repo.Owner, Repo: key.Repo.Name, SHA: rec.SHA, Pull: key.Pull, Build: key.Build,
		State: status.State(sum.State), Description: sum.Description, TargetURL: w.pageURL(key),
		Conclusion: summaryConclusion(sum),
		Latest: func(ctx context.Context) (status.Status, error) {
			now, err := w.opts.Records.BuildRecord(ctx, key)
			if err != nil {
				return status.Status{}, err
			}
			s := w.summaryStatus(now)
			s.Latest = nil
			return s, nil
		},
	}
}

// summaryConclusion is how the summary concludes as a check run: a build
// a newer push superseded is cancelled, not failed. A commit status keeps
// the Error state, the closest GitHub has for "not judged": a status has
// no cancelled, and success would say the commit passed.
func summaryConclusion(sum pages.Summary) status.Conclusion {
	if sum.Cancelled {
		return status.ConclusionCancelled
	}
	return ""
}

// pageURL is where the build's page is served, or "" when this box serves
// none.
func (w *Worker) pageURL(k events.BuildKey) string {
	if w.opts.HTTPRoot == "" {
		return ""
	}
	segments := []string{k.Repo.Owner, k.Repo.Name, "pulls", strconv.Itoa(k.Pull), strconv.Itoa(k.Build), "index.html"}
	for i, s := range segments {
		segments[i] = url.PathEscape(s)
	}
	return strings.TrimRight(w.opts.HTTPRoot, "/") + "/" + strings.Join(segments, "/")
}

// pullOpen clears the closed mark of an open pull request's build records:
// a pull reopened without a new commit builds nothing, yet belongs on the
// pages again. Failures are logged: the next sweep repairs the mark.
func (w *Worker) pullOpen(ctx context.Context, log *slog.Logger, repo events.Repo, number int) {
	if w.opts.Records == nil {
		return
	}
	if _, err := w.opts.Records.SetPullClosed(ctx, repo, number, false); err != nil {
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
