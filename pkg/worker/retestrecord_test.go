package worker

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-github/v88/github"

	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/events/memrecords"
	"github.com/yourci/yourci/pkg/pipeline"
)

// recordOf is a build record of repo#4 build 2 at headSHA with tests in
// the given states.
func recordOf(states map[string]events.TestState) events.BuildRecord {
	rec := events.BuildRecord{Key: events.BuildKey{Repo: events.Repo{Owner: owner, Name: repoName}, Pull: 4, Build: 2}, SHA: headSHA}
	for _, name := range []string{"a", "b", "c", "d"} {
		if s, ok := states[name]; ok {
			rec.Tests = append(rec.Tests, events.TestRecord{Name: name, State: s,
				Attempts: []events.AttemptRecord{{Number: 1, Outcome: string(s)}}})
		}
	}
	return rec
}

// storeWith is an in-memory record store holding recs.
func storeWith(t *testing.T, recs ...events.BuildRecord) *memrecords.Store {
	t.Helper()
	s := memrecords.New()
	for _, rec := range recs {
		if _, err := s.UpdateBuild(t.Context(), rec.Key, func(r *events.BuildRecord) error { *r = rec; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// retestFakes is GitHub and the queue for a /retest of pull 4, whose head
// headSHA has build 2 with tests a, b, c and d.
func retestFakes() *commandFakes {
	f := &commandFakes{permission: "write", builds: map[string]int{headSHA: 2},
		pull: &github.PullRequest{State: github.Ptr("open"), Head: &github.PullRequestBranch{SHA: github.Ptr(headSHA)},
			Base: &github.PullRequestBranch{Ref: github.Ptr("main")}}}
	for _, n := range []string{"a", "b", "c", "d"} {
		f.tests = append(f.tests, pipeline.Test{Name: n, Command: "./test.sh"})
	}
	return f
}

func published(f *commandFakes) []string {
	var out []string
	for _, j := range f.published {
		out = append(out, j.Test.Name+"#"+strings.Repeat("r", j.Rerun))
	}
	return out
}

// TestRetestReadsTheRecord: what a bare /retest runs, and what a named one
// refuses as busy, is decided by the build record alone; the worker has no
// GitHub read left to consult.
func TestRetestReadsTheRecord(t *testing.T) {
	t.Parallel()
	repo := events.Repo{Owner: owner, Name: repoName}
	tests := []struct {
		name    string
		records []events.BuildRecord
		cmd     events.Command
		want    []string // test#r per re-run number
		reply   string
	}{
		{"bare_retest_runs_what_the_record_says_failed",
			[]events.BuildRecord{recordOf(map[string]events.TestState{
				"a": events.TestPassed, "b": events.TestFailed, "c": events.TestErrored, "d": events.TestSuperseded})},
			events.Command{Kind: events.Retest}, []string{"b#r", "c#r"}, ""},
		{"named_test_the_record_shows_running_is_busy",
			[]events.BuildRecord{recordOf(map[string]events.TestState{"a": events.TestRunning})},
			events.Command{Kind: events.Retest, Tests: []string{"a"}}, nil, "still queued or running"},
		{"another_builds_failures_do_not_count",
			[]events.BuildRecord{func() events.BuildRecord {
				r := recordOf(map[string]events.TestState{"a": events.TestFailed})
				r.Key.Build = 1
				return r
			}()},
			events.Command{Kind: events.Retest}, nil, "nothing to re-run"},
		{"no_record_yet_means_nothing_failed", nil, events.Command{Kind: events.Retest}, nil, "nothing to re-run"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := retestFakes()
			h := commandHandlerOf(t, f, BuildTrusted)
			h.records = storeWith(t, tc.records...)
			ev := events.CommandEvent{Repo: repo, Number: 4, CommentID: 9, Author: "carol", Delivery: "d-1", Commands: []events.Command{tc.cmd}}
			if err := h.handle(t.Context(), quiet, ev); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, published(f)); diff != "" {
				t.Errorf("re-runs queued (-want +got):\n%s", diff)
			}
			switch {
			case tc.reply == "" && len(f.replies) != 0:
				t.Errorf("replies %q, want none", f.replies)
			case tc.reply != "" && (len(f.replies) != 1 || !strings.Contains(f.replies[0], tc.reply)):
				t.Errorf("replies %q, want one saying %q", f.replies, tc.reply)
			}
		})
	}
}

// TestRetestQueuesFromTheRecord: a /retest's re-runs are in the record,
// queued, before they are published, with the re-run's own log; a second
// /retest then finds them busy, and a third after they failed again
// numbers them 2.
func TestRetestQueuesFromTheRecord(t *testing.T) {
	t.Parallel()
	repo := events.Repo{Owner: owner, Name: repoName}
	key := events.BuildKey{Repo: repo, Pull: 4, Build: 2}
	f := retestFakes()
	h := commandHandlerOf(t, f, BuildTrusted)
	store := storeWith(t, recordOf(map[string]events.TestState{"a": events.TestPassed, "b": events.TestFailed}))
	h.records = store
	retest := func(comment int64, delivery string) {
		t.Helper()
		ev := events.CommandEvent{Repo: repo, Number: 4, CommentID: comment, Author: "carol", Delivery: delivery,
			Commands: []events.Command{{Kind: events.Retest}}}
		if err := h.handle(t.Context(), quiet, ev); err != nil {
			t.Fatal(err)
		}
	}
	retest(1, "d-1")
	rec, err := store.BuildRecord(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	b := rec.Test("b")
	if b.State != events.TestQueued || b.Rerun != 1 || b.Description != "queued: re-run 1 asked by @carol" ||
		b.LogURL != httpRoot+"acme/widget.go/pulls/4/2/b/rerun-1/out.txt" {
		t.Errorf("b after /retest: %+v", *b)
	}
	retest(2, "d-2")
	if diff := cmp.Diff([]string{"b#r"}, published(f)); diff != "" {
		t.Errorf("re-runs after a second /retest (-want +got):\n%s", diff)
	}
	if len(f.replies) != 1 || !strings.Contains(f.replies[0], "nothing to re-run") {
		t.Errorf("the second /retest got replies %q, want nothing to re-run", f.replies)
	}
	if _, err := store.UpdateBuild(t.Context(), key, func(r *events.BuildRecord) error {
		tr := r.Test("b")
		tr.State, tr.Attempts = events.TestFailed, append(tr.Attempts, events.AttemptRecord{Rerun: 1, Number: 1, Outcome: "failed"})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	retest(3, "d-3")
	if diff := cmp.Diff([]string{"b#r", "b#rr"}, published(f)); diff != "" {
		t.Errorf("re-runs after b failed again (-want +got):\n%s", diff)
	}
	if got := f.evaluations.Load(); got != 3 {
		t.Errorf(".yci.py evaluated %d times for three /retest, want 3", got)
	}
}

// TestQueuedRerunsAreRecorded: a command delivered again after its re-run
// started leaves the newer state alone.
func TestQueuedRerunsAreRecorded(t *testing.T) {
	t.Parallel()
	repo := events.Repo{Owner: owner, Name: repoName}
	key := events.BuildKey{Repo: repo, Pull: 4, Build: 2}
	ev := events.CommandEvent{Repo: repo, Number: 4, Author: "carol"}
	rec := recordOf(map[string]events.TestState{"a": events.TestFailed, "b": events.TestFailed})
	// b's re-run 1 already runs: this is the command delivered again.
	rec.Tests[1].State = events.TestRunning
	rec.Tests[1].Attempts = append(rec.Tests[1].Attempts, events.AttemptRecord{Rerun: 1, Number: 1})
	store := storeWith(t, rec)
	h := commandHandlerOf(t, &commandFakes{}, BuildTrusted)
	h.records = store
	a := &rerunAction{build: 2, sha: headSHA}
	started, err := h.recordRerunsQueued(t.Context(), ev, 4, a, map[string]int{"a": 1, "b": 1})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]bool{"b": true}, started); diff != "" {
		t.Errorf("re-runs already started (-want +got):\n%s", diff)
	}
	got, err := store.BuildRecord(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	if a := got.Test("a"); a.State != events.TestQueued || !strings.Contains(a.Description, "re-run 1 asked by @carol") {
		t.Errorf("a after its re-run was queued: %s %q, want queued, asked by @carol", a.State, a.Description)
	}
	if b := got.Test("b"); b.State != events.TestRunning {
		t.Errorf("b, whose re-run already runs, became %s", b.State)
	}
	if _, err := h.recordRerunsQueued(t.Context(), ev, 4, a, map[string]int{"b": 1}); err != nil {
		t.Errorf("a change with nothing to record = %v, want nil", err)
	}
}

// TestSuitePullFromTheRecords: "Re-run all checks" finds its pull request
// in the build records of the suite's commit.
func TestSuitePullFromTheRecords(t *testing.T) {
	t.Parallel()
	repo := events.Repo{Owner: owner, Name: repoName}
	other := strings.Repeat("e", 40)
	recs := []events.BuildRecord{
		{Key: events.BuildKey{Repo: repo, Pull: 6, Build: 1}, SHA: other},
		{Key: events.BuildKey{Repo: repo, Pull: 4, Build: 1}, SHA: headSHA},
		{Key: events.BuildKey{Repo: repo, Pull: 4, Build: 2}, SHA: headSHA},
		{Key: events.BuildKey{Repo: repo, Pull: 5, Build: 1}, SHA: other},
	}
	for sha, want := range map[string][]int{headSHA: {4}, other: {5, 6}, strings.Repeat("f", 40): {}} {
		if got := pullsBuilding(recs, sha); !cmp.Equal(got, want) {
			t.Errorf("pullsBuilding(%.7s) = %v, want %v", sha, got, want)
		}
	}
	t.Run("a_press_reruns_the_suite_of_the_pull_found", func(t *testing.T) {
		t.Parallel()
		f := retestFakes()
		h := commandHandlerOf(t, f, BuildTrusted)
		rec := recordOf(map[string]events.TestState{"a": events.TestPassed, "b": events.TestRunning})
		h.records = storeWith(t, rec, recs[0])
		ev := events.CommandEvent{Repo: repo, Author: "carol", Delivery: "d-1", Button: &events.Button{CheckSuite: 9, SHA: headSHA},
			Commands: []events.Command{{Kind: events.RerunSuite}}}
		if err := h.handle(context.Background(), quiet, ev); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"a#r", "c#r", "d#r"}, published(f)); diff != "" {
			t.Errorf("re-runs (-want +got):\n%s", diff)
		}
		for _, j := range f.published {
			if j.Number != 4 || j.Build != 2 || j.HeadSHA != headSHA || j.BaseRef != "main" {
				t.Errorf("job %+v, want pull 4 build 2 at the head, base main", j)
			}
		}
	})
}

// TestRetestAfterTheBaseMoved carries /retest out against in-memory
// GitHub, queue and records: when the base branch's tip (from the mirror)
// is not the base the build's record says it merged, the head is built
// again, under a build number the reply names, and nothing is re-run or
// evaluated; otherwise the failed tests re-run on the build's merge. A
// redelivery claims and publishes the same build.
func TestRetestAfterTheBaseMoved(t *testing.T) {
	t.Parallel()
	repo := events.Repo{Owner: owner, Name: repoName}
	baseX, baseY := strings.Repeat("a", 40), strings.Repeat("b", 40)
	withBase := func(b *events.TestedBase) events.BuildRecord {
		rec := recordOf(map[string]events.TestState{"a": events.TestPassed, "b": events.TestFailed})
		rec.Base = b
		return rec
	}
	merged := &events.TestedBase{Ref: "main", SHA: baseX, Merged: true, Merge: strings.Repeat("c", 40)}
	rebuilt := "@carol: `/retest`: main moved to bbbbbbb since build 2; building again on it as build 3, which runs every test."
	tests := []struct {
		name       string
		record     events.BuildRecord
		tip        string
		reruns     []string
		rebuilds   int // pull events queued, each a rebuild of headSHA
		reply      string
		tipLookups int32
	}{
		{"moved_base_builds_again", withBase(merged), baseY, nil, 1, rebuilt, 1},
		{"unmoved_base_reruns_the_failed", withBase(merged), baseX, []string{"b#r"}, 0, "", 1},
		{"head_alone_never_looks_up_the_base", withBase(&events.TestedBase{Ref: "main", SHA: baseX}), baseY, []string{"b#r"}, 0, "", 0},
		{"vanished_base_branch_reruns_the_failed", withBase(merged), "", []string{"b#r"}, 0, "", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := retestFakes()
			f.tip = tc.tip
			h := commandHandlerOf(t, f, BuildTrusted)
			h.records = storeWith(t, tc.record)
			ev := events.CommandEvent{Repo: repo, Number: 4, CommentID: 9, Author: "carol", Delivery: "d-1", Installation: 7,
				Commands: []events.Command{{Kind: events.Retest}}}
			if err := h.handle(t.Context(), quiet, ev); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.reruns, published(f)); diff != "" {
				t.Errorf("re-runs queued (-want +got):\n%s", diff)
			}
			if len(f.pulls) != tc.rebuilds {
				t.Fatalf("pull events queued %+v, want %d", f.pulls, tc.rebuilds)
			}
			for _, pe := range f.pulls {
				if !pe.Rebuild || pe.HeadSHA != headSHA || pe.Number != 4 || pe.Installation != 7 {
					t.Errorf("pull event %+v, want a rebuild of %.7s on pull 4", pe, headSHA)
				}
			}
			var want []string
			if tc.reply != "" {
				want = []string{tc.reply}
			}
			if diff := cmp.Diff(want, f.replies); diff != "" {
				t.Errorf("replies (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{AcceptedReaction}, f.reactions); diff != "" {
				t.Errorf("reactions (-want +got):\n%s", diff)
			}
			if got := f.tipLookups.Load(); got != tc.tipLookups {
				t.Errorf("base tip looked up %d times, want %d", got, tc.tipLookups)
			}
			if tc.rebuilds == 0 {
				return
			}
			if got := f.evaluations.Load(); got != 0 {
				t.Errorf(".yci.py evaluated %d times for a rebuild, want none: the new build evaluates it", got)
			}
			// The same message again (its reply failed, say): the
			// same build is claimed and its event published again,
			// which the stream drops as a duplicate.
			if err := h.handle(t.Context(), quiet, ev); err != nil {
				t.Fatal(err)
			}
			again := "@carol: `/retest`: main moved since the head was built; building again on it as build 3, which runs every test."
			if len(f.pulls) != 2 || f.pulls[0].MsgID() != f.pulls[1].MsgID() || f.replies[len(f.replies)-1] != again {
				t.Errorf("after a redelivery: pull events %+v, replies %q; want the same event again and %q", f.pulls, f.replies, again)
			}
		})
	}
}

// TestRetestDeliveredAgainAfterAFailedPublish: a /retest whose second
// re-run failed to publish comes again; its record shows both re-runs
// queued by its own doing, so it queues them again rather than replying
// that nothing is left to re-run. Within the stream's duplicate window
// the first is dropped as a duplicate; past it, a re-run that has started
// is not published again. Either way each runs once.
func TestRetestDeliveredAgainAfterAFailedPublish(t *testing.T) {
	t.Parallel()
	repo := events.Repo{Owner: owner, Name: repoName}
	key := events.BuildKey{Repo: repo, Pull: 4, Build: 2}
	tests := []struct {
		name      string
		dedup     bool // redelivered within the duplicate window
		bStarted  bool // b's re-run started before the redelivery
		published []string
	}{
		{"within_the_duplicate_window", true, false, []string{"b#r", "c#r"}},
		{"past_the_window_after_the_first_started", false, true, []string{"b#r", "c#r"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := retestFakes()
			f.failPublish, f.dedup = 2, tc.dedup
			h := commandHandlerOf(t, f, BuildTrusted)
			store := storeWith(t, recordOf(map[string]events.TestState{"a": events.TestPassed, "b": events.TestFailed, "c": events.TestFailed}))
			h.records = store
			ev := events.CommandEvent{Repo: repo, Number: 4, CommentID: 9, Author: "carol", Delivery: "d-1",
				Commands: []events.Command{{Kind: events.Retest}}}
			if err := h.handle(t.Context(), quiet, ev); err == nil {
				t.Fatal("the first delivery succeeded, though its second publish failed")
			}
			if tc.bStarted {
				if _, err := store.UpdateBuild(t.Context(), key, func(r *events.BuildRecord) error {
					tr := r.Test("b")
					tr.State, tr.Attempts = events.TestRunning, append(tr.Attempts, events.AttemptRecord{Rerun: 1, Number: 1})
					return nil
				}); err != nil {
					t.Fatal(err)
				}
			}
			if err := h.handle(t.Context(), quiet, ev); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.published, published(f)); diff != "" {
				t.Errorf("re-runs queued (-want +got):\n%s", diff)
			}
			if len(f.replies) != 0 || len(f.reactions) != 1 {
				t.Errorf("replies %q, reactions %q; want the reaction alone", f.replies, f.reactions)
			}
			rec, err := store.BuildRecord(t.Context(), key)
			if err != nil {
				t.Fatal(err)
			}
			if b := rec.Test("b"); tc.bStarted && b.State != events.TestRunning {
				t.Errorf("b, whose re-run started, became %s", b.State)
			}
		})
	}
}
