package reconcile_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/reconcile"
)

const pullsRoute = "GET /repos/{owner}/{repo}/pulls"

// queuedHead names one queued head commit, for comparing what was published.
type queuedHead struct {
	Repo    string
	Pull    int
	SHA     string
	Rebuild bool
}

func heads(evs []events.PullEvent) []queuedHead {
	out := make([]queuedHead, 0, len(evs))
	for _, ev := range evs {
		out = append(out, queuedHead{ev.Repo.FullName(), ev.Number, ev.HeadSHA, ev.Rebuild})
	}
	slices.SortFunc(out, func(a, b queuedHead) int {
		if c := strings.Compare(a.Repo, b.Repo); c != 0 {
			return c
		}
		return a.Pull - b.Pull
	})
	return out
}

func TestSweepQueuesExactlyTheMissingBuilds(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testContext(t)
	widgets := e.repoWithPulls(t, "acme", "widgets", 3)
	gadgets := e.repoWithPulls(t, "acme", "gadgets", 1)
	// Pull 2 of widgets was built already, as a webhook would have had it.
	if _, _, err := e.bus.Registry().ClaimBuild(ctx, repo("acme", "widgets"), 2, widgets[1], false); err != nil {
		t.Fatal(err)
	}

	s, _ := e.sweeper(t, []events.Repo{repo("acme", "widgets"), repo("acme", "gadgets")}, nil)
	sum := sweep(t, s)

	want := []queuedHead{
		{"acme/gadgets", 1, gadgets[0], false},
		{"acme/widgets", 1, widgets[0], false},
		{"acme/widgets", 3, widgets[2], false},
	}
	evs := e.queued(t)
	if diff := cmp.Diff(want, heads(evs)); diff != "" {
		t.Errorf("queued heads (-want +got):\n%s", diff)
	}
	for _, ev := range evs {
		if ev.Delivery != reconcile.DeliverySweep || ev.Installation != 0 || ev.Version != events.Version {
			t.Errorf("event %+v: want delivery %q, no installation, version %d", ev, reconcile.DeliverySweep, events.Version)
		}
	}
	if sum.Repositories != 2 || sum.Pulls != 4 || sum.Queued != 3 || sum.AlreadyQueued != 0 {
		t.Errorf("summary %+v: want 2 repositories, 4 pulls, 3 queued", sum)
	}
	if sum.Requests.Total == 0 || !sum.Requests.RateKnown {
		t.Errorf("summary requests %+v: want the requests counted and the rate limit known", sum.Requests)
	}
}

func TestSweepListsEveryPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	shas := e.repoWithPulls(t, "acme", "big", 12)
	e.gh.Install("acme")
	e.appAuth(t)
	s, _ := e.sweeper(t, nil, nil)
	reconcile.SetPageSize(s, 5)
	e.gh.ResetCounts()

	sum := sweep(t, s)

	if sum.Pulls != 12 || sum.Queued != 12 {
		t.Errorf("summary %+v: want 12 pulls seen and queued", sum)
	}
	got := map[string]bool{}
	for _, ev := range e.queued(t) {
		got[ev.HeadSHA] = true
	}
	for i, sha := range shas {
		if !got[sha] {
			t.Errorf("head of pull %d not queued", i+1)
		}
	}
	if n := e.gh.Requests().ByRoute[pullsRoute]; n != 3 {
		t.Errorf("listed pulls with %d requests, want 3 pages of 5", n)
	}
}

func TestSecondSweepQueuesNothingAndIsAnswered304(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testContext(t)
	shas := e.repoWithPulls(t, "acme", "widgets", 2)
	repos := []events.Repo{repo("acme", "widgets")}
	first, _ := e.sweeper(t, repos, nil)
	sweep(t, first)
	queuedBefore := len(e.queued(t))

	t.Run("while_the_events_wait_in_the_queue", func(t *testing.T) {
		e.gh.ResetCounts()
		// A new Sweeper and cache, as the next cron run, a new process.
		second, _ := e.sweeper(t, repos, nil)
		sum := sweep(t, second)
		if got := len(e.queued(t)); got != queuedBefore {
			t.Errorf("queue holds %d events after the second sweep, want still %d", got, queuedBefore)
		}
		if sum.Queued != 0 || sum.AlreadyQueued != 2 {
			t.Errorf("summary %+v: want nothing queued, 2 already queued", sum)
		}
		c := e.gh.Requests()
		if c.ByRoute[pullsRoute] != 1 || c.NotModified != c.Total || c.Counted != 0 {
			t.Errorf("requests %+v: want one pull listing, answered 304, none counted", c)
		}
		if sum.Requests.Counted() != 0 || sum.Requests.NotModified != sum.Requests.Total {
			t.Errorf("summary requests %+v: want all 304", sum.Requests)
		}
	})
	t.Run("after_the_workers_built_them", func(t *testing.T) {
		e.purge(t)
		for i, sha := range shas {
			if _, _, err := e.bus.Registry().ClaimBuild(ctx, repos[0], i+1, sha, false); err != nil {
				t.Fatal(err)
			}
		}
		// The first sweep after the builds reads each head's statuses
		// once, finds them final with no job left, and remembers that.
		third, _ := e.sweeper(t, repos, nil)
		sweep(t, third)
		e.gh.ResetCounts()
		fourth, _ := e.sweeper(t, repos, nil)
		sum := sweep(t, fourth)
		if got := e.queued(t); len(got) != 0 {
			t.Errorf("queued %v, want nothing", heads(got))
		}
		c := e.gh.Requests()
		if c.Total != 1 || c.NotModified != 1 || c.Counted != 0 {
			t.Errorf("requests %+v: want only the pull listing, answered 304", c)
		}
		if sum.Queued != 0 || sum.Pulls != 2 {
			t.Errorf("summary %+v: want 2 pulls seen, nothing queued", sum)
		}
	})
}

