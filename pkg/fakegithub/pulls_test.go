package fakegithub_test

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-github/v88/github"

	"github.com/yourci/yourci/pkg/fakegithub"
)

func TestListPulls(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	seed(t, s)
	for i := 1; i <= 5; i++ {
		openPull(t, s, fmt.Sprintf("feature-%d", i), fakegithub.PullSpec{})
	}
	if err := s.ClosePull("acme", "widgets", 2); err != nil {
		t.Fatal(err)
	}
	enterprise := github.WithEnterpriseURLs(s.URL(), s.URL())

	tests := []struct {
		name    string
		opts    []github.ClientOptionsFunc
		state   string
		perPage int
		want    []int
	}{
		{name: "open_pulls_newest_first_across_pages", perPage: 2, want: []int{5, 4, 3, 1}},
		{name: "enterprise_base_url_serves_the_same", opts: []github.ClientOptionsFunc{enterprise}, perPage: 3, want: []int{5, 4, 3, 1}},
		{name: "closed_filter_returns_closed_only", state: "closed", perPage: 10, want: []int{2}},
		{name: "all_filter_returns_every_pull", state: "all", perPage: 100, want: []int{5, 4, 3, 2, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newClient(t, s, tt.opts...)
			opts := &github.PullRequestListOptions{State: tt.state, ListOptions: github.ListOptions{PerPage: tt.perPage}}
			var got []int
			pages := 0
			for {
				pulls, resp, err := c.PullRequests.List(testContext(t), "acme", "widgets", opts)
				if err != nil {
					t.Fatalf("listing page %d: %v", opts.Page, err)
				}
				pages++
				for _, p := range pulls {
					got = append(got, p.GetNumber())
				}
				if resp.NextPage == 0 {
					break
				}
				opts.Page = resp.NextPage
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("pull numbers (-want +got):\n%s", diff)
			}
			if wantPages := (len(tt.want) + tt.perPage - 1) / tt.perPage; pages != wantPages {
				t.Errorf("walked %d pages, want %d", pages, wantPages)
			}
		})
	}
}

