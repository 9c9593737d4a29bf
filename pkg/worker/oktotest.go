package worker

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/yourci/yourci/pkg/events"
)

// okToTest carries out /ok-to-test from ev.Author, whom HandleCommand has
// found may write: it approves the pull request's current head commit and
// queues a pull event for it, the same event the approval label's webhook
// queues, so the approval record and the build claim decide what runs (and
// the build replaces the "approval needed" status). A closed pull request
// is refused; a head that needs no approval (its author may write, it is
// approved already, or this worker builds everything) gets a note.
func (w *Worker) okToTest(ctx context.Context, log *slog.Logger, inst Installation, ev events.CommandEvent) (outcome, error) {
	pull, err := getPull(ctx, inst.Pulls, ev.Repo, ev.Number)
	if err != nil {
		return outcome{}, err
	}
	pr := pull.pr
	sha := pr.GetHead().GetSHA()
	if pr.GetState() != "open" {
		return refused("the pull request is %s.", pr.GetState()), nil
	}
	if err := events.ValidateSHA(sha); err != nil {
		return outcome{}, permanent(fmt.Errorf("head of pull request %s#%d: %w", ev.Repo.FullName(), ev.Number, err))
	}
	log = log.With("sha", sha)
	if w.opts.Policy == BuildAll {
		return outcome{note: "this YourCI builds every pull request without approval; there is nothing to approve."}, nil
	}
	rec, err := w.opts.Queue.ApprovalOf(ctx, ev.Repo, ev.Number)
	if err != nil {
		return outcome{}, fmt.Errorf("reading approval: %w", err)
	}
	// The same writer approving again is this command redelivered (or
	// repeated): queuing its build again is harmless, and makes sure a
	// crash between the approval and the pull event loses nothing.
	if rec.Covers(sha) && rec.By != ev.Author {
		return outcome{note: fmt.Sprintf("the head commit %.7s is already approved by @%s.", sha, rec.By)}, nil
	}
	author := pr.GetUser().GetLogin()
	trusted, err := w.trust.canWrite(ctx, inst.Permissions, ev.Repo.Owner, ev.Repo.Name, author)
	if err != nil {
		return outcome{}, err
	}
	if trusted {
		return outcome{note: fmt.Sprintf("@%s may write to %s, so their commits are built without approval.", author, ev.Repo.FullName())}, nil
	}
	ok, err := w.approve(ctx, log, inst, ev.Repo, ev.Number, sha, ev.Author)
	if err != nil || !ok {
		// HandleCommand checked ev.Author moments ago: a "no" now means
		// the permission was revoked in between.
		if err == nil {
			return refused("@%s may not write to %s.", ev.Author, ev.Repo.FullName()), nil
		}
		return outcome{}, err
	}
	pe := events.PullEvent{
		Version: events.Version, Repo: ev.Repo, Number: ev.Number, HeadSHA: sha,
		Installation: ev.Installation, Delivery: ev.Delivery,
	}
	if err := w.opts.Reruns.PublishPull(ctx, pe); err != nil {
		return outcome{}, fmt.Errorf("queuing the build of %.7s: %w", sha, err)
	}
	log.Info("head commit approved by command; build queued", "approver", ev.Author)
	return outcome{}, nil
}