func TestSweepRecoversWebhooksLostWhileTheReceiverWasDown(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testContext(t)
	r := repo("acme", "widgets")
	first := e.repoWithPulls(t, "acme", "widgets", 1)[0]
	// The first head was built through a webhook.
	if _, _, err := e.bus.Registry().ClaimBuild(ctx, r, 1, first, false); err != nil {
		t.Fatal(err)
	}
	s, _ := e.sweeper(t, []events.Repo{r}, nil)
	sweep(t, s)
	if got := e.queued(t); len(got) != 0 {
		t.Fatalf("queued %v before anything was missed", heads(got))
	}

	// Then the receiver went down: a push and a new pull request reach
	// nobody.
	pushed, err := e.gh.PushPull("acme", "widgets", 1, map[string]string{"fix.txt": "fix\n"})
	if err != nil {
		t.Fatal(err)
	}
	opened := e.openPull(t, "acme", "widgets", "late")

	next, _ := e.sweeper(t, []events.Repo{r}, nil)
	sweep(t, next)
	want := []queuedHead{{"acme/widgets", 1, pushed, false}, {"acme/widgets", 2, opened, false}}
	if diff := cmp.Diff(want, heads(e.queued(t))); diff != "" {
		t.Errorf("queued heads (-want +got):\n%s", diff)
	}
}

func TestWebhookAndSweepForOneCommitQueueOneBuild(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testContext(t)
	r := repo("acme", "widgets")
	sha := e.repoWithPulls(t, "acme", "widgets", 1)[0]
	// The receiver published the webhook's event just before the sweep.
	hook := events.PullEvent{Repo: r, Number: 1, HeadSHA: sha, Delivery: "72d3162e-cc78-11e3-81ab-4c9367dc0958"}
	if err := e.bus.Queue().PublishPull(ctx, hook); err != nil {
		t.Fatal(err)
	}
	s, _ := e.sweeper(t, []events.Repo{r}, nil)
	sum := sweep(t, s)
	if got := e.queued(t); len(got) != 1 || got[0].Delivery != hook.Delivery {
		t.Errorf("queue holds %+v, want only the webhook's event", got)
	}
	if sum.Queued != 0 || sum.AlreadyQueued != 1 {
		t.Errorf("summary %+v: want the head seen as already queued", sum)
	}
}

func TestSweepDoesNotQueueClosedPulls(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	shas := e.repoWithPulls(t, "acme", "widgets", 2)
	if err := e.gh.ClosePull("acme", "widgets", 1); err != nil {
		t.Fatal(err)
	}
	s, _ := e.sweeper(t, []events.Repo{repo("acme", "widgets")}, nil)
	sum := sweep(t, s)
	want := []queuedHead{{"acme/widgets", 2, shas[1], false}}
	if diff := cmp.Diff(want, heads(e.queued(t))); diff != "" {
		t.Errorf("queued heads (-want +got):\n%s", diff)
	}
	if sum.Pulls != 1 {
		t.Errorf("saw %d pulls, want only the open one", sum.Pulls)
	}
}

func TestSweepReportsRepositoriesItCannotSweep(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sha := e.repoWithPulls(t, "acme", "widgets", 1)[0]
	s, _ := e.sweeper(t, []events.Repo{repo("acme", "gone"), repo("acme", "widgets")}, nil)

	sum, err := s.Sweep(testContext(t))

	if !errors.Is(err, reconcile.ErrIncomplete) {
		t.Errorf("error %v, want ErrIncomplete", err)
	}
	if len(sum.Failed) != 1 || sum.Failed[0].Repo != "acme/gone" {
		t.Errorf("failed %+v, want acme/gone", sum.Failed)
	}
	// The failure does not stop the other repositories.
	if got := heads(e.queued(t)); len(got) != 1 || got[0].SHA != sha || sum.Repositories != 1 {
		t.Errorf("queued %v with %d repositories swept, want acme/widgets#1", got, sum.Repositories)
	}
}

