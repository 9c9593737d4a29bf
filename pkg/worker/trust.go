package worker

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/google/go-github/v88/github"
)

// Policy says which pull requests are built without a maintainer's word.
type Policy int

const (
	// BuildTrusted builds a pull request automatically only when its author
	// may write to the base repository, or a maintainer has labelled it
	// with the approval label: anyone else's code, .yci.py included, runs
	// only once someone who could have pushed it has looked at it.
	BuildTrusted Policy = iota
	// BuildAll builds every pull request, forks included: for private
	// repositories whose forks all belong to the team.
	BuildAll
)

// DefaultApprovalLabel is the label that lets an outside contributor's
// pull request be built.
const DefaultApprovalLabel = "ok-to-test"

// trustTTL is how long an author's permission is remembered: short enough
// that revoking access takes effect soon, long enough that a busy pull
// request costs one API call per few pushes.
const trustTTL = 10 * time.Minute

// noticeTTL is how long a worker trusts that the "approval needed" status
// it set is still there, rather than setting it again on every sweep.
const noticeTTL = 6 * time.Hour

// PermissionGetter reads a user's permission on a repository;
// go-github's RepositoriesService has it.
type PermissionGetter interface {
	GetPermissionLevel(ctx context.Context, owner, repo, user string) (*github.RepositoryPermissionLevel, *github.Response, error)
}

// trustCache remembers who may write to which repository.
type trustCache struct {
	mu      sync.Mutex
	entries map[string]trustEntry
	now     func() time.Time
	// noticed holds the commits whose "approval needed" status this
	// worker set, and when.
	noticed map[string]time.Time
}

// firstNotice reports whether the "approval needed" status of key has not
// been set within noticeTTL (and records that it is being set now).
func (c *trustCache) firstNotice(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	for k, at := range c.noticed {
		if now.Sub(at) >= noticeTTL {
			delete(c.noticed, k)
		}
	}
	if _, ok := c.noticed[key]; ok {
		return false
	}
	if c.noticed == nil {
		c.noticed = map[string]time.Time{}
	}
	c.noticed[key] = now
	return true
}

// forgetNotice undoes firstNotice when the status could not be set.
func (c *trustCache) forgetNotice(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.noticed, key)
}

type trustEntry struct {
	writer bool
	at     time.Time
}

// canWrite reports whether user may push to owner/repo, asking GitHub at
// most once per trustTTL.
func (c *trustCache) canWrite(ctx context.Context, perms PermissionGetter, owner, repo, user string) (bool, error) {
	key := owner + "/" + repo + "/" + user
	c.mu.Lock()
	e, ok := c.entries[key]
	c.mu.Unlock()
	if ok && c.now().Sub(e.at) < trustTTL {
		return e.writer, nil
	}
	level, resp, err := perms.GetPermissionLevel(ctx, owner, repo, user)
	switch {
	case err != nil && resp != nil && resp.StatusCode == 404:
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

// trusted reports whether the policy lets pr be built now.
func (w *Worker) trusted(ctx context.Context, inst Installation, pr *github.PullRequest) (bool, error) {
	if w.opts.Policy == BuildAll {
		return true, nil
	}
	for _, l := range pr.Labels {
		if l.GetName() == w.opts.ApprovalLabel {
			return true, nil
		}
	}
	base := pr.GetBase().GetRepo()
	return w.trust.canWrite(ctx, inst.Permissions, base.GetOwner().GetLogin(), base.GetName(), pr.GetUser().GetLogin())
}
