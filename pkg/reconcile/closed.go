package reconcile

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/yourci/yourci/pkg/events"
)

// Records is what a sweep needs of the build records: to mark pull
// requests closed or open again, so that pages list only open ones even
// when a webhook was missed, and to repair projected builds from their
// records (see actOnRecord); events.Records has it.
type Records interface {
	RecentBuilds(ctx context.Context, repo events.Repo, n int) ([]events.BuildRecord, error)
	SetPullClosed(ctx context.Context, repo events.Repo, pull int, closed bool) (int, error)
	BuildRecord(ctx context.Context, k events.BuildKey) (events.BuildRecord, error)
	UpdateBuild(ctx context.Context, k events.BuildKey, change func(*events.BuildRecord) error) (events.BuildRecord, error)
}

// closedChanges decides, from a repository's build records and the pull
// requests open when they were listed (at listed), which pulls' records to
// mark closed and which to mark open again. Only the latest build of a
// pull decides. A pull missing from the listing whose latest build was
// created after it may have opened meanwhile: it is left alone.
//
// A merge group (events.IsGroup) is never listed open: its records are
// marked closed once its build has no unfinished test (a destroyed
// webhook that was lost leaves it on the pages no longer than that), and
// never reopened. Nothing else of the sweep touches a group: it builds
// heads of listed pull requests only, so it never rebuilds a lost group
// or re-shows one on GitHub. The merge queue itself gives up a group
// whose checks do not report in time, and queueing again makes a new one.
func closedChanges(recs []events.BuildRecord, open map[int]bool, listed time.Time) (toClose, toReopen []int) {
	latest := map[int]events.BuildRecord{}
	for _, rec := range recs {
		if cur, ok := latest[rec.Key.Pull]; !ok || rec.Key.Build > cur.Key.Build {
			latest[rec.Key.Pull] = rec
		}
	}
	for pull, rec := range latest {
		switch {
		case open[pull] && rec.Closed:
			toReopen = append(toReopen, pull)
		case events.IsGroup(pull) && len(unfinished(rec)) > 0:
		case !open[pull] && !rec.Closed && rec.Created.Before(listed):
			toClose = append(toClose, pull)
		}
	}
	slices.Sort(toClose)
	slices.Sort(toReopen)
	return toClose, toReopen
}

// markClosed brings the closed marks of the repository's build records in
// line with open, the pulls listed open at listed.
func (r *repoSweep) markClosed(ctx context.Context, open map[int]bool, listed time.Time) error {
	recs, err := r.s.opts.Records.RecentBuilds(ctx, r.t.repo, math.MaxInt)
	if err != nil {
		return fmt.Errorf("reading build records: %w", err)
	}
	toClose, toReopen := closedChanges(recs, open, listed)
	for _, c := range []struct {
		pulls  []int
		closed bool
	}{{toClose, true}, {toReopen, false}} {
		for _, pull := range c.pulls {
			if _, err := r.s.opts.Records.SetPullClosed(ctx, r.t.repo, pull, c.closed); err != nil {
				return fmt.Errorf("marking builds of #%d: %w", pull, err)
			}
			r.log.Info("build records marked", "pull", pull, "closed", c.closed)
		}
	}
	return nil
}
