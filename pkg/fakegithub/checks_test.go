package fakegithub_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-github/v88/github"

	"github.com/yourci/yourci/pkg/fakegithub"
)

// appClient is go-github acting as the App's installation on acme.
func appClient(t *testing.T, s *fakegithub.Server) *github.Client {
	t.Helper()
	id := s.Install("acme")
	itr, err := ghinstallation.New(http.DefaultTransport, s.AppID(), id, s.AppPrivateKeyPEM())
	if err != nil {
		t.Fatal(err)
	}
	itr.BaseURL = s.URL()
	return transportClient(t, s, itr)
}

func TestCheckRunLifecycle(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	sha := seed(t, s)
	c := appClient(t, s)
	ctx := testContext(t)
	s.ResetCounts()

	run, _, err := c.Checks.CreateCheckRun(ctx, "acme", "widgets", github.CreateCheckRunOptions{
		Name: "yci/unit", HeadSHA: sha, ExternalID: github.Ptr("ext-1"), Status: github.Ptr("queued"),
		DetailsURL: github.Ptr("https://ci.example/log"),
		Output:     &github.CheckRunOutput{Title: github.Ptr("queued"), Summary: github.Ptr("queued")},
	})
	if err != nil {
		t.Fatalf("creating: %v", err)
	}
	if run.GetStatus() != "queued" || run.GetCheckSuite().GetID() == 0 || run.GetApp().GetID() != s.AppID() {
		t.Errorf("created %+v", run)
	}
	_, _, err = c.Checks.UpdateCheckRun(ctx, "acme", "widgets", run.GetID(), github.UpdateCheckRunOptions{
		Name: "yci/unit", Status: github.Ptr("in_progress"),
	})
	if err != nil {
		t.Fatalf("starting: %v", err)
	}
	done, _, err := c.Checks.UpdateCheckRun(ctx, "acme", "widgets", run.GetID(), github.UpdateCheckRunOptions{
		Name: "yci/unit", Conclusion: github.Ptr("timed_out"),
		Output: &github.CheckRunOutput{Title: github.Ptr("timed out"), Summary: github.Ptr("**timed out**"), Text: github.Ptr("log")},
	})
	if err != nil {
		t.Fatalf("completing: %v", err)
	}
	if done.GetStatus() != "completed" || done.CompletedAt == nil || done.GetOutput().GetText() != "log" {
		t.Errorf("completed %+v", done)
	}

	var states []string
	for _, w := range s.CheckRunWrites("acme", "widgets", sha) {
		states = append(states, w.GetStatus()+"/"+w.GetConclusion())
	}
	if diff := cmp.Diff([]string{"queued/", "in_progress/", "completed/timed_out"}, states); diff != "" {
		t.Errorf("writes (-want +got):\n%s", diff)
	}
	list, _, err := c.Checks.ListCheckRunsForRef(ctx, "acme", "widgets", sha, &github.ListCheckRunsOptions{CheckName: github.Ptr("yci/unit")})
	if err != nil || list.GetTotal() != 1 || list.CheckRuns[0].GetExternalID() != "ext-1" {
		t.Errorf("listing: %v %+v", err, list)
	}
	if got := s.Requests(); got.Writes != 3 || got.ByRoute["GET /repos/{owner}/{repo}/commits/{ref}/check-runs"] != 1 {
		t.Errorf("counted %d writes and %v, want 3 writes and one list", got.Writes, got.ByRoute)
	}
}

func TestCheckRunRefusals(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	sha := seed(t, s)
	app := appClient(t, s)
	ctx := testContext(t)
	long := strings.Repeat("x", 65536)
	tests := []struct {
		name   string
		client *github.Client
		opts   github.CreateCheckRunOptions
		code   int
	}{
		{"a token is not an App", newClient(t, s), github.CreateCheckRunOptions{Name: "yci/a", HeadSHA: sha}, http.StatusForbidden},
		{"completed needs a conclusion", app, github.CreateCheckRunOptions{Name: "yci/a", HeadSHA: sha, Status: github.Ptr("completed")}, http.StatusUnprocessableEntity},
		{"unknown conclusion", app, github.CreateCheckRunOptions{Name: "yci/a", HeadSHA: sha, Conclusion: github.Ptr("great")}, http.StatusUnprocessableEntity},
		{"Actions-only status", app, github.CreateCheckRunOptions{Name: "yci/a", HeadSHA: sha, Status: github.Ptr("waiting")}, http.StatusUnprocessableEntity},
		{"output text too long", app, github.CreateCheckRunOptions{Name: "yci/a", HeadSHA: sha,
			Output: &github.CheckRunOutput{Title: github.Ptr("t"), Summary: github.Ptr("s"), Text: github.Ptr(long)}}, http.StatusUnprocessableEntity},
		{"unknown commit", app, github.CreateCheckRunOptions{Name: "yci/a", HeadSHA: strings.Repeat("0", 40)}, http.StatusUnprocessableEntity},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, resp, err := tt.client.Checks.CreateCheckRun(ctx, "acme", "widgets", tt.opts)
			var er *github.ErrorResponse
			if !errors.As(err, &er) || resp.StatusCode != tt.code {
				t.Errorf("got %v, want a %d", err, tt.code)
			}
		})
	}
	if runs := s.CheckRuns("acme", "widgets", sha); len(runs) != 0 {
		t.Errorf("refused requests stored %d check runs", len(runs))
	}
}
