package projector

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"time"

	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/status"
)

// show writes what k's latest record owes GitHub, in the record's order,
// summary last, and keeps what it showed in the record. It returns when
// k is owed another look: a held state's time, a paced summary's, or a
// retryAfter is when t is tried again after a write failed with err: its
// backoff, and no sooner than GitHub asked (status.RetryLaterError).
func (p *Projector) retryAfter(t target, err error) time.Time {
	var later *status.RetryLaterError
	after := time.Duration(0)
	if errors.As(err, &later) {
		after = later.After
	}
	return p.backoff(t, after)
}

// backoff after a failed write (the retry reads the record again, so it
// shows the latest state, never a stale one). A zero time means nothing
// is owed.
func (p *Projector) show(ctx context.Context, k events.BuildKey) time.Time {
	log := p.log.With("repo", k.Repo.FullName(), "pull", k.Pull, "build", k.Build)
	rec, err := p.opts.Records.BuildRecord(ctx, k)
	if errors.Is(err, events.ErrNoRecord) || (err == nil && !rec.Projected) {
		return time.Time{}
	}
	if err != nil {
		log.Warn("reading build record to show it", "err", err)
		return p.backoff(target{build: k}, 0)
	}
	if seen := p.seenRevision(target{build: k}); rec.Revision < seen {
		// A replica that lags answered: what it shows is already past.
		log.Debug("read a build record older than the watch delivered; reading again", "read", rec.Revision, "seen", seen)
		return time.Now().Add(staleReadWait)
	}
	client, err := p.opts.Clients.Client(ctx, rec.Installation)
	if err != nil {
		log.Warn("authenticating to show a build", "installation", rec.Installation, "err", err)
		return p.backoff(target{build: k}, 0)
	}
	rep := p.reporter(client)
	shown := map[string]events.Shown{}
	var later time.Time
	var failed error
	for _, st := range Project(rec, p.pageURL(k)) {
		prev, ok := rec.Shown[st.Part]
		now := time.Now()
		write, at := next(st, prev, ok, now, p.opts.Pacing)
		later = earliest(later, at)
		if !write {
			continue
		}
		if !p.Leading() {
			failed = errNotLeading
			break
		}
		if _, was := rec.Shown[SummaryPart]; st.Part == SummaryPart && !was {
			// The build's summary replaces the head's own from now on.
			if err := p.takeOver(ctx, log, rep, rec); err != nil {
				failed = err
				break
			}
		}
		err := rep.Set(ctx, st.Status)
		if err != nil && !errors.Is(err, status.ErrRejected) && !errors.Is(err, status.ErrInvalid) {
			failed = err
			break
		}
		if err != nil {
			// GitHub refuses it for good: trying again cannot help.
			log.Error("GitHub refused a state; it is not tried again", "test", st.Part, "err", err)
		} else {
			p.count()
		}
		shown[st.Part] = events.Shown{Mark: st.Mark, At: now.UTC()}
	}
	if len(shown) > 0 {
		p.keepShown(ctx, log, k, shown)
	}
	if failed != nil {
		if errors.Is(failed, errNotLeading) {
			// Still owed: the build is written when this projector
			// leads again (setLeading makes it due), or by the new
			// holder, which looks at every record it is shown.
			return time.Now()
		}
		p.opts.Metrics.Failures.Inc()
		log.Warn("showing build on GitHub; retrying from its latest record", "err", failed)
		return p.retryAfter(target{build: k}, failed)
	}
	p.mu.Lock()
	delete(p.fails, target{build: k})
	p.mu.Unlock()
	return later
}

// staleReadWait is how soon a build read from a lagging replica is read
// again: replicas catch up within milliseconds once a leader is elected.
const staleReadWait = 50 * time.Millisecond

// seenRevision is the latest revision of k the watch delivered, 0 when
// none is known.
func (p *Projector) seenRevision(k target) uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.seen[k]
}

// reporter writes through client's check runs when it has them (a GitHub
// App), else through commit statuses: the one place that decides. Each
// write is tried once; the Projector retries from the record.
func (p *Projector) reporter(c Client) *status.Reporter {
	opts := append([]status.Option{status.WithLogger(p.log), status.WithMaxAttempts(1),
		status.WithBackoff(p.opts.FirstBackoff, p.opts.MaxBackoff)}, p.opts.StatusOptions...)
	if c.Checks != nil {
		return status.NewReporterFor(status.CheckRunWriter{Client: c.Checks, IDs: p.ids}, opts...)
	}
	return status.NewReporter(c.Statuses, opts...)
}

// keepShown records in k's record what was just shown. A failure is
// logged: the parts are shown again, which GitHub takes as the same.
func (p *Projector) keepShown(ctx context.Context, log *slog.Logger, k events.BuildKey, shown map[string]events.Shown) {
	_, err := p.opts.Records.UpdateBuild(ctx, k, func(r *events.BuildRecord) error {
		if r.Shown == nil {
			r.Shown = map[string]events.Shown{}
		}
		maps.Copy(r.Shown, shown)
		return nil
	})
	if err != nil {
		log.Warn("recording what was shown on GitHub", "err", err)
	}
}

// backoff counts a failed look at k and returns when to look again:
// doubling from FirstBackoff to MaxBackoff, and no sooner than after,
// GitHub's own word on when to come back.
func (p *Projector) backoff(k target, after time.Duration) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fails[k]++
	wait := p.opts.FirstBackoff
	for i := 1; i < p.fails[k] && wait < p.opts.MaxBackoff; i++ {
		wait *= 2
	}
	wait = max(min(wait, p.opts.MaxBackoff), after)
	return time.Now().Add(wait)
}

func (p *Projector) count() {
	p.opts.Metrics.Writes.Inc()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.writes++
}

// earliest is the earlier of two times, a zero one counting as none.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}