func TestAppSweepsEveryInstallationsRepositories(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	widgets := e.repoWithPulls(t, "acme", "widgets", 1)
	gadgets := e.repoWithPulls(t, "acme", "gadgets", 1)
	tools := e.repoWithPulls(t, "bob", "tools", 1)
	e.repoWithPulls(t, "carol", "uninstalled", 1)
	acme := e.gh.Install("acme", "widgets", "gadgets")
	bob := e.gh.Install("bob")
	e.appAuth(t)

	t.Run("every_repository_of_every_installation", func(t *testing.T) {
		s, _ := e.sweeper(t, nil, nil)
		sum := sweep(t, s)
		got := map[string]int64{}
		for _, ev := range e.queued(t) {
			got[ev.Repo.FullName()+"@"+ev.HeadSHA] = ev.Installation
		}
		want := map[string]int64{
			"acme/gadgets@" + gadgets[0]: acme,
			"acme/widgets@" + widgets[0]: acme,
			"bob/tools@" + tools[0]:      bob,
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("queued events' installations (-want +got):\n%s", diff)
		}
		if sum.Repositories != 3 {
			t.Errorf("swept %d repositories, want 3", sum.Repositories)
		}
	})
	t.Run("a_listed_repository_with_its_installation", func(t *testing.T) {
		late := e.openPull(t, "bob", "tools", "late")
		s, _ := e.sweeper(t, []events.Repo{repo("bob", "tools")}, nil)
		sum := sweep(t, s)
		var got []events.PullEvent
		for _, ev := range e.queued(t) {
			if ev.HeadSHA == late {
				got = append(got, ev)
			}
		}
		if len(got) != 1 || got[0].Installation != bob || sum.Repositories != 1 {
			t.Errorf("queued %+v, want bob/tools#2 with installation %d", got, bob)
		}
	})
}

func TestParseRepositories(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    []events.Repo
		wantErr bool
	}{
		{"spaces_and_newlines_separate", " acme/widgets\tbob/tools.go\n", []events.Repo{repo("acme", "widgets"), repo("bob", "tools.go")}, false},
		{"duplicates_count_once", "acme/widgets acme/widgets", []events.Repo{repo("acme", "widgets")}, false},
		{"empty_is_none", "  ", nil, false},
		{"missing_slash_is_refused", "acme", nil, true},
		{"extra_slash_is_refused", "acme/widgets/x", nil, true},
		{"subject_wildcards_are_refused", "acme/*", nil, true},
		{"dot_dot_is_refused", "acme/..", nil, true},
		{"underscore_owner_is_accepted_as_everywhere", "my_org/widgets", []events.Repo{repo("my_org", "widgets")}, false},
		{"dotted_owner_is_refused_as_everywhere", "my.org/widgets", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := reconcile.ParseRepositories(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("error %v, want error %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); !tt.wantErr && diff != "" {
				t.Errorf("repositories (-want +got):\n%s", diff)
			}
		})
	}
}

// cancellingQueue is the real queue, which cancels the sweep's context
// after the first event it publishes, as SIGTERM would mid-sweep.
type cancellingQueue struct {
	sweepQueue
	cancel context.CancelFunc
}

func (q cancellingQueue) PublishPull(ctx context.Context, ev events.PullEvent) error {
	defer q.cancel()
	return q.sweepQueue.PublishPull(ctx, ev)
}

func TestCancelledSweepStopsBetweenRepositoriesAndReleasesTheLock(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	repos := []events.Repo{repo("acme", "a"), repo("acme", "b"), repo("acme", "c")}
	for _, r := range repos {
		e.repoWithPulls(t, r.Owner, r.Name, 1)
	}
	ctx, cancel := context.WithCancel(testContext(t))
	s, _ := e.sweeper(t, repos, func(o *reconcile.Options, _ *reconcile.CacheOptions) {
		o.Queue = cancellingQueue{sweepQueue{e.bus.Queue(), e.bus.Registry()}, cancel}
	})

	sum, err := s.Sweep(ctx)

	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
	if !sum.Interrupted || sum.Queued != 1 || len(sum.NotReached) == 0 {
		t.Errorf("summary %+v: want an interrupted sweep with one build queued and repositories not reached", sum)
	}
	if _, err := e.store.Acquire(testContext(t), reconcile.LockOptions{Holder: "next"}); err != nil {
		t.Errorf("the next sweep cannot take the lock: %v", err)
	}
}
