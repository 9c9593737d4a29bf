package reconcile

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/go-github/v88/github"

	"github.com/yourci/yourci/pkg/events"
)

// ParseRepositories reads GITHUB_REPOSITORIES: owner/repo names separated
// by white space, each listed once. Every bad entry is reported at once.
func ParseRepositories(list string) ([]events.Repo, error) {
	var repos []events.Repo
	var errs []error
	seen := map[events.Repo]bool{}
	for _, field := range strings.Fields(list) {
		owner, name, ok := strings.Cut(field, "/")
		r := events.Repo{Owner: owner, Name: name}
		if !ok {
			errs = append(errs, fmt.Errorf("repository %q is not owner/repo", field))
			continue
		}
		if err := r.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("repository %q is not owner/repo: %w", field, err))
			continue
		}
		if seen[r] {
			continue
		}
		seen[r] = true
		repos = append(repos, r)
	}
	return repos, errors.Join(errs...)
}

// target is one repository to sweep and the installation to sweep it as;
// err is set when even that could not be found out.
type target struct {
	repo         events.Repo
	installation int64
	err          error
}

// targets lists the repositories of this sweep: the configured list (with
// each one's installation looked up, for an App), or every repository of
// every installation of the App. An error stops the sweep (a rate limit,
// or the App's installations unreadable); a problem with one repository or
// installation is carried in its target.
func (s *Sweeper) targets(ctx context.Context) ([]target, error) {
	if len(s.opts.Repositories) > 0 {
		return s.listedTargets(ctx)
	}
	if s.opts.App == nil {
		return nil, errors.New("no repositories to sweep: set GITHUB_REPOSITORIES or configure a GitHub App")
	}
	installations, err := allPages(ctx, s.pageSize, func(opts *github.ListOptions) ([]*github.Installation, *github.Response, error) {
		return s.opts.App.ListInstallations(ctx, opts)
	})
	if err != nil {
		return nil, fmt.Errorf("listing the App's installations: %w", err)
	}
	var out []target
	for _, inst := range installations {
		if inst.SuspendedAt != nil {
			s.log.Info("skipping suspended installation", "installation", inst.GetID(), "account", inst.GetAccount().GetLogin())
			continue
		}
		repos, err := s.installationRepos(ctx, inst.GetID())
		if _, limited := rateLimited(err, s.opts.Now()); limited || ctx.Err() != nil {
			return nil, err
		}
		if err != nil {
			out = append(out, target{repo: events.Repo{Owner: inst.GetAccount().GetLogin(), Name: "*"},
				installation: inst.GetID(), err: err})
			continue
		}
		for _, r := range repos {
			out = append(out, target{repo: r, installation: inst.GetID()})
		}
	}
	slices.SortFunc(out, func(a, b target) int {
		return cmp.Compare(a.repo.FullName(), b.repo.FullName())
	})
	return out, nil
}

// listedTargets is the configured list; with an App, each repository's
// installation is looked up (a cached, usually 304, request each).
func (s *Sweeper) listedTargets(ctx context.Context) ([]target, error) {
	out := make([]target, 0, len(s.opts.Repositories))
	for _, r := range s.opts.Repositories {
		t := target{repo: r}
		if s.opts.App != nil {
			inst, _, err := s.opts.App.GetRepositoryInstallation(ctx, r.Owner, r.Name)
			if _, limited := rateLimited(err, s.opts.Now()); limited || ctx.Err() != nil {
				return nil, err
			}
			if err != nil {
				t.err = fmt.Errorf("finding the App's installation: %w", err)
			}
			t.installation = inst.GetID()
		}
		out = append(out, t)
	}
	return out, nil
}

// installationRepos lists the repositories installation id can reach.
func (s *Sweeper) installationRepos(ctx context.Context, id int64) ([]events.Repo, error) {
	inst, err := s.opts.GitHub.Installation(ctx, id)
	if err != nil {
		return nil, err
	}
	if inst.Repos == nil {
		return nil, fmt.Errorf("installation %d: no repository listing (not a GitHub App client)", id)
	}
	repos, err := allPages(ctx, s.pageSize, func(opts *github.ListOptions) ([]*github.Repository, *github.Response, error) {
		list, resp, err := inst.Repos.ListRepos(ctx, opts)
		return list.GetRepositories(), resp, err
	})
	if err != nil {
		return nil, fmt.Errorf("listing repositories of installation %d: %w", id, err)
	}
	var out []events.Repo
	for _, r := range repos {
		repo := events.Repo{Owner: r.GetOwner().GetLogin(), Name: r.GetName()}
		if err := repo.Validate(); err != nil {
			s.log.Warn("skipping repository with an impossible name", "installation", id, "repo", repo.FullName(), "err", err)
			continue
		}
		out = append(out, repo)
	}
	return out, nil
}

// perPage is GitHub's largest page: the fewest requests per listing.
const perPage = 100

// maxPages bounds a listing, so a server that always says "next" cannot
// keep a sweep going forever: 1000 pages is 100,000 items.
const maxPages = 1000

// allPages calls list for every page, following GitHub's Link header.
func allPages[T any](ctx context.Context, size int, list func(*github.ListOptions) ([]T, *github.Response, error)) ([]T, error) {
	opts := &github.ListOptions{PerPage: size}
	var all []T
	for range maxPages {
		items, resp, err := list(opts)
		if err != nil {
			return nil, err
		}
		all = append(all, items...)
		if resp == nil || resp.NextPage == 0 {
			return all, nil
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		opts.Page = resp.NextPage
	}
	return nil, fmt.Errorf("more than %d pages", maxPages)
}
