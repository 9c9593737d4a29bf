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
// other way round (schedule.conflicts). So the head's summary can never
// land on GitHub after its build's, and a word that comes late (a
// delivery handled after the build began) is kept from GitHub by the
// record itself (events.HeadSummary.Set).

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

// showHead writes what head k's summary owes GitHub, as show does for a
// build, and keeps what it showed in the summary's record.
func (w *writer) showHead(ctx context.Context, k events.HeadKey) outcome {
	t := target{head: k}
	log := w.log.With("repo", k.Repo.FullName(), "pull", k.Pull, "sha", k.SHA)
	h, err := w.records.HeadSummary(ctx, k)
	if errors.Is(err, events.ErrNoHeadSummary) {
		return outcome{}
	}
	if err != nil {
		log.Warn("reading head summary to show it", "err", err)
		return outcome{failed: err}
	}
	if seen := w.seen.seenRevision(t); h.Revision < seen {
		return outcome{again: time.Now().Add(staleReadWait)}
	}
	if !headOwes(h) {
		return outcome{done: true}
	}
	st := headState(h)
	now := time.Now()
	if write, at := next(st, shownOrZero(h.Shown), h.Shown != nil, now, w.pacing); !write {
		return outcome{again: at}
	}
	if !w.leader.Leading() {
		return outcome{again: time.Now()}
	}
	client, err := w.clients.Client(ctx, h.Installation)
	if err != nil {
		log.Warn("authenticating to show a head", "installation", h.Installation, "err", err)
		return outcome{failed: err}
	}
	if err := w.setOnce(ctx, log, w.reporter(client), st); err != nil {
		w.metrics.Failures.Inc()
		log.Warn("showing head summary on GitHub; retrying from its latest record", "err", err)
		return outcome{failed: err}
	}
	shown := events.Shown{Mark: st.Mark, At: now.UTC()}
	_, err = w.records.UpdateHeadSummary(ctx, k, func(h *events.HeadSummary) error {
		h.Shown = &shown
		return nil
	})
	if err != nil {
		log.Warn("recording what was shown on GitHub", "err", err)
	}
	return outcome{done: true}
}

// takeOver hands rec's head over to its build before the build's summary
// is first written: what the head's own summary still owes is written
// first when it is due (a paced one that is not yet due is overtaken and
// never sent), then the head's record notes the build, so that nothing
// about an earlier stage is shown after it. A head with no summary gets a
// record of the hand-over all the same: a word about it that comes later
// (a delivery handled late) is then refused by the record.
func (w *writer) takeOver(ctx context.Context, log *slog.Logger, rep *status.Reporter, rec events.BuildRecord) error {
	k := events.HeadKey{Repo: rec.Key.Repo, Pull: rec.Key.Pull, SHA: rec.SHA}
	if k.Validate() != nil {
		return nil // no worker records a summary for such a head
	}
	h, err := w.records.HeadSummary(ctx, k)
	if err != nil && !errors.Is(err, events.ErrNoHeadSummary) {
		return err
	}
	if err == nil && h.TakenBy >= rec.Key.Build {
		return nil
	}
	var shown *events.Shown
	if headOwes(h) {
		st, now := headState(h), time.Now()
		if write, _ := next(st, shownOrZero(h.Shown), h.Shown != nil, now, w.pacing); write {
			if err := w.setOnce(ctx, log, rep, st); err != nil {
				return err
			}
			shown = &events.Shown{Mark: st.Mark, At: now.UTC()}
		}
	}
	_, err = w.records.UpdateHeadSummary(ctx, k, func(h *events.HeadSummary) error {
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

func shownOrZero(s *events.Shown) events.Shown {
	if s == nil {
		return events.Shown{}
	}
	return *s
}
