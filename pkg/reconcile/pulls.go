package reconcile

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"time"

	"github.com/google/go-github/v88/github"

	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/status"
)

// head is one open pull request's head commit and what the sweep found
// out about it.
type head struct {
	pull  int
	sha   string
	build int  // latest build of sha; 0 when none
	built bool // BuildOf found one
	// ours are the yci statuses of the head commit, pending those of them
	// still pending; read only for heads built and not settled.
	ours, pending []*github.RepoStatus
	// rec is the build's record when a projector shows it, and shown how
	// GitHub shows its parts (see readShown); the sweep repairs such a
	// build from its record (see actOnRecord).
	rec   *events.BuildRecord
	shown map[string]shownView
}

// repoSweep is the sweep of one repository.
type repoSweep struct {
	s    *Sweeper
	log  *slog.Logger
	t    target
	inst Installation
	sum  *Summary
	prev repoRecord
	next repoRecord
}

// sweepRepo decides about every open pull request of one repository in
// three steps: what GitHub and the build records say (BuildOf, then the
// statuses of built heads not known to be settled), then one look at the
// queue, taken after all of that so that a job started meanwhile is seen,
// and finally the actions.
func (s *Sweeper) sweepRepo(ctx context.Context, log *slog.Logger, t target, sum *Summary) error {
	inst, err := s.opts.GitHub.Installation(ctx, t.installation)
	if err != nil {
		return err
	}
	listed := s.opts.Now()
	pulls, err := allPulls(ctx, s.pageSize, inst.Pulls, t.repo)
	if err != nil {
		return fmt.Errorf("listing open pull requests: %w", err)
	}
	prev, err := s.opts.Store.loadRepo(ctx, t.repo)
	if err != nil {
		return err
	}
	r := &repoSweep{s: s, log: log, t: t, inst: inst, sum: sum, prev: prev, next: newRepoRecord()}
	heads, err := r.inspect(ctx, pulls)
	if err != nil {
		return err
	}
	if s.opts.Records != nil {
		open := map[int]bool{}
		for _, pr := range pulls {
			open[pr.GetNumber()] = pr.GetState() == "open"
		}
		// Pages only: a failure here costs a stale page until the next
		// sweep, not the sweep.
		if err := r.markClosed(ctx, open, listed); err != nil {
			log.Warn("marking closed pull requests", "err", err)
		}
	}
	if len(heads) > 0 {
		jobs, err := s.opts.Backlog.Jobs(ctx, t.repo)
		if err != nil {
			return fmt.Errorf("reading the queue: %w", err)
		}
		for _, h := range heads {
			if err := r.act(ctx, h, jobs); err != nil {
				return err
			}
		}
	}
	if maps.Equal(r.prev.Settled, r.next.Settled) && maps.Equal(r.prev.Rebuilds, r.next.Rebuilds) {
		return nil // an idle sweep writes nothing
	}
	return s.opts.Store.saveRepo(ctx, t.repo, r.next)
}

// allPulls lists the open pull requests, every page.
func allPulls(ctx context.Context, size int, pulls PullLister, repo events.Repo) ([]*github.PullRequest, error) {
	return allPages(ctx, size, func(opts *github.ListOptions) ([]*github.PullRequest, *github.Response, error) {
		return pulls.List(ctx, repo.Owner, repo.Name, &github.PullRequestListOptions{State: "open", ListOptions: *opts})
	})
}

