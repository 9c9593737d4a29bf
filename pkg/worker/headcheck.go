package worker

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/google/go-github/v88/github"

	"github.com/yourci/yourci/pkg/events"
)

// HeadBook is what the worker needs of the pull requests' head records
// (events.Heads has it): whether a head was superseded, or its pull
// closed, is answered from them, and an API read the worker had to make
// is recorded for the next job.
type HeadBook interface {
	HeadOf(ctx context.Context, repo events.Repo, pull int) (events.HeadRecord, bool, error)
	RecordHead(ctx context.Context, repo events.Repo, pull int, r events.HeadRecord) (events.HeadRecord, error)
}

// headReader tells whether a head commit is still its pull request's
// current head, from the head records when they can tell and otherwise by
// reading the pull request (recording what GitHub answered for the next
// job). The pull and test handlers share it; its methods may be called
// concurrently.
type headReader struct {
	heads HeadBook
	// keepSuperseded is Options.KeepSuperseded: a superseded head stays
	// worth testing.
	keepSuperseded bool
}

// headCheck is what the head record says of one head commit: known is
// false when it cannot tell (no record, an ambiguous second, a job that
// does not say when its pull was read), and then only reading the pull
// request can; stale is why the head is not worth testing, and newSHA the
// head that replaced it (empty when the pull closed).
type headCheck struct {
	known         bool
	stale, newSHA string
}

// judgeHead decides from rec (found says there is one) whether sha, the
// head its pull request had at updatedAt, is still current. keep is
// Options.KeepSuperseded: a superseded head stays worth testing, a closed
// pull's does not. It is pure.
//
// A record older than updatedAt is behind what the job knows (its own
// delivery's record was lost): nothing newer was recorded either, so the
// head is current. A record of the same second that disagrees, or says
// it is ambiguous, cannot be ordered against the job.
func judgeHead(rec events.HeadRecord, found bool, sha string, updatedAt time.Time, keep bool) headCheck {
	if !found || rec.Ambiguous || updatedAt.IsZero() {
		return headCheck{}
	}
	was, now := updatedAt.UTC().Truncate(time.Second), rec.UpdatedAt.UTC().Truncate(time.Second)
	switch {
	case now.Before(was):
		return headCheck{known: true}
	case now.Equal(was) && (rec.SHA != sha || rec.Closed):
		return headCheck{}
	case rec.Closed:
		return headCheck{known: true, stale: "pull request is closed"}
	case rec.SHA != sha && !keep:
		return headCheck{known: true, stale: "superseded by " + rec.SHA, newSHA: rec.SHA}
	}
	return headCheck{known: true}
}

// checkHead asks the head record about sha. A record that cannot be read
// is logged and counts as unknown: the caller then reads the pull request.
// A merge group has none to read; its check is groupCheck's.
func (r *headReader) checkHead(ctx context.Context, log *slog.Logger, repo events.Repo, number int, sha string, updatedAt time.Time) headCheck {
	rec, found, err := r.heads.HeadOf(ctx, repo, number)
	group := events.IsGroup(number)
	switch {
	case err != nil && group:
		log.Warn("reading the merge group's head record; building it", "err", err)
		return groupCheck(headCheck{})
	case err != nil:
		log.Warn("reading the head record; reading the pull request instead", "err", err)
		return headCheck{}
	}
	check := judgeHead(rec, found, sha, updatedAt, r.keepSuperseded)
	if group {
		return groupCheck(check)
	}
	return check
}

// groupCheck is judgeHead's answer for a merge group, which has no pull
// request to read: its head never changes (a requeued group is a new
// group), so only its destruction, recorded for good by the receiver
// (events.GroupDestroyedAt), makes it stale, and a record that cannot
// tell means it is current. It is pure.
func groupCheck(c headCheck) headCheck {
	if c.stale != "" {
		return headCheck{known: true, stale: groupDestroyed}
	}
	return headCheck{known: true}
}

// groupDestroyed is why a destroyed merge group's tests stop.
const groupDestroyed = "merge group was destroyed"

