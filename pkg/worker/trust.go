package worker

import (
	"context"
	"errors"
	"fmt"
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
	return w.pulls.gate.approve(ctx, log, inst, repo, pull, sha, approver)
}
