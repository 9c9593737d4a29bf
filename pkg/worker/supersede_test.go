package worker

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"github.com/google/go-github/v88/github"

	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/fakegithub"
	"github.com/yourci/yourci/pkg/projector"
)

// appGitHub authenticates as the stand-in's GitHub App, with an
// installation token per job, as the worker does under App auth: tests
// become check runs. Git has no credentials: the jobs these tests give it
// are dropped before anything is fetched.
type appGitHub struct{ gh *fakegithub.Server }

func (a appGitHub) Installation(_ context.Context, id int64) (Installation, error) {
	c, err := a.client(id)
	if err != nil {
		return Installation{}, err
	}
	return Installation{Pulls: c, Permissions: c.Repositories, Issues: c.Issues}, nil
}

// Client is projector.Clients for the stand-in's App: check runs.
func (a appGitHub) Client(_ context.Context, id int64) (projector.Client, error) {
	c, err := a.client(id)
	if err != nil {
		return projector.Client{}, err
	}
	return projector.Client{Statuses: c.Repositories, Checks: c.Checks}, nil
}

func (a appGitHub) client(id int64) (*github.Client, error) {
	atr, err := ghinstallation.NewAppsTransport(http.DefaultTransport, a.gh.AppID(), a.gh.AppPrivateKeyPEM())
	if err != nil {
		return nil, err
	}
	atr.BaseURL = a.gh.URL()
	base := a.gh.URL() + "/"
	return github.NewClient(github.WithHTTPClient(&http.Client{Transport: ghinstallation.NewFromAppsTransport(atr, id)}),
		github.WithURLs(&base, &base))
}

func withApp(o *Options) { o.GitHub = appGitHub{o.GitHub.(tokenGitHub).gh} }

// queueSupersededTest opens a pull request, pushes a newer commit to it and
// then queues a test of the older head, as if queued before the push. It
// returns the older head and the newer one.
func (r *rig) queueSupersededTest(t *testing.T, installation int64) (old, newer string) {
	t.Helper()
	pr := r.openPull(t, map[string]string{
		".yci.py": "from yci.run import Bash\n\ndef test_generator(build_id, pull):\n    yield Bash('true', name='t')\n",
	})
	old = pr.GetHead().GetSHA()
	newer, err := r.gh.PushPull(owner, repoName, pr.GetNumber(), map[string]string{"x": "y\n"})
	if err != nil {
		t.Fatal(err)
	}
	err = r.bus.Queue().PublishTest(context.Background(), events.TestJob{
		Version: events.Version, Repo: events.Repo{Owner: owner, Name: repoName}, Installation: installation,
		Number: pr.GetNumber(), HeadSHA: old, Build: 1, Attempt: 1,
		Test: events.TestSpec{Name: "t", Command: "true"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return old, newer
}

// TestSupersededHeadIsNotPaintedBroken: the summary of a head a newer push
// replaced names the newer commit, in the words its tests use, and under
// App auth its test and summary check runs conclude cancelled, not failed.
func TestSupersededHeadIsNotPaintedBroken(t *testing.T) {
	t.Parallel()
	t.Run("status_summary_says_superseded", func(t *testing.T) {
		t.Parallel()
		r := newRig(t)
		old, newer := r.queueSupersededTest(t, 0)
		final := r.waitFinal(t, old, "yci/t", "yci")
		if s := final["yci/t"]; s.GetState() != "error" || s.GetDescription() != "not run: superseded by "+newer[:7] {
			t.Errorf("test: %s %q, want error %q", s.GetState(), s.GetDescription(), "not run: superseded by "+newer[:7])
		}
		// Statuses have no cancelled state: error is the closest that does
		// not claim the commit passed.
		if s := final["yci"]; s.GetState() != "error" || s.GetDescription() != "superseded by "+newer[:7] {
			t.Errorf("summary: %s %q, want error %q", s.GetState(), s.GetDescription(), "superseded by "+newer[:7])
		}
	})
	t.Run("app_check_runs_conclude_cancelled", func(t *testing.T) {
		t.Parallel()
		r := newRig(t, withApp)
		old, newer := r.queueSupersededTest(t, r.gh.Install(owner))
		runs := r.waitCheckRuns(t, old, "yci/t", "yci")
		for name, want := range map[string]string{"yci/t": "not run: superseded by " + newer[:7], "yci": "superseded by " + newer[:7]} {
			run := runs[name]
			if run.GetConclusion() != "cancelled" || run.GetOutput().GetTitle() != want {
				t.Errorf("%s: %s %q, want cancelled %q", name, run.GetConclusion(), run.GetOutput().GetTitle(), want)
			}
		}
		if st := r.gh.Statuses(owner, repoName, old); len(st) != 0 {
			t.Errorf("%d commit statuses under App auth, want none: %v", len(st), st)
		}
	})
}

// waitCheckRuns waits until every check run in want is completed on sha
// and returns the latest of each name.
func (r *rig) waitCheckRuns(t *testing.T, sha string, want ...string) map[string]github.CheckRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	runs := map[string]github.CheckRun{}
	err := r.gh.WaitCheckRuns(ctx, owner, repoName, sha, func(all []github.CheckRun) bool {
		clear(runs)
		for _, run := range all { // oldest first: the newest of a name wins
			runs[run.GetName()] = run
		}
		for _, name := range want {
			if run := runs[name]; run.GetStatus() != "completed" {
				return false
			}
		}
		return true
	})
	if err != nil {
		var have []string
		for name, run := range runs {
			have = append(have, name+"="+run.GetStatus()+"/"+run.GetConclusion())
		}
		t.Fatalf("check runs %v never completed (%v); have %s", want, err, strings.Join(have, ", "))
	}
	return runs
}
