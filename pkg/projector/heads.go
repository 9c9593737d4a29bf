package projector

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/status"
)

// A head commit's `yci` before its build (events.HeadSummary: approval
// needed, approved, preparing failed, gave up) is shown from its record
// like a build's summary, with the same pacing, retries and marks, until
// a build of the head takes over. The hand-over is decided here alone:
// before the projector first writes a build's summary it writes what the
// head's summary still owes (when it is due), then records the build as
// having taken over, and only then writes the build's summary; a head's
// summary is never written while a build of its pull request is, nor the
// other way round (target.conflicts). So the head's summary can never
// land on GitHub after its build's, and a word that comes late (a
// delivery handled after the build began) is kept from GitHub by the
// record itself (events.HeadSummary.Set).

// target is one thing the projector shows: a build's record, or (head
// set) a head commit's summary before its build.
type target struct {
	build events.BuildKey
	head  events.HeadKey
}

func (t target) isHead() bool { return t.head.SHA != "" }

// pull is t's repository and pull request.
func (t target) pull() (events.Repo, int) {
	if t.isHead() {
		return t.head.Repo, t.head.Pull
	}
	return t.build.Repo, t.build.Pull
}

// conflicts reports whether t must wait for a target being written: a
// head summary waits for every build of its pull request and a build for
// every head summary of it (builds among themselves do not wait). p.mu
// is held.
func (p *Projector) conflicts(t target) bool {
	repo, pull := t.pull()
	for b := range p.busy {
		if r, n := b.pull(); b.isHead() != t.isHead() && r == repo && n == pull {
			return true
		}
	}
	return false
}

// lookAt writes what t owes GitHub and returns when it is owed another
// look (see show).
func (p *Projector) lookAt(ctx context.Context, t target) time.Time {
	if t.isHead() {
		return p.showHead(ctx, t.head)
	}
	return p.show(ctx, t.build)
}

// headState is what GitHub should show for h, as the summary `yci` of its
// head. A check run (App auth) is one per head for every state before the
// build (build 0 in its external_id); the build's summary is its own.
func headState(h events.HeadSummary) State {
	st := status.Status{Owner: h.Repo.Owner, Repo: h.Repo.Name, SHA: h.SHA, Pull: h.Pull,
		State: status.State(h.State), Description: h.Description, TargetURL: h.TargetURL, New: h.Shown == nil}
	return State{Part: SummaryPart, Status: st, Since: h.Updated, Mark: h.State + "|" + h.Description + "|" + h.TargetURL}
}

// headOwes reports whether h has something GitHub does not show yet.
func headOwes(h events.HeadSummary) bool {
	return h.Visible() && (h.Shown == nil || h.Shown.Mark != headState(h).Mark)
}

// observeHead notes a head summary's change, as observe does a build's.
func (p *Projector) observeHead(h events.HeadSummary) {
	p.note(target{head: h.Key()}, h.Revision, headOwes(h))
}

// showHead writes what head k's summary owes GitHub, as show does for a
// build, and keeps what it showed in the summary's record.
func (p *Projector) showHead(ctx context.Context, k events.HeadKey) time.Time {
	t := target{head: k}
	log := p.log.With("repo", k.Repo.FullName(), "pull", k.Pull, "sha", k.SHA)
	h, err := p.opts.Records.HeadSummary(ctx, k)
	if errors.Is(err, events.ErrNoHeadSummary) {
		return time.Time{}
	}
	if err != nil {
		log.Warn("reading head summary to show it", "err", err)
		return p.backoff(t, 0)
	}
	if seen := p.seenRevision(t); h.Revision < seen {
		return time.Now().Add(staleReadWait)
	}
	if !headOwes(h) {
		p.clearFails(t)
		return time.Time{}
	}
	st := headState(h)
	now := time.Now()
	if write, at := next(st, shownOrZero(h.Shown), h.Shown != nil, now, p.opts.Pacing); !write {
		return at
	}
	if !p.Leading() {
		return time.Now()
	}
	client, err := p.opts.Clients.Client(ctx, h.Installation)
	if err != nil {
		log.Warn("authenticating to show a head", "installation", h.Installation, "err", err)
		return p.backoff(t, 0)
	}
	if err := p.setOnce(ctx, log, p.reporter(client), st); err != nil {
		p.opts.Metrics.Failures.Inc()
		log.Warn("showing head summary on GitHub; retrying from its latest record", "err", err)
		return p.retryAfter(t, err)
	}
	shown := events.Shown{Mark: st.Mark, At: now.UTC()}
	_, err = p.opts.Records.UpdateHeadSummary(ctx, k, func(h *events.HeadSummary) error {
		h.Shown = &shown
		return nil
	})
	if err != nil {
		log.Warn("recording what was shown on GitHub", "err", err)
	}
	p.clearFails(t)
	return time.Time{}
}

// setOnce writes st through rep; a state GitHub refuses for good is
// logged and counts as shown, since trying again cannot help.
func (p *Projector) setOnce(ctx context.Context, log *slog.Logger, rep *status.Reporter, st State) error {
	err := rep.Set(ctx, st.Status)
	switch {
	case err == nil:
		p.count()
	case errors.Is(err, status.ErrRejected), errors.Is(err, status.ErrInvalid):
		log.Error("GitHub refused a state; it is not tried again", "test", st.Part, "err", err)
	default:
		return err
	}
	return nil
}

// takeOver hands rec's head over to its build before the build's summary
// is first written: what the head's own summary still owes is written
// first when it is due (a paced one that is not yet due is overtaken and
// never sent), then the head's record notes the build, so that nothing
// about an earlier stage is shown after it. A head with no summary gets a
// record of the hand-over all the same: a word about it that comes later
// (a delivery handled late) is then refused by the record.
func (p *Projector) takeOver(ctx context.Context, log *slog.Logger, rep *status.Reporter, rec events.BuildRecord) error {
	k := events.HeadKey{Repo: rec.Key.Repo, Pull: rec.Key.Pull, SHA: rec.SHA}
	if k.Validate() != nil {
		return nil // no worker records a summary for such a head
	}
	h, err := p.opts.Records.HeadSummary(ctx, k)
	if err != nil && !errors.Is(err, events.ErrNoHeadSummary) {
		return err
	}
	if err == nil && h.TakenBy >= rec.Key.Build {
		return nil
	}
	var shown *events.Shown
	if headOwes(h) {
		st, now := headState(h), time.Now()
		if write, _ := next(st, shownOrZero(h.Shown), h.Shown != nil, now, p.opts.Pacing); write {
			if err := p.setOnce(ctx, log, rep, st); err != nil {
				return err
			}
			shown = &events.Shown{Mark: st.Mark, At: now.UTC()}
		}
	}
	_, err = p.opts.Records.UpdateHeadSummary(ctx, k, func(h *events.HeadSummary) error {
		changed := h.TakeOver(rec.Key.Build)
		if shown != nil {
			h.Shown, changed = shown, true
		}
		if !changed {
			return events.ErrUnchanged
		}
		return nil
	})
	if err != nil && !errors.Is(err, events.ErrUnchanged) {
		return err
	}
	return nil
}

// clearFails forgets t's failed writes.
func (p *Projector) clearFails(t target) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.fails, t)
}

func shownOrZero(s *events.Shown) events.Shown {
	if s == nil {
		return events.Shown{}
	}
	return *s
}
