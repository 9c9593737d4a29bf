package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/pipeline"
	"github.com/yourci/yourci/pkg/status"
)

// prepLog records what one attempt at preparing a head commit did (the
// pull request read, the mirror updated, the checkout, .yci.py), so that
// a failed attempt can be told on the head's preparation log with its
// steps. It is kept in memory: an attempt that succeeds writes nothing.
// A nil *prepLog records nothing.
type prepLog struct {
	steps []string
	// build is the build number the attempt claimed, 0 before the claim.
	build int
	// since is when the event being prepared was queued: the mirror
	// need be no older than that (see artifacts.UpdateMirrorSince);
	// zero fetches whatever.
	since time.Time
}

// claimed records that the attempt claimed build number n.
func (p *prepLog) claimed(n int) {
	if p != nil {
		p.build = n
	}
}

// clockSlack is how far the queue's clock, which stamps when an event was
// queued, may run behind this box's before a fetch that began before the
// event passes for one that began after it. Boxes keep NTP on, which holds
// clocks within milliseconds.
const clockSlack = 250 * time.Millisecond

// mirrorSince is what p.since asks of the mirror, clockSlack included, or
// zero (fetch whatever) when p is nil or knows no time.
func (p *prepLog) mirrorSince() time.Time {
	if p == nil || p.since.IsZero() {
		return time.Time{}
	}
	return p.since.Add(clockSlack)
}

// step records one thing the attempt is about to do.
func (p *prepLog) step(format string, args ...any) {
	if p != nil {
		p.steps = append(p.steps, fmt.Sprintf(format, args...))
	}
}

// prepAttempt is one delivery of a pull event: the delivered-th of at
// most maxDeliver, the last of which gives up instead of trying.
type prepAttempt struct {
	delivered, maxDeliver uint64
	// published is when the event was queued (zero: unknown).
	published time.Time
}

// attempts is how many deliveries try to prepare the build.
func (a prepAttempt) attempts() uint64 { return max(a.maxDeliver, 2) - 1 }

// last reports whether this delivery gives up.
func (a prepAttempt) last() bool { return a.delivered >= a.maxDeliver }

// prepJournal tells what became of preparing head commits: it appends to
// each head's preparation log, its text cleaned as a test's log is, and
// records a failed attempt on the head's summary. Its methods may be
// called concurrently.
type prepJournal struct {
	logs      prepLogStore
	summaries headSummaries
	// httpRoot is Options.HTTPRoot: "" serves no log.
	httpRoot string
	// secrets are the values no log may show.
	secrets func() []string
}

// prepLogStore keeps each head's preparation log; artifacts.Workspace has
// it.
type prepLogStore interface {
	AppendPrepareLog(owner, repo string, pull int, sha, text string) error
	PrepareLogURL(httpRoot, owner, repo string, pull int, sha string) (string, error)
}

// recordFailure tells a failed attempt as planPrepFailure planned it:
// f.log appended to the head's preparation log and, when f.show is set,
// the pending "preparing failed (attempt k of N): <reason>; retrying" on
// the head's summary linking to that log, which the projector shows
// until a build of the head takes over. Neither is an error of the job:
// each is logged here and the verdict stands.
func (j *prepJournal) recordFailure(ctx context.Context, log *slog.Logger, ev events.PullEvent, f prepFailure) {
	url := j.append(log, ev, []byte(f.log))
	if !f.show {
		return
	}
	err := j.summaries.update(ctx, ev, func(h *events.HeadSummary) bool {
		return h.Set(f.build, string(status.Pending), f.description, url)
	})
	if err != nil {
		log.Warn("recording the failed preparation on the head's summary", "err", err)
	}
}

// append appends text, its secrets masked as a test's log masks them, to
// the head's preparation log, and returns the log's address, or "" when
// it is not served or could not be written.
func (j *prepJournal) append(log *slog.Logger, ev events.PullEvent, text []byte) string {
	clean, err := j.cleanLog(text)
	if err == nil {
		err = j.logs.AppendPrepareLog(ev.Repo.Owner, ev.Repo.Name, ev.Number, ev.HeadSHA, string(clean))
	}
	if err != nil {
		log.Warn("writing the preparation log", "err", err)
		return ""
	}
	if j.httpRoot == "" {
		return ""
	}
	u, err := j.logs.PrepareLogURL(j.httpRoot, ev.Repo.Owner, ev.Repo.Name, ev.Number, ev.HeadSHA)
	if err != nil {
		return ""
	}
	return u
}

// mask is cleanLog for text: the worker's secrets replaced and terminal
// controls neutralised, as a test's log keeps them.
// Everything an evaluation or a test reports is masked so before any log
// or status shows it.
func (j *prepJournal) mask(text string) (string, error) {
	clean, err := j.cleanLog([]byte(text))
	return string(clean), err
}

// runnerSecrets are the values no log may show: r's, which include the
// installations' tokens.
func runnerSecrets(r *pipeline.Runner) func() []string {
	return func() []string {
		s := r.Secrets
		if r.SecretsFrom != nil {
			s = append(s[:len(s):len(s)], r.SecretsFrom()...)
		}
		return s
	}
}

// cleanLog is text as a test's log would keep it: terminal control
// sequences other than colours neutralised, then secrets masked.
func (j *prepJournal) cleanLog(text []byte) ([]byte, error) {
	var clean bytes.Buffer
	mw := pipeline.NewMaskingWriter(&clean, j.secrets())
	tw := pipeline.NewTermWriter(mw)
	if _, err := tw.Write(text); err != nil {
		return nil, fmt.Errorf("cleaning log text: %w", err)
	}
	if err := errors.Join(tw.Flush(), mw.Close()); err != nil {
		return nil, fmt.Errorf("cleaning log text: %w", err)
	}
	return clean.Bytes(), nil
}
