package projector

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"sync/atomic"
	"time"

	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/pages"
	"github.com/yourci/yourci/pkg/status"
)

// writerRecords is what a writer needs of the record store.
type writerRecords interface {
	BuildRecord(ctx context.Context, k events.BuildKey) (events.BuildRecord, error)
	UpdateBuild(ctx context.Context, k events.BuildKey, change func(*events.BuildRecord) error) (events.BuildRecord, error)
	HeadSummary(ctx context.Context, k events.HeadKey) (events.HeadSummary, error)
	UpdateHeadSummary(ctx context.Context, k events.HeadKey, change func(*events.HeadSummary) error) (events.HeadSummary, error)
}

// leader tells whether this projector may write GitHub now (lease).
type leader interface {
	Leading() bool
}

// revisions gives the latest revision of a target the watch delivered
// (schedule), so that a read older than it is recognised as stale.
type revisions interface {
	seenRevision(t target) uint64
}

// writer writes GitHub from the records: it reads a target's latest
// record, writes what it owes (within the write budget, Pacing) and keeps
// in the record what it showed. It keeps no schedule of its own: it says
// what a look came to, and the schedule acts on it. Its methods may be
// called concurrently for different targets; one target is looked at by
// one goroutine at a time (schedule).
type writer struct {
	records  writerRecords
	clients  Clients
	pacing   Pacing
	httpRoot string
	// statusOptions tune every Reporter the writer makes.
	statusOptions []status.Option
	ids           *status.CheckRunIDs
	log           *slog.Logger
	metrics       *Metrics
	leader        leader
	seen          revisions
	// writes counts the writes GitHub took, for Writes.
	writes atomic.Int64
}

// look writes what t owes GitHub (see show and showHead).
func (w *writer) look(ctx context.Context, t target) outcome {
	if t.isHead() {
		return w.showHead(ctx, t.head)
	}
	return w.show(ctx, t.build)
}

// show writes what k's latest record owes GitHub, in the record's order,
// summary last, and keeps what it showed in the record. Its outcome says
// when k is owed another look: a held state's time or a paced summary's;
// or that a read or write failed, to be retried from the record read
// again, so the retry shows the latest state, never a stale one.
func (w *writer) show(ctx context.Context, k events.BuildKey) outcome {
	log := w.log.With("repo", k.Repo.FullName(), "pull", k.Pull, "build", k.Build)
	rec, err := w.records.BuildRecord(ctx, k)
	if errors.Is(err, events.ErrNoRecord) || (err == nil && !rec.Projected) {
		return outcome{}
	}
	if err != nil {
		log.Warn("reading build record to show it", "err", err)
		return outcome{failed: err}
	}
	if seen := w.seen.seenRevision(target{build: k}); rec.Revision < seen {
		// A replica that lags answered: what it shows is already past.
		log.Debug("read a build record older than the watch delivered; reading again", "read", rec.Revision, "seen", seen)
		return outcome{again: time.Now().Add(staleReadWait)}
	}
	client, err := w.clients.Client(ctx, rec.Installation)
	if err != nil {
		log.Warn("authenticating to show a build", "installation", rec.Installation, "err", err)
		return outcome{failed: err}
	}
	later, err := w.writeParts(ctx, log, w.reporter(client), rec)
	if errors.Is(err, errNotLeading) {
		// Still owed: the build is written when this projector leads
		// again (gaining the lease makes it due), or by the new holder,
		// which looks at every record it is shown.
		return outcome{again: time.Now()}
	}
	if err != nil {
		w.metrics.Failures.Inc()
		log.Warn("showing build on GitHub; retrying from its latest record", "err", err)
		return outcome{failed: err}
	}
	return outcome{again: later, done: true}
}

// writeParts writes through rep what rec owes GitHub, in the record's
// order, summary last, until a write fails, and keeps in the record what
// it showed. It returns when rec is owed another look (zero for never),
// or why it stopped: errNotLeading when the lease was lost meanwhile.
func (w *writer) writeParts(ctx context.Context, log *slog.Logger, rep *status.Reporter, rec events.BuildRecord) (time.Time, error) {
	shown := map[string]events.Shown{}
	var later time.Time
	var failed error
	for _, st := range Project(rec, w.pageURL(rec.Key)) {
		prev, ok := rec.Shown[st.Part]
		now := time.Now()
		write, at := next(st, prev, ok, now, w.pacing)
		later = earliest(later, at)
		if !write {
			continue
		}
		if !w.leader.Leading() {
			failed = errNotLeading
			break
		}
		if _, was := rec.Shown[SummaryPart]; st.Part == SummaryPart && !was {
			// The build's summary replaces the head's own from now on.
			if failed = w.takeOver(ctx, log, rep, rec); failed != nil {
				break
			}
		}
		if failed = w.setOnce(ctx, log, rep, st); failed != nil {
			break
		}
		shown[st.Part] = events.Shown{Mark: st.Mark, At: now.UTC()}
	}
	if len(shown) > 0 {
		w.keepShown(ctx, log, rec.Key, shown)
	}
	return later, failed
}

// staleReadWait is how soon a build read from a lagging replica is read
// again: replicas catch up within milliseconds once a leader is elected.
const staleReadWait = 50 * time.Millisecond

// errNotLeading stops a write when the lease was lost meanwhile.
var errNotLeading = errors.New("projector lease lost")

// reporter writes through client's check runs when it has them (a GitHub
// App), else through commit statuses: the one place that decides. Each
// write is tried once; the schedule retries from the record.
func (w *writer) reporter(c Client) *status.Reporter {
	if c.Checks != nil {
		return status.NewReporterFor(status.CheckRunWriter{Client: c.Checks, IDs: w.ids}, w.statusOptions...)
	}
	return status.NewReporter(c.Statuses, w.statusOptions...)
}

// setOnce writes st through rep; a state GitHub refuses for good is
// logged and counts as shown, since trying again cannot help.
func (w *writer) setOnce(ctx context.Context, log *slog.Logger, rep *status.Reporter, st State) error {
	err := rep.Set(ctx, st.Status)
	switch {
	case err == nil:
		w.metrics.Writes.Inc()
		w.writes.Add(1)
	case errors.Is(err, status.ErrRejected), errors.Is(err, status.ErrInvalid):
		log.Error("GitHub refused a state; it is not tried again", "test", st.Part, "err", err)
	default:
		return err
	}
	return nil
}

// keepShown records in k's record what was just shown. A failure is
// logged: the parts are shown again, which GitHub takes as the same.
func (w *writer) keepShown(ctx context.Context, log *slog.Logger, k events.BuildKey, shown map[string]events.Shown) {
	_, err := w.records.UpdateBuild(ctx, k, func(r *events.BuildRecord) error {
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

// pageURL is where the build's page is served, or "" when nowhere.
func (w *writer) pageURL(k events.BuildKey) string {
	return pages.URL(w.httpRoot, k)
}

// earliest is the earlier of two times, a zero one counting as none.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}
