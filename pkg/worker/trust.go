package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/google/go-github/v88/github"

	"github.com/yourci/yourci/pkg/events"
)

// Policy says which pull requests are built without a maintainer's word.
type Policy int

const (
	// BuildTrusted builds a head commit automatically only when the pull
	// request's author may write to the base repository, or when someone
	// who may write approved that very commit (the approval label, added
	// by them): anyone else's code, .yci.py included, runs only once
	// someone who could have pushed it has looked at it, and a new push
	// needs a new approval, as in GitHub Actions.
	BuildTrusted Policy = iota
	// BuildAll builds every pull request, forks included: for private
	// repositories whose forks all belong to the team.
	BuildAll
)

// DefaultApprovalLabel is the label that lets an outside contributor's
// head commit be built: events.DefaultApprovalLabel, the one definition.
const DefaultApprovalLabel = events.DefaultApprovalLabel

// trustTTL is how long an author's permission is remembered: short enough
// that revoking access takes effect soon, long enough that a busy pull
// request costs one API call per few pushes.
const trustTTL = 10 * time.Minute

// maxEventPages bounds how much of a pull request's issue events are read
// to find who added the approval label: a hundred per page, newest last.
const maxEventPages = 10

// PermissionGetter reads a user's permission on a repository;
// go-github's RepositoriesService has it.
type PermissionGetter interface {
	GetPermissionLevel(ctx context.Context, owner, repo, user string) (*github.RepositoryPermissionLevel, *github.Response, error)
}

// IssueEventLister lists the events of an issue or pull request (who added
// which label, when); go-github's IssuesService has it.
type IssueEventLister interface {
	ListIssueEvents(ctx context.Context, owner, repo string, number int, opts *github.ListOptions) ([]*github.IssueEvent, *github.Response, error)
}

// trustCache remembers who may write to which repository.
type trustCache struct {
	mu      sync.Mutex
	entries map[string]trustEntry
	now     func() time.Time
}

type trustEntry struct {
	writer bool
	at     time.Time
}

// canWrite reports whether user may push to owner/repo, asking GitHub at
// most once per trustTTL.
func (c *trustCache) canWrite(ctx context.Context, perms PermissionGetter, owner, repo, user string) (bool, error) {
	if user == "" {
		return false, nil
	}
	key := owner + "/" + repo + "/" + user
	c.mu.Lock()
	e, ok := c.entries[key]
	c.mu.Unlock()
	if ok && c.now().Sub(e.at) < trustTTL {
		return e.writer, nil
	}
	level, resp, err := perms.GetPermissionLevel(ctx, owner, repo, user)
	switch {
	case err != nil && resp != nil && resp.StatusCode == http.StatusNotFound:
		// Not a collaborator at all.
	case err != nil:
		return false, fmt.Errorf("reading %s's permission on %s/%s: %w", user, owner, repo, err)
	}
	writer := false
	switch level.GetPermission() {
	case "admin", "maintain", "write":
		writer = true
	}
	c.mu.Lock()
	c.entries[key] = trustEntry{writer: writer, at: c.now()}
	c.mu.Unlock()
	return writer, nil
}

// verdict is what the policy decided about one head commit.
type verdict struct {
	// build says the commit may be built now.
	build bool
	// by names who approved the commit; empty when its author (or the
	// policy) needed no approval.
	by string
	// asked says YourCI had set "approval needed" on the commit, which
	// the build must now replace.
	asked bool
}

// judge decides whether the policy lets ev's head commit be built now. An
// approval label counts only when someone who may write added it, and
// only for the commit that was the head when they did: from the labeled
// webhook (ev.LabeledBy, with ev.HeadSHA as the pull was then), or, for a
// label whose webhook never arrived, from the pull request's issue events
// when the label was added after YourCI asked for approval of this very
// commit.
//
// A merge group is built without this gate: only people who may merge can
// queue a pull request, and only one that passed the required checks.
func (w *Worker) judge(ctx context.Context, log *slog.Logger, inst Installation, pr *github.PullRequest, ev events.PullEvent) (verdict, error) {
	if w.opts.Policy == BuildAll || events.IsGroup(ev.Number) {
		return verdict{build: true}, nil
	}
	repo, labeled := ev.Repo, w.hasApprovalLabel(pr)
	if ev.LabeledBy != "" && labeled {
		if _, err := w.approve(ctx, log, inst, repo, ev.Number, ev.HeadSHA, ev.LabeledBy); err != nil {
			return verdict{}, err
		}
	}
	rec, err := w.opts.Queue.ApprovalOf(ctx, repo, ev.Number)
	if err != nil {
		return verdict{}, fmt.Errorf("reading approval: %w", err)
	}
	asked := rec.Asked == ev.HeadSHA
	if rec.Covers(ev.HeadSHA) {
		return verdict{build: true, by: rec.By, asked: asked}, nil
	}
	author := pr.GetUser().GetLogin()
	writer, err := w.trust.canWrite(ctx, inst.Permissions, repo.Owner, repo.Name, author)
	if err != nil || writer {
		return verdict{build: writer}, err
	}
	if labeled && asked {
		by, err := w.labeledAfter(ctx, inst, repo, ev.Number, rec.AskedAt)
		if err != nil {
			// An App without issues:read cannot tell who labeled: the
			// label's webhook (or a command) still approves.
			log.Warn("cannot read who added the approval label", "err", err)
		}
		if by != "" {
			if ok, err := w.approve(ctx, log, inst, repo, ev.Number, ev.HeadSHA, by); ok || err != nil {
				return verdict{build: ok, by: by, asked: true}, err
			}
		}
	}
	return verdict{asked: asked}, nil
}