func TestConditionalRequests(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	seed(t, s)
	openPull(t, s, "feature", fakegithub.PullSpec{})
	url := s.URL() + "/repos/acme/widgets/pulls?state=open&per_page=100"
	auth := http.Header{"Authorization": {"token " + s.Token()}}

	first := get(t, url, auth)
	etag := first.Header.Get("ETag")
	if first.StatusCode != http.StatusOK || etag == "" {
		t.Fatalf("first list: status %d, ETag %q", first.StatusCode, etag)
	}
	s.ResetCounts()

	t.Run("repeat_with_etag_is_304_and_free", func(t *testing.T) {
		h := auth.Clone()
		h.Set("If-None-Match", etag)
		resp := get(t, url, h)
		if resp.StatusCode != http.StatusNotModified {
			t.Fatalf("status %d, want 304", resp.StatusCode)
		}
		if got, want := resp.Header.Get("X-RateLimit-Remaining"), first.Header.Get("X-RateLimit-Remaining"); got != want {
			t.Errorf("X-RateLimit-Remaining after 304 = %s, want unchanged %s", got, want)
		}
		c := s.Requests()
		if c.Total != 1 || c.NotModified != 1 || c.Counted != 0 || c.ByRoute["GET /repos/{owner}/{repo}/pulls"] != 1 {
			t.Errorf("counts = %+v, want one request, one 304, none counted", c)
		}
	})

	t.Run("go_github_sees_304_as_not_modified", func(t *testing.T) {
		c := newClient(t, s)
		req, err := c.NewRequest(testContext(t), http.MethodGet, "repos/acme/widgets/pulls?state=open&per_page=100", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("If-None-Match", etag)
		var pulls []*github.PullRequest
		resp, err := c.Do(req, &pulls)
		var ghErr *github.ErrorResponse
		if !errors.As(err, &ghErr) || resp.StatusCode != http.StatusNotModified {
			t.Fatalf("Do = %v, %v; want a 304 ErrorResponse", resp, err)
		}
	})

	t.Run("push_changes_the_etag", func(t *testing.T) {
		if _, err := s.PushPull("acme", "widgets", 1, map[string]string{"more.txt": "more\n"}); err != nil {
			t.Fatal(err)
		}
		h := auth.Clone()
		h.Set("If-None-Match", etag)
		resp := get(t, url, h)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("ETag") == etag {
			t.Errorf("after push: status %d ETag %q, want 200 with a new ETag", resp.StatusCode, resp.Header.Get("ETag"))
		}
	})
}

// pullView is the part of a pull request YourCI reads.
type pullView struct {
	Number                         int
	State, Title, Body, Author     string
	HeadRef, HeadSHA, HeadRepo     string
	HeadClone, HeadOwner           string
	HeadFork                       bool
	BaseRef, BaseSHA, BaseRepo     string
	BaseClone, HTMLURL, StatusesTo string
	Labels                         []string
	Commits, ChangedFiles          int
}

func viewOf(p *github.PullRequest) pullView {
	v := pullView{
		Number: p.GetNumber(), State: p.GetState(), Title: p.GetTitle(), Body: p.GetBody(), Author: p.GetUser().GetLogin(),
		HeadRef: p.GetHead().GetRef(), HeadSHA: p.GetHead().GetSHA(), HeadRepo: p.GetHead().GetRepo().GetFullName(),
		HeadClone: p.GetHead().GetRepo().GetCloneURL(), HeadOwner: p.GetHead().GetRepo().GetOwner().GetLogin(),
		HeadFork: p.GetHead().GetRepo().GetFork(),
		BaseRef:  p.GetBase().GetRef(), BaseSHA: p.GetBase().GetSHA(), BaseRepo: p.GetBase().GetRepo().GetFullName(),
		BaseClone: p.GetBase().GetRepo().GetCloneURL(), HTMLURL: p.GetHTMLURL(), StatusesTo: p.GetStatusesURL(),
		Commits: p.GetCommits(), ChangedFiles: p.GetChangedFiles(),
	}
	for _, l := range p.Labels {
		v.Labels = append(v.Labels, l.GetName())
	}
	return v
}

func TestGetPull(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	base := seed(t, s)
	own := openPull(t, s, "feature", fakegithub.PullSpec{Title: "Add feature", Body: "Body text", Labels: []string{"ok-to-test"}})
	if _, err := s.Fork("acme", "widgets", "mallory"); err != nil {
		t.Fatal(err)
	}
	forkHead, err := s.Commit("mallory", "widgets", "evil", map[string]string{"test.sh": "#!/bin/bash\nexit 0\n"}, "Evil")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.OpenPull("acme", "widgets", fakegithub.PullSpec{Head: "evil", Author: "mallory", Fork: true, Title: "Innocent"}); err != nil {
		t.Fatal(err)
	}
	clone := s.URL() + "/acme/widgets.git"

	tests := []struct {
		name string
		n    int
		want pullView
	}{
		{name: "pull_from_a_branch", n: 1, want: pullView{
			Number: 1, State: "open", Title: "Add feature", Body: "Body text", Author: "acme",
			HeadRef: "feature", HeadSHA: own.GetHead().GetSHA(), HeadRepo: "acme/widgets", HeadClone: clone, HeadOwner: "acme",
			BaseRef: "main", BaseSHA: base, BaseRepo: "acme/widgets", BaseClone: clone,
			HTMLURL: s.URL() + "/acme/widgets/pull/1", StatusesTo: s.URL() + "/repos/acme/widgets/statuses/" + own.GetHead().GetSHA(),
			Labels: []string{"ok-to-test"}, Commits: 1, ChangedFiles: 1,
		}},
		{name: "pull_from_a_fork_names_the_fork_as_head", n: 2, want: pullView{
			Number: 2, State: "open", Title: "Innocent", Author: "mallory",
			HeadRef: "evil", HeadSHA: forkHead, HeadRepo: "mallory/widgets", HeadClone: s.URL() + "/mallory/widgets.git",
			HeadOwner: "mallory", HeadFork: true,
			BaseRef: "main", BaseSHA: base, BaseRepo: "acme/widgets", BaseClone: clone,
			HTMLURL: s.URL() + "/acme/widgets/pull/2", StatusesTo: s.URL() + "/repos/acme/widgets/statuses/" + forkHead,
			Commits: 1, ChangedFiles: 1,
		}},
	}
	c := newClient(t, s)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, _, err := c.PullRequests.Get(testContext(t), "acme", "widgets", tt.n)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, viewOf(p)); diff != "" {
				t.Errorf("pull (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("unknown_pull_is_404", func(t *testing.T) {
		t.Parallel()
		_, resp, err := c.PullRequests.Get(testContext(t), "acme", "widgets", 99)
		if err == nil || resp.StatusCode != http.StatusNotFound {
			t.Errorf("got %v, want 404", err)
		}
	})
}
