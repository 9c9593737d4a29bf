package worker

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/yourci/yourci/pkg/events"
)

// okToTest carries out /ok-to-test from ev.Author, whom HandleCommand has
// found may write: it approves the head commit the writer saw (see
// bindHead), which must still be the pull request's head, and queues a pull event for it, the same event the approval label's webhook
// queues, so the approval record and the build claim decide what runs (and
// the build replaces the "approval needed" status). A closed pull request
// is refused; a head that needs no approval (its author may write, it is
// approved already, or this worker builds everything) gets a note.
func (w *Worker) okToTest(ctx context.Context, log *slog.Logger, inst Installation, ev events.CommandEvent, c events.Command) (outcome, error) {
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
	seen, err := w.opts.Reruns.SeeHead(ctx, ev.Repo, ev.Number, sha, time.Now())
	if err != nil {
		return outcome{}, fmt.Errorf("reading when head %.7s was first seen: %w", sha, err)
	}
	if o := bindHead(sha, seen, c.SHA, ev.WrittenAt); o.refusal != "" {
		return o, nil
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

// bindHead decides whether an /ok-to-test may approve head, the pull
// request's head now, first seen by YourCI at seen. A command naming a
// commit (named, a prefix of at least 7 hex digits) approves exactly that
// commit, and only while it is the head. A bare command approves the head
// only when YourCI saw it no later than the comment was written: a head
// first seen after that (a push that raced the comment), or a comment
// whose time is unknown, is refused, naming the head so the writer can
// approve it by its sha. YourCI's clock is compared with GitHub's: a clock
// running ahead refuses more, never approves more. It is pure.
func bindHead(head string, seen time.Time, named string, written time.Time) outcome {
	switch {
	case named != "" && strings.HasPrefix(head, named):
		return outcome{}
	case named != "":
		return refused("`%s` is not the head of the pull request, which is now `%s`; nothing was approved.", named, head)
	case written.IsZero() || seen.IsZero() || seen.After(written):
		return refused("the head of the pull request is now `%s`, which YourCI cannot tell was there when this comment was written; "+
			"nothing was approved. To approve it, comment `/ok-to-test %.12s` once you have looked at it.", head, head)
	}
	return outcome{}
}
