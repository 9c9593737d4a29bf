package fakegithub_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-github/v88/github"
)

func TestFailNext(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		status int
		header http.Header
		check  func(t *testing.T, err error)
	}{
		{name: "server_error_is_an_error_response", status: http.StatusInternalServerError, check: wantStatus(http.StatusInternalServerError)},
		{name: "bad_gateway_is_an_error_response", status: http.StatusBadGateway, check: wantStatus(http.StatusBadGateway)},
		{name: "forbidden_with_retry_after_is_a_secondary_limit", status: http.StatusForbidden,
			header: http.Header{"Retry-After": {"7"}}, check: wantAbuse(7 * time.Second)},
		{name: "too_many_requests_is_a_secondary_limit", status: http.StatusTooManyRequests,
			header: http.Header{"Retry-After": {"3"}}, check: wantAbuse(3 * time.Second)},
		{name: "forbidden_with_no_remaining_is_the_primary_limit", status: http.StatusForbidden,
			header: http.Header{"X-RateLimit-Remaining": {"0"}}, check: func(t *testing.T, err error) {
				var rle *github.RateLimitError
				if !errors.As(err, &rle) || rle.Rate.Remaining != 0 {
					t.Errorf("error %v, want a RateLimitError with nothing remaining", err)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t)
			sha := seed(t, s)
			status := github.RepoStatus{State: github.Ptr("pending"), Context: github.Ptr("yci/a")}
			s.FailNext(http.MethodPost, "/repos/acme/widgets/statuses/", 2, tt.status, tt.header)
			ctx := testContext(t)
			// Each attempt uses a fresh client: go-github remembers rate
			// limits and would refuse the retry itself.
			for range 2 {
				_, _, err := newClient(t, s).Repositories.CreateStatus(ctx, "acme", "widgets", sha, status)
				tt.check(t, err)
			}
			if _, _, err := newClient(t, s).Repositories.Get(ctx, "acme", "widgets"); err != nil {
				t.Errorf("a GET matched a POST-only failure: %v", err)
			}
			if _, _, err := newClient(t, s).Repositories.CreateStatus(ctx, "acme", "widgets", sha, status); err != nil {
				t.Errorf("third attempt: %v, want success after two failures", err)
			}
			if c := s.Requests(); c.Injected != 2 || len(s.Statuses("acme", "widgets", sha)) != 1 {
				t.Errorf("injected %d, statuses stored %d; want 2 and 1", c.Injected, len(s.Statuses("acme", "widgets", sha)))
			}
		})
	}

	t.Run("git_fetch_fails_while_injected", func(t *testing.T) {
		t.Parallel()
		s := newServer(t)
		seed(t, s)
		s.FailNext("", "/acme/widgets.git/", 1, http.StatusBadGateway, nil)
		auth := basicHeader("x-access-token", s.Token())
		if out, err := git(t, t.TempDir(), auth, "clone", "--quiet", s.URL()+"/acme/widgets.git", "w"); err == nil {
			t.Errorf("clone succeeded through an injected 502: %s", out)
		}
		if out, err := git(t, t.TempDir(), auth, "clone", "--quiet", s.URL()+"/acme/widgets.git", "w"); err != nil {
			t.Errorf("clone after the failure: %v: %s", err, out)
		}
	})
}

func wantStatus(code int) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		var ghErr *github.ErrorResponse
		if !errors.As(err, &ghErr) || ghErr.Response.StatusCode != code {
			t.Errorf("error %v, want an ErrorResponse with status %d", err, code)
		}
	}
}

func wantAbuse(retryAfter time.Duration) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		var abuse *github.AbuseRateLimitError
		if !errors.As(err, &abuse) || abuse.RetryAfter == nil || *abuse.RetryAfter != retryAfter {
			t.Errorf("error %v, want an AbuseRateLimitError retrying after %v", err, retryAfter)
		}
	}
}