// hasApprovalLabel reports whether pr carries the approval label, compared
// as the receiver compares it (events.IsApprovalLabel).
func (w *Worker) hasApprovalLabel(pr *github.PullRequest) bool {
	for _, l := range pr.Labels {
		if events.IsApprovalLabel(l.GetName(), w.opts.ApprovalLabel) {
			return true
		}
	}
	return false
}

// labeledAfter returns who added the approval label last, if that was in
// a later second than since (YourCI's request for approval of the current
// head); "" when nobody did. Only the newest addition counts: an older one
// approved an older head.
func (w *Worker) labeledAfter(ctx context.Context, inst Installation, repo events.Repo, pull int, since time.Time) (string, error) {
	if inst.Issues == nil {
		return "", nil
	}
	var last *github.IssueEvent
	opts := &github.ListOptions{PerPage: 100}
	for range maxEventPages {
		list, resp, err := inst.Issues.ListIssueEvents(ctx, repo.Owner, repo.Name, pull, opts)
		if err != nil {
			return "", fmt.Errorf("reading who labeled %s#%d: %w", repo.FullName(), pull, err)
		}
		for _, e := range list {
			if e.GetEvent() == "labeled" && events.IsApprovalLabel(e.GetLabel().GetName(), w.opts.ApprovalLabel) {
				last = e
			}
		}
		if resp == nil || resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	// GitHub's times have whole seconds: a label in the same second as
	// the request might have come before it, for an older head, so it
	// does not count (its labeled webhook still does).
	if last == nil || !last.GetCreatedAt().After(since.Truncate(time.Second)) {
		return "", nil
	}
	return last.GetActor().GetLogin(), nil
}

// approve records that approver approved head commit sha of a pull
// request, if approver may write to the repository; ok says whether the
// approval was recorded. A label or command from anyone else is logged
// and ignored.
func (w *Worker) approve(ctx context.Context, log *slog.Logger, inst Installation, repo events.Repo, pull int, sha, approver string) (ok bool, err error) {
	writer, err := w.trust.canWrite(ctx, inst.Permissions, repo.Owner, repo.Name, approver)
	if err != nil {
		return false, err
	}
	if !writer {
		log.Info("approval ignored: the approver may not write to the repository", "approver", approver)
		return false, nil
	}
	if err := w.opts.Queue.Approve(ctx, repo, pull, sha, approver); err != nil {
		return false, fmt.Errorf("recording approval by %s: %w", approver, err)
	}
	log.Info("head commit approved", "approver", approver)
	return true, nil
}

// Approve records that approver approved head commit sha of pull request
// repo#pull, seen through the given installation, when approver may write
// to the repository, and reports whether it did. It is how a command such
// as "/ok-to-test" approves: the caller then queues a build of sha (a
// PullEvent), which the approval lets through. An approval covers sha
// only; a later push needs another. Safe for concurrent use.
func (w *Worker) Approve(ctx context.Context, installation int64, repo events.Repo, pull int, sha, approver string) (bool, error) {
	if err := errors.Join(repo.Validate(), events.ValidatePull(pull), events.ValidateSHA(sha)); err != nil {
		return false, err
	}
	inst, err := w.opts.GitHub.Installation(ctx, installation)
	if err != nil {
		return false, fmt.Errorf("authenticating for installation %d: %w", installation, err)
	}
	log := w.log.With("repo", repo.FullName(), "pull", pull, "sha", sha)
	return w.approve(ctx, log, inst, repo, pull, sha, approver)
}
