package fakegithub_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-github/v88/github"

	"github.com/yourci/yourci/pkg/fakegithub"
)

func TestCreateStatus(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	sha := seed(t, s)
	c := newClient(t, s)

	tests := []struct {
		name        string
		sha         string
		status      github.RepoStatus
		wantCode    int
		wantField   string // the field a 422 names, if any
		wantContext string
	}{
		{name: "pending_with_context_is_created", sha: sha,
			status:   github.RepoStatus{State: github.Ptr("pending"), Context: github.Ptr("yci/foo-x"), Description: github.Ptr("queued")},
			wantCode: http.StatusCreated, wantContext: "yci/foo-x"},
		{name: "missing_context_becomes_default", sha: sha,
			status:   github.RepoStatus{State: github.Ptr("success")},
			wantCode: http.StatusCreated, wantContext: "default"},
		{name: "description_of_140_characters_is_accepted", sha: sha,
			status:   github.RepoStatus{State: github.Ptr("failure"), Description: github.Ptr(strings.Repeat("é", 140))},
			wantCode: http.StatusCreated, wantContext: "default"},
		{name: "description_of_141_characters_is_refused", sha: sha,
			status:   github.RepoStatus{State: github.Ptr("error"), Description: github.Ptr(strings.Repeat("x", 141))},
			wantCode: http.StatusUnprocessableEntity, wantField: "description"},
		{name: "unknown_state_is_refused", sha: sha,
			status:   github.RepoStatus{State: github.Ptr("done")},
			wantCode: http.StatusUnprocessableEntity, wantField: "state"},
		{name: "unknown_commit_is_refused", sha: strings.Repeat("ab", 20),
			status:   github.RepoStatus{State: github.Ptr("pending")},
			wantCode: http.StatusUnprocessableEntity},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, resp, err := c.Repositories.CreateStatus(testContext(t), "acme", "widgets", tt.sha, tt.status)
			if resp == nil || resp.StatusCode != tt.wantCode {
				t.Fatalf("CreateStatus = %v, %v; want status %d", resp, err, tt.wantCode)
			}
			if tt.wantCode != http.StatusCreated {
				var ghErr *github.ErrorResponse
				if !errors.As(err, &ghErr) {
					t.Fatalf("error %v is not a GitHub error response", err)
				}
				if tt.wantField != "" && (len(ghErr.Errors) != 1 || ghErr.Errors[0].Field != tt.wantField) {
					t.Errorf("errors = %+v, want one about %q", ghErr.Errors, tt.wantField)
				}
				return
			}
			if got.GetContext() != tt.wantContext || got.GetState() != tt.status.GetState() || got.GetCreator().GetLogin() != fakegithub.BotLogin || got.GetID() == 0 {
				t.Errorf("created %v, want context %q state %q by %s", got, tt.wantContext, tt.status.GetState(), fakegithub.BotLogin)
			}
		})
	}
}

func TestStatusHistory(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	sha := seed(t, s)
	c := newClient(t, s)
	ctx := testContext(t)
	posts := []struct{ context, state string }{
		{"yci/a", "pending"}, {"yci/b", "pending"}, {"yci/a", "success"}, {"yci/b", "failure"},
	}
	for _, p := range posts {
		st := github.RepoStatus{State: github.Ptr(p.state), Context: github.Ptr(p.context), TargetURL: github.Ptr("http://ci/" + p.context)}
		if _, _, err := c.Repositories.CreateStatus(ctx, "acme", "widgets", sha, st); err != nil {
			t.Fatal(err)
		}
	}
	states := func(list []*github.RepoStatus) []string {
		var out []string
		for _, st := range list {
			out = append(out, st.GetContext()+"="+st.GetState())
		}
		return out
	}

	t.Run("api_lists_newest_first_across_pages", func(t *testing.T) {
		var got []*github.RepoStatus
		opts := &github.ListOptions{PerPage: 3}
		for {
			page, resp, err := c.Repositories.ListStatuses(ctx, "acme", "widgets", sha, opts)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, page...)
			if resp.NextPage == 0 {
				break
			}
			opts.Page = resp.NextPage
		}
		want := []string{"yci/b=failure", "yci/a=success", "yci/b=pending", "yci/a=pending"}
		if diff := cmp.Diff(want, states(got)); diff != "" {
			t.Errorf("statuses (-want +got):\n%s", diff)
		}
	})

	t.Run("combined_status_fails_when_one_context_failed", func(t *testing.T) {
		for _, ref := range []string{sha, "main"} {
			combined, _, err := c.Repositories.GetCombinedStatus(ctx, "acme", "widgets", ref, nil)
			if err != nil {
				t.Fatal(err)
			}
			if combined.GetState() != "failure" || combined.GetTotalCount() != 2 || combined.GetSHA() != sha {
				t.Errorf("combined for %s = %s, %d statuses, sha %s; want failure, 2, %s", ref, combined.GetState(), combined.GetTotalCount(), combined.GetSHA(), sha)
			}
			if diff := cmp.Diff([]string{"yci/a=success", "yci/b=failure"}, states(combined.Statuses)); diff != "" {
				t.Errorf("latest statuses (-want +got):\n%s", diff)
			}
		}
	})

	t.Run("scenario_view_keeps_order_and_latest", func(t *testing.T) {
		var history []*github.RepoStatus
		for _, st := range s.Statuses("acme", "widgets", sha) {
			history = append(history, &st)
		}
		if diff := cmp.Diff([]string{"yci/a=pending", "yci/b=pending", "yci/a=success", "yci/b=failure"}, states(history)); diff != "" {
			t.Errorf("history (-want +got):\n%s", diff)
		}
		latest := s.LatestStatuses("acme", "widgets", sha)
		a, b := latest["yci/a"], latest["yci/b"]
		if a.GetState() != "success" || b.GetState() != "failure" || len(latest) != 2 {
			t.Errorf("latest = %v", latest)
		}
	})
}

func TestWaitStatuses(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	sha := seed(t, s)
	c := newClient(t, s)
	allFinal := func(latest map[string]github.RepoStatus) bool {
		st, ok := latest["yci/a"]
		return ok && st.GetState() != "pending"
	}

	t.Run("wakes_when_a_status_is_posted", func(t *testing.T) {
		ctx := testContext(t)
		waiting := make(chan struct{})
		done := make(chan error, 1)
		calls := 0
		go func() {
			done <- s.WaitStatuses(ctx, "acme", "widgets", sha, func(latest map[string]github.RepoStatus) bool {
				calls++
				if calls == 1 {
					close(waiting)
				}
				return allFinal(latest)
			})
		}()
		<-waiting
		for _, state := range []string{"pending", "success"} {
			st := github.RepoStatus{State: github.Ptr(state), Context: github.Ptr("yci/a")}
			if _, _, err := c.Repositories.CreateStatus(ctx, "acme", "widgets", sha, st); err != nil {
				t.Fatal(err)
			}
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})

	t.Run("gives_up_when_the_context_ends", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(testContext(t), 50*time.Millisecond)
		defer cancel()
		err := s.WaitStatuses(ctx, "acme", "widgets", sha, func(map[string]github.RepoStatus) bool { return false })
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("WaitStatuses = %v, want deadline exceeded", err)
		}
	})
}
