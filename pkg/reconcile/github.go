package reconcile

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/google/go-github/v88/github"

	"github.com/yourci/yourci/pkg/githubauth"
)

// PullLister lists a repository's pull requests; go-github's
// PullRequestsService has it.
type PullLister interface {
	List(ctx context.Context, owner, repo string, opts *github.PullRequestListOptions) ([]*github.PullRequest, *github.Response, error)
}

// StatusService reads a commit's statuses and sets one; go-github's
// RepositoriesService has both.
type StatusService interface {
	GetCombinedStatus(ctx context.Context, owner, repo, ref string, opts *github.ListOptions) (*github.CombinedStatus, *github.Response, error)
	CreateStatus(ctx context.Context, owner, repo, ref string, status github.RepoStatus) (*github.RepoStatus, *github.Response, error)
}

// CheckRunLister lists a commit's check runs; go-github's ChecksService
// has it. Only a GitHub App can read them, so it is set only under App
// auth.
type CheckRunLister interface {
	ListCheckRunsForRef(ctx context.Context, owner, repo, ref string, opts *github.ListCheckRunsOptions) (*github.ListCheckRunsResults, *github.Response, error)
}

// InstallationRepoLister lists the repositories an App installation can
// reach; go-github's AppsService, on an installation's client, has it.
type InstallationRepoLister interface {
	ListRepos(ctx context.Context, opts *github.ListOptions) (*github.ListRepositories, *github.Response, error)
}

// AppService is what the sweep asks as the GitHub App itself (a JWT);
// go-github's AppsService, on the App's client, has both.
type AppService interface {
	ListInstallations(ctx context.Context, opts *github.ListOptions) ([]*github.Installation, *github.Response, error)
	GetRepositoryInstallation(ctx context.Context, owner, repo string) (*github.Installation, *github.Response, error)
}

// Installation is GitHub as one App installation, or the one configured
// token, sees it.
type Installation struct {
	Pulls    PullLister
	Statuses StatusService
	// Repos and Checks are set only for an App installation: an App's
	// tests are shown as check runs, not commit statuses.
	Repos  InstallationRepoLister
	Checks CheckRunLister
}

// GitHub gives the services acting for an installation (0 when the sweep
// authenticates with a token).
type GitHub interface {
	Installation(ctx context.Context, id int64) (Installation, error)
}

// Clients adapts githubauth's clients to the sweep: every client it hands
// out has the Cache under it, so all its GET requests are conditional and
// counted. Safe for concurrent use.
type Clients struct {
	auth  *githubauth.Clients
	cache *Cache

	mu       sync.Mutex
	installs map[int64]Installation
	app      AppService
}

// NewClients wraps auth's clients with cache.
func NewClients(auth *githubauth.Clients, cache *Cache) *Clients {
	return &Clients{auth: auth, cache: cache, installs: map[int64]Installation{}}
}

// Installation returns the services of installation id (ignored unless a
// GitHub App is configured), built once.
func (c *Clients) Installation(ctx context.Context, id int64) (Installation, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if inst, ok := c.installs[id]; ok {
		return inst, nil
	}
	base, err := c.auth.ForInstallation(ctx, id)
	if err != nil {
		return Installation{}, fmt.Errorf("GitHub client for installation %d: %w", id, err)
	}
	scope := string(c.auth.Method())
	if c.auth.Method() == githubauth.MethodApp {
		scope = "installation-" + strconv.FormatInt(id, 10)
	}
	client, err := c.cached(base, scope)
	if err != nil {
		return Installation{}, err
	}
	inst := Installation{Pulls: client.PullRequests, Statuses: client.Repositories}
	if c.auth.Method() == githubauth.MethodApp {
		inst.Repos, inst.Checks = client.Apps, client.Checks
	}
	c.installs[id] = inst
	return inst, nil
}

// App returns the App's own services, and false when no GitHub App is
// configured.
func (c *Clients) App() (AppService, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.app != nil {
		return c.app, true, nil
	}
	base, err := c.auth.App()
	if errors.Is(err, githubauth.ErrNotApp) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("GitHub App client: %w", err)
	}
	client, err := c.cached(base, "app")
	if err != nil {
		return nil, false, err
	}
	c.app = client.Apps
	return c.app, true, nil
}

// cached is base with the cache layered under it, above authentication.
func (c *Clients) cached(base *github.Client, scope string) (*github.Client, error) {
	client, err := base.Clone(github.WithTransport(c.cache.Transport(scope, base.Client().Transport)))
	if err != nil {
		return nil, fmt.Errorf("layering the GitHub cache: %w", err)
	}
	return client, nil
}