// readPull is openPullRaw, recording what GitHub answered as the pull's
// head so that the next job need not ask; the read settles a second the
// record found ambiguous.
func (r *headReader) readPull(ctx context.Context, log *slog.Logger, inst Installation, repo events.Repo, number int, sha string) (pullRequest, string, error) {
	pull, stale, err := openPullRaw(ctx, inst, repo, number, sha, r.keepSuperseded)
	if err != nil || pull.pr.GetUpdatedAt().IsZero() || events.ValidateSHA(pull.pr.GetHead().GetSHA()) != nil {
		return pull, stale, err
	}
	rec := events.HeadRecord{
		SHA: pull.pr.GetHead().GetSHA(), Closed: pull.pr.GetState() != "open",
		UpdatedAt: pull.pr.GetUpdatedAt().Time, Read: true,
	}
	if _, rerr := r.heads.RecordHead(ctx, repo, number, rec); rerr != nil {
		log.Warn("recording the head read from GitHub", "err", rerr)
	}
	return pull, stale, nil
}

// pullOf is the pull request a pull event builds, and why not when its
// head is stale. A webhook's event carries the pull request as GitHub
// delivered it (as fresh as a read), and the head record says whether a
// newer head or a close came since: no GitHub request. An event without
// it (the sweep's, an oversized one, an older receiver's), or one the
// record cannot order, reads the pull request.
func (r *headReader) pullOf(ctx context.Context, log *slog.Logger, inst Installation, ev events.PullEvent, p *prepLog) (pullRequest, string, error) {
	if pull, ok := carriedPull(ev); ok {
		check := r.checkHead(ctx, log, ev.Repo, ev.Number, ev.HeadSHA, ev.PullUpdatedAt)
		if check.known {
			p.step("pull request #%d as its webhook delivered it", ev.Number)
			return pull, check.stale, nil
		}
	}
	p.step("reading pull request #%d", ev.Number)
	return r.readPull(ctx, log, inst, ev.Repo, ev.Number, ev.HeadSHA)
}

// carriedPull decodes the pull request ev carries, when it carries one
// that is open at ev's head (what a receiver publishes); anything else is
// read instead.
func carriedPull(ev events.PullEvent) (pullRequest, bool) {
	if len(ev.Pull) == 0 || ev.PullUpdatedAt.IsZero() {
		return pullRequest{}, false
	}
	var pr github.PullRequest
	if err := json.Unmarshal(ev.Pull, &pr); err != nil {
		return pullRequest{}, false
	}
	if pr.GetState() != "open" || pr.GetHead().GetSHA() != ev.HeadSHA {
		return pullRequest{}, false
	}
	return pullRequest{pr: &pr, raw: ev.Pull}, true
}

// testHead is what a test needs to know of its pull request before it
// starts: whether its head is still current and the branch names its
// checkout and YCI_* facts use.
type testHead struct {
	headCheck
	headRef, baseRef, cloneURL string
}

// headOfTest answers testHead for job from the head record and what the
// job carries, or, when either cannot tell, by reading the pull request.
// A read's error comes back as is.
func (r *headReader) headOfTest(ctx context.Context, log *slog.Logger, inst Installation, job events.TestJob) (testHead, error) {
	if job.BaseRef != "" && job.HeadRef != "" {
		check := r.checkHead(ctx, log, job.Repo, job.Number, job.HeadSHA, job.PullUpdatedAt)
		if check.known {
			return testHead{headCheck: check, headRef: job.HeadRef, baseRef: job.BaseRef, cloneURL: job.CloneURL}, nil
		}
	}
	pull, stale, err := r.readPull(ctx, log, inst, job.Repo, job.Number, job.HeadSHA)
	if err != nil {
		return testHead{}, err
	}
	pr := pull.pr
	h := testHead{headCheck: headCheck{known: true, stale: stale},
		headRef: pr.GetHead().GetRef(), baseRef: pr.GetBase().GetRef(), cloneURL: pr.GetBase().GetRepo().GetCloneURL()}
	if stale != "" && pr.GetState() == "open" && pr.GetHead().GetSHA() != job.HeadSHA {
		h.newSHA = pr.GetHead().GetSHA()
	}
	return h, nil
}
