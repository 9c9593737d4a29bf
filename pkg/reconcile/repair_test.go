package reconcile_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-github/v88/github"

	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/reconcile"
)

// setStatus posts a commit status as a worker would.
func (e *env) setStatus(t testing.TB, r events.Repo, sha, context, state string) {
	t.Helper()
	base := e.gh.URL() + "/"
	client, err := github.NewClient(github.WithURLs(&base, &base), github.WithAuthToken(e.gh.Token()), github.WithTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	st := github.RepoStatus{State: github.Ptr(state), Context: github.Ptr(context), Description: github.Ptr("running (attempt 1/1)"),
		TargetURL: github.Ptr("https://ci.example.com/" + r.FullName() + "/pulls/1/1/" + context + "/out.txt")}
	if _, _, err := client.Repositories.CreateStatus(testContext(t), r.Owner, r.Name, sha, st); err != nil {
		t.Fatal(err)
	}
}

// later is a clock three hours ahead, past the default StaleAfter.
func later() time.Time { return time.Now().Add(3 * time.Hour) }

func TestPendingStatusesWithNoJob(t *testing.T) {
	t.Parallel()
	r := repo("acme", "widgets")
	// setup gives a head commit built once (build 1), with statuses left
	// as given, and returns its sha.
	setup := func(t *testing.T, e *env, states map[string]string) string {
		sha := e.repoWithPulls(t, r.Owner, r.Name, 1)[0]
		if _, _, err := e.bus.Registry().ClaimBuild(testContext(t), r, 1, sha, false); err != nil {
			t.Fatal(err)
		}
		for ctx, state := range states {
			e.setStatus(t, r, sha, ctx, state)
		}
		return sha
	}
	tests := []struct {
		name  string
		now   func() time.Time
		live  bool // a test job of the build waits in the queue
		other bool // the pending status is not one of ours
		want  int  // rebuilds queued
	}{
		{name: "recent_pending_is_left_alone", now: time.Now},
		{name: "old_pending_with_a_queued_job_is_left_alone", now: later, live: true},
		{name: "old_pending_of_another_ci_is_left_alone", now: later, other: true},
		{name: "old_pending_with_no_job_is_rebuilt", now: later, want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			context := "yci/foo-x"
			if tt.other {
				context = "travis/ci"
			}
			sha := setup(t, e, map[string]string{context: "pending", "yci/bar-y": "success"})
			if tt.live {
				job := events.TestJob{Repo: r, Number: 1, HeadSHA: sha, Build: 1, Attempt: 2,
					Test: events.TestSpec{Name: "foo-x", Command: "./test.sh"}, NotBefore: time.Now().Add(time.Hour)}
				if err := e.bus.Queue().PublishTest(testContext(t), job); err != nil {
					t.Fatal(err)
				}
			}
			s, _ := e.sweeper(t, []events.Repo{r}, func(o *reconcile.Options, _ *reconcile.CacheOptions) { o.Now = tt.now })

			sum := sweep(t, s)

			var rebuilds []events.PullEvent
			for _, ev := range e.queued(t) {
				if ev.Rebuild {
					rebuilds = append(rebuilds, ev)
				}
			}
			if len(rebuilds) != tt.want || sum.Rebuilt != tt.want {
				t.Fatalf("queued rebuilds %+v, summary says %d; want %d", rebuilds, sum.Rebuilt, tt.want)
			}
			for _, ev := range rebuilds {
				if ev.HeadSHA != sha || ev.Number != 1 || ev.Delivery != "reconcile-repair-1" {
					t.Errorf("rebuild event %+v: want pull 1 at %s, delivery reconcile-repair-1", ev, sha)
				}
			}
		})
	}
}

func TestRepairGivesUpWithAnErrorStatusAfterMaxRebuilds(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testContext(t)
	r := repo("acme", "widgets")
	sha := e.repoWithPulls(t, r.Owner, r.Name, 1)[0]
	if _, _, err := e.bus.Registry().ClaimBuild(ctx, r, 1, sha, false); err != nil {
		t.Fatal(err)
	}
	e.setStatus(t, r, sha, "yci/foo-x", "pending")
	e.setStatus(t, r, sha, "yci/bar-y", "success")
	newSweeper := func() *reconcile.Sweeper {
		s, _ := e.sweeper(t, []events.Repo{r}, func(o *reconcile.Options, _ *reconcile.CacheOptions) {
			o.Now = later
			o.MaxRebuilds = 1
		})
		return s
	}

	if sum := sweep(t, newSweeper()); sum.Rebuilt != 1 {
		t.Fatalf("first sweep: %+v, want one rebuild", sum)
	}
	// The rebuild took build 2 and then its jobs were lost as well.
	if _, _, err := e.bus.Registry().ClaimBuild(ctx, r, 1, sha, true); err != nil {
		t.Fatal(err)
	}
	e.purge(t)

	sum := sweep(t, newSweeper())
	if sum.Rebuilt != 0 || sum.Errored != 1 {
		t.Fatalf("second sweep: %+v, want no rebuild and one head set to error", sum)
	}
	latest := e.gh.LatestStatuses(r.Owner, r.Name, sha)
	foo := latest["yci/foo-x"]
	if foo.GetState() != "error" || !strings.Contains(foo.GetDescription(), "left pending") ||
		!strings.Contains(foo.GetTargetURL(), "/foo-x/out.txt") {
		t.Errorf("yci/foo-x is %s %q → %s; want error saying it was left pending, linking the log",
			foo.GetState(), foo.GetDescription(), foo.GetTargetURL())
	}
	if bar := latest["yci/bar-y"]; bar.GetState() != "success" {
		t.Errorf("yci/bar-y is %s, want its success untouched", bar.GetState())
	}
	if got := e.queued(t); len(got) != 0 {
		t.Errorf("queued %v, want nothing more", heads(got))
	}

	// Now every status is final: the next sweeps leave the head alone.
	if sum := sweep(t, newSweeper()); sum.Rebuilt != 0 || sum.Errored != 0 {
		t.Errorf("third sweep: %+v, want nothing to repair", sum)
	}
}

// -max-rebuilds 0 and Options.MaxRebuilds 0 mean the same: never rebuild.
func TestZeroMaxRebuildsSetsErrorAtOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testContext(t)
	r := repo("acme", "widgets")
	sha := e.repoWithPulls(t, r.Owner, r.Name, 1)[0]
	if _, _, err := e.bus.Registry().ClaimBuild(ctx, r, 1, sha, false); err != nil {
		t.Fatal(err)
	}
	e.setStatus(t, r, sha, "yci/foo-x", "pending")
	s, _ := e.sweeper(t, []events.Repo{r}, func(o *reconcile.Options, _ *reconcile.CacheOptions) {
		o.Now = later
		o.MaxRebuilds = 0
	})
	if sum := sweep(t, s); sum.Rebuilt != 0 || sum.Errored != 1 {
		t.Errorf("sweep: %+v, want no rebuild and one head set to error", sum)
	}
	if got := e.queued(t); len(got) != 0 {
		t.Errorf("queued %v, want nothing", heads(got))
	}
}
