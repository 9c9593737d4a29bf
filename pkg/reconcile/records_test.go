package reconcile_test

import (
	"strings"
	"testing"
	"time"

	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/githubauth"
	"github.com/yourci/yourci/pkg/projector"
	"github.com/yourci/yourci/pkg/reconcile"
	"github.com/yourci/yourci/pkg/status"
)

// projectedBuild claims build 1 of r's pull 1 at sha and stores its record
// as a worker under a projector would: test "unit" passed, test "slow" in
// the given state, every part shown as it stands. It returns the record.
func (e *env) projectedBuild(t testing.TB, r events.Repo, sha string, installation int64, slow events.TestState) events.BuildRecord {
	t.Helper()
	ctx := testContext(t)
	if _, _, err := e.bus.Registry().ClaimBuild(ctx, r, 1, sha, false); err != nil {
		t.Fatal(err)
	}
	start := time.Now().UTC()
	rec, err := e.bus.Records().UpdateBuild(ctx, events.BuildKey{Repo: r, Pull: 1, Build: 1}, func(rec *events.BuildRecord) error {
		rec.SHA, rec.Projected, rec.Installation = sha, true, installation
		rec.Tests = []events.TestRecord{
			{Name: "unit", State: events.TestPassed, Description: "passed in 1s",
				Attempts: []events.AttemptRecord{{Number: 1, Start: start, Duration: time.Second, Outcome: "success"}}, Updated: start},
			{Name: "slow", State: slow, Description: "running (attempt 1/1)",
				Attempts: []events.AttemptRecord{{Number: 1, Start: start}}, Updated: start},
		}
		rec.Shown = map[string]events.Shown{}
		for _, st := range projector.Project(*rec, "") {
			rec.Shown[st.Part] = events.Shown{Mark: st.Mark, At: start}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// record reads build 1 of r's pull 1.
func (e *env) record(t testing.TB, r events.Repo) events.BuildRecord {
	t.Helper()
	rec, err := e.bus.Records().BuildRecord(testContext(t), events.BuildKey{Repo: r, Pull: 1, Build: 1})
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// rebuilds are the rebuild events queued.
func (e *env) rebuilds(t testing.TB) []events.PullEvent {
	var out []events.PullEvent
	for _, ev := range e.queued(t) {
		if ev.Rebuild {
			out = append(out, ev)
		}
	}
	return out
}

// TestSweepRepairsALostProjectedBuildThroughItsRecord attacks the repair
// of a build whose record a projector shows, under App auth: a test left
// running with no job is ended in the record and the head rebuilt; a job
// in the queue, an attempt a worker still runs, or a recent change, holds
// the repair back; past the
// rebuilds the test ends errored with no rebuild. The sweep never writes
// GitHub itself: the projector shows what the record now says.
func TestSweepRepairsALostProjectedBuildThroughItsRecord(t *testing.T) {
	t.Parallel()
	r := repo("acme", "widgets")
	tests := []struct {
		name        string
		now         func() time.Time
		live        bool // a job of the build waits in the stream
		running     bool // a worker records the attempt as running, its message gone
		maxRebuilds int
		wantState   events.TestState
		wantRebuild bool
		wantDesc    string
	}{
		{name: "lost_test_is_ended_and_rebuilt", now: later, maxRebuilds: 2,
			wantState: events.TestErrored, wantRebuild: true, wantDesc: "the sweep queued a rebuild"},
		{name: "a_queued_job_holds_it_back", now: later, live: true, maxRebuilds: 2, wantState: events.TestRunning},
		{name: "an_attempt_still_running_holds_it_back", now: later, running: true, maxRebuilds: 2, wantState: events.TestRunning},
		{name: "a_recent_change_holds_it_back", now: time.Now, maxRebuilds: 2, wantState: events.TestRunning},
		{name: "past_the_rebuilds_it_ends_errored", now: later, maxRebuilds: 0,
			wantState: events.TestErrored, wantDesc: "after 0 rebuilds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			sha := e.repoWithPulls(t, r.Owner, r.Name, 1)[0]
			inst := e.gh.Install(r.Owner)
			e.appAuth(t)
			e.projectedBuild(t, r, sha, inst, events.TestRunning)
			if tt.live {
				job := events.TestJob{Repo: r, Number: 1, HeadSHA: sha, Build: 1, Attempt: 2,
					Test: events.TestSpec{Name: "slow", Command: "./test.sh"}, NotBefore: time.Now().Add(time.Hour)}
				if err := e.bus.Queue().PublishTest(testContext(t), job); err != nil {
					t.Fatal(err)
				}
			}
			if tt.running {
				a := events.RunningAttempt{Repo: r, Number: 1, HeadSHA: sha, Build: 1, Test: "slow", Attempt: 1,
					Worker: "box-a", Started: time.Now()}
				done, err := e.bus.Attempts().MarkRunning(testContext(t), a)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(done)
			}
			s, _ := e.sweeper(t, []events.Repo{r}, func(o *reconcile.Options, _ *reconcile.CacheOptions) {
				o.Now, o.Records, o.MaxRebuilds = tt.now, e.bus.Records(), tt.maxRebuilds
				o.Backlog = reconcile.NewStreamBacklog(e.bus.Queue()).WithRunning(e.bus.Board())
			})

			sum := sweep(t, s)

			rec := e.record(t, r)
			slow, unit := rec.Test("slow"), rec.Test("unit")
			if slow.State != tt.wantState || !strings.Contains(slow.Description, tt.wantDesc) {
				t.Errorf("slow: %s %q, want %s containing %q", slow.State, slow.Description, tt.wantState, tt.wantDesc)
			}
			if unit.State != events.TestPassed || unit.Description != "passed in 1s" {
				t.Errorf("unit, which finished, changed: %+v", unit)
			}
			rebuilds := e.rebuilds(t)
			if got := len(rebuilds) == 1 && rebuilds[0].Delivery == "reconcile-repair-1" && rebuilds[0].Installation == inst; got != tt.wantRebuild || len(rebuilds) > 1 {
				t.Errorf("rebuilds queued %+v, want one: %v", rebuilds, tt.wantRebuild)
			}
			if (sum.Rebuilt == 1) != tt.wantRebuild {
				t.Errorf("summary says %d rebuilt, want a rebuild: %v", sum.Rebuilt, tt.wantRebuild)
			}
			if n := len(e.gh.CheckRunWrites(r.Owner, r.Name, sha)) + len(e.gh.Statuses(r.Owner, r.Name, sha)); n != 0 {
				t.Errorf("the sweep wrote GitHub %d times; the projector writes what the record says", n)
			}
		})
	}
}

// TestSweepShowsAgainWhatGitHubChangedBehindTheRecord attacks the
// comparison in both auth modes: a part changed on GitHub behind the
// record's back (a check run or status set to failure by hand) has its
// Shown mark cleared so that the projector writes it again; parts GitHub
// shows as recorded keep theirs, and a second sweep, before the projector
// wrote, clears nothing more.
func TestSweepShowsAgainWhatGitHubChangedBehindTheRecord(t *testing.T) {
	t.Parallel()
	r := repo("acme", "widgets")
	for _, checks := range []bool{false, true} {
		name := "statuses"
		if checks {
			name = "check_runs"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			sha := e.repoWithPulls(t, r.Owner, r.Name, 1)[0]
			var inst int64
			if checks {
				inst = e.gh.Install(r.Owner)
				e.appAuth(t)
			}
			rec := e.projectedBuild(t, r, sha, inst, events.TestPassed)
			e.showAs(t, rec, checks, map[string]status.State{"unit": status.Failure})
			tweak := func(o *reconcile.Options, _ *reconcile.CacheOptions) { o.Now, o.Records = later, e.bus.Records() }

			first, _ := e.sweeper(t, []events.Repo{r}, tweak)
			sum := sweep(t, first)

			after := e.record(t, r)
			for part, was := range rec.Shown {
				changed := after.Shown[part].Mark != was.Mark
				if changed != (part == "unit") {
					t.Errorf("part %q: mark %q after the sweep, was %q; want only unit cleared", part, after.Shown[part].Mark, was.Mark)
				}
			}
			if sum.Reshown != 1 || sum.Rebuilt != 0 || len(e.rebuilds(t)) != 0 {
				t.Errorf("summary %+v: want one part shown again and nothing rebuilt", sum)
			}
			second, _ := e.sweeper(t, []events.Repo{r}, tweak)
			if sum := sweep(t, second); sum.Reshown != 0 {
				t.Errorf("a second sweep marked %d parts again; the projector owes them already", sum.Reshown)
			}
		})
	}
}

// showAs writes rec's parts to GitHub as the projector would have (check
// runs when checks, statuses otherwise), except that tests named in
// instead get that state.
func (e *env) showAs(t testing.TB, rec events.BuildRecord, checks bool, instead map[string]status.State) {
	t.Helper()
	ctx := testContext(t)
	auth, err := githubauth.New(e.auth)
	if err != nil {
		t.Fatal(err)
	}
	client, err := auth.ForInstallation(ctx, rec.Installation)
	if err != nil {
		t.Fatal(err)
	}
	var w status.Writer = status.StatusWriter{Client: client.Repositories}
	if checks {
		w = status.CheckRunWriter{Client: client.Checks, IDs: status.NewCheckRunIDs()}
	}
	for _, st := range projector.Project(rec, "") {
		s := st.Status
		if state, ok := instead[st.Part]; ok {
			s.State = state
		}
		s.New = true
		if _, err := w.Write(ctx, s); err != nil {
			t.Fatalf("showing %s: %v", status.Context(st.Part), err)
		}
	}
}

// TestIdleSweepOfProjectedHeadsCostsOnly304s attacks the price of
// comparing projected heads on every sweep (they are never settled): when
// GitHub shows what the record says, a new sweep (a new process, the cache
// in JetStream) spends only conditional requests that GitHub answers 304
// and does not count, in both auth modes, and marks nothing.
func TestIdleSweepOfProjectedHeadsCostsOnly304s(t *testing.T) {
	t.Parallel()
	r := repo("acme", "widgets")
	for _, checks := range []bool{false, true} {
		name := "statuses"
		if checks {
			name = "check_runs"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			sha := e.repoWithPulls(t, r.Owner, r.Name, 1)[0]
			var inst int64
			if checks {
				inst = e.gh.Install(r.Owner)
				e.appAuth(t)
			}
			rec := e.projectedBuild(t, r, sha, inst, events.TestPassed)
			e.showAs(t, rec, checks, nil)
			tweak := func(o *reconcile.Options, _ *reconcile.CacheOptions) { o.Now, o.Records = later, e.bus.Records() }
			first, _ := e.sweeper(t, []events.Repo{r}, tweak)
			if sum := sweep(t, first); sum.Reshown != 0 || sum.Rebuilt != 0 {
				t.Fatalf("first sweep %+v: want nothing to repair", sum)
			}

			e.gh.ResetCounts()
			second, _ := e.sweeper(t, []events.Repo{r}, tweak)
			sum := sweep(t, second)

			c := e.gh.Requests()
			t.Logf("idle sweep of one projected head: %d requests, %d answered 304, %d counted", c.Total, c.NotModified, c.Counted)
			// A new process under App auth first asks for an installation
			// token: App auth's price, paid by any sweep.
			tokens := c.ByRoute["POST /app/installations/{id}/access_tokens"]
			headRoute := "GET /repos/{owner}/{repo}/commits/{ref}/status"
			if checks {
				headRoute = "GET /repos/{owner}/{repo}/commits/{ref}/check-runs"
			}
			if c.ByRoute[headRoute] != 1 || c.NotModified != c.Total-tokens || c.Counted != tokens {
				t.Errorf("requests %+v: want one read of the head and every read answered 304", c)
			}
			if sum.Reshown != 0 || sum.Rebuilt != 0 {
				t.Errorf("idle sweep %+v: want nothing marked or rebuilt", sum)
			}
		})
	}
}