// inspect returns the heads that need a decision: those without a build,
// and built ones whose statuses are not known to be settled.
func (r *repoSweep) inspect(ctx context.Context, pulls []*github.PullRequest) ([]*head, error) {
	var out []*head
	for _, pr := range pulls {
		h := &head{pull: pr.GetNumber(), sha: pr.GetHead().GetSHA()}
		// The listing asks for open pulls only; a closed one is never
		// queued, whatever a stale answer says.
		if pr.GetState() != "open" {
			continue
		}
		if events.ValidatePullRequest(h.pull) != nil || events.ValidateSHA(h.sha) != nil {
			r.log.Warn("skipping pull request with an impossible number or head", "pull", h.pull, "sha", h.sha)
			continue
		}
		r.sum.Pulls++
		var err error
		h.build, h.built, err = r.s.opts.Queue.BuildOf(ctx, r.t.repo, h.pull, h.sha)
		if err != nil {
			return nil, err
		}
		if m, ok := r.prev.Rebuilds[h.pull]; ok && m.SHA == h.sha {
			r.next.Rebuilds[h.pull] = m
		}
		if !h.built {
			out = append(out, h)
			continue
		}
		if err := r.readRecord(ctx, h); err != nil {
			return nil, err
		}
		if h.rec != nil {
			// GitHub may have changed behind the record's back at any
			// time, so a projected head is never settled; its reads are
			// conditional, usually a 304.
			if err := r.readShown(ctx, h); err != nil {
				return nil, err
			}
			out = append(out, h)
			continue
		}
		if m, ok := r.prev.Settled[h.pull]; ok && m.SHA == h.sha && m.Build == h.build {
			r.next.Settled[h.pull] = m
			continue
		}
		if err := r.readStatuses(ctx, h); err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, nil
}

// readStatuses fills in the head's yci statuses from its combined status
// (every page; usually a 304).
func (r *repoSweep) readStatuses(ctx context.Context, h *head) error {
	statuses, err := allPages(ctx, r.s.pageSize, func(opts *github.ListOptions) ([]*github.RepoStatus, *github.Response, error) {
		cs, resp, err := r.inst.Statuses.GetCombinedStatus(ctx, r.t.repo.Owner, r.t.repo.Name, h.sha, opts)
		return cs.GetStatuses(), resp, err
	})
	if err != nil {
		return fmt.Errorf("reading statuses of %s: %w", h.sha, err)
	}
	for _, st := range statuses {
		c := st.GetContext()
		if c != status.ContextPrefix && !strings.HasPrefix(c, status.ContextPrefix+"/") {
			continue
		}
		h.ours = append(h.ours, st)
		if st.GetState() == string(status.Pending) {
			h.pending = append(h.pending, st)
		}
	}
	return nil
}

// act queues a head without a build, repairs a projected one from its
// record, marks a finished one settled, and repairs one left pending with
// no job for longer than StaleAfter.
func (r *repoSweep) act(ctx context.Context, h *head, jobs *Jobs) error {
	repo := r.t.repo
	log := r.log.With("pull", h.pull, "sha", h.sha)
	switch {
	case !h.built && jobs.PullQueued(repo, h.pull, h.sha):
		r.sum.AlreadyQueued++
		log.Debug("head commit already queued")
		return nil
	case !h.built:
		return r.publish(ctx, log, h, DeliverySweep, false)
	case h.rec != nil:
		return r.actOnRecord(ctx, log, h, jobs)
	case jobs.HeadLive(repo, h.pull, h.sha):
		return nil // a worker has it
	case len(h.pending) == 0:
		// Every status final and nothing queued: only a new build, with
		// a new number, can change that.
		r.next.Settled[h.pull] = headMark{SHA: h.sha, Build: h.build}
		return nil
	}
	age := r.s.opts.Now().Sub(newestUpdate(h.pending))
	if age < r.s.opts.StaleAfter {
		return nil
	}
	return r.repair(ctx, log.With("build", h.build), h, age)
}

// publish queues a build of the head.
func (r *repoSweep) publish(ctx context.Context, log *slog.Logger, h *head, delivery string, rebuild bool) error {
	ev := events.PullEvent{
		Version: events.Version, Repo: r.t.repo, Number: h.pull, HeadSHA: h.sha,
		Installation: r.t.installation, Delivery: delivery, Rebuild: rebuild,
	}
	if err := r.s.opts.Queue.PublishPull(ctx, ev); err != nil {
		return fmt.Errorf("queuing %s#%d at %s: %w", r.t.repo.FullName(), h.pull, h.sha, err)
	}
	if !rebuild {
		r.sum.Queued++
		log.Info("queued a build of a head commit that had none")
	}
	return nil
}

// newestUpdate is the latest update among statuses: the last sign of life
// of the build.
func newestUpdate(statuses []*github.RepoStatus) time.Time {
	var newest time.Time
	for _, st := range statuses {
		if t := st.GetUpdatedAt().Time; t.After(newest) {
			newest = t
		}
		if t := st.GetCreatedAt().Time; t.After(newest) {
			newest = t
		}
	}
	return newest
}
