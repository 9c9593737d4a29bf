package worker

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-github/v88/github"

	"github.com/yourci/yourci/pkg/events"
)

func TestJudgeHead(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 6, 18, 0, 0, 0, time.UTC)
	rec := func(sha string, d time.Duration) events.HeadRecord {
		return events.HeadRecord{SHA: sha, UpdatedAt: t0.Add(d)}
	}
	closed := func(r events.HeadRecord) events.HeadRecord { r.Closed = true; return r }
	ambiguous := func(r events.HeadRecord) events.HeadRecord { r.Ambiguous = true; return r }
	cases := []struct {
		name  string
		rec   events.HeadRecord
		found bool
		at    time.Time // when the job's pull was read
		keep  bool
		want  headCheck
	}{
		{"no_record_cannot_tell", events.HeadRecord{}, false, t0, false, headCheck{}},
		{"job_without_updated_at_cannot_tell", rec(decideSHA, 0), true, time.Time{}, false, headCheck{}},
		{"ambiguous_record_cannot_tell", ambiguous(rec(decideSHA, time.Second)), true, t0, false, headCheck{}},
		{"own_head_is_current", rec(decideSHA, 0), true, t0.Add(300 * time.Millisecond), false, headCheck{known: true}},
		{"later_record_of_the_same_head_is_current", rec(decideSHA, time.Hour), true, t0, false, headCheck{known: true}},
		{"later_head_supersedes", rec(decideNewer, time.Second), true, t0, false,
			headCheck{known: true, stale: "superseded by " + decideNewer, newSHA: decideNewer}},
		{"later_head_is_kept_with_keep_superseded", rec(decideNewer, time.Second), true, t0, true, headCheck{known: true}},
		{"later_close_is_stale_even_when_keeping", closed(rec(decideSHA, time.Minute)), true, t0, true,
			headCheck{known: true, stale: "pull request is closed"}},
		{"record_older_than_the_job_is_behind_it", rec(decideNewer, -time.Minute), true, t0, false, headCheck{known: true}},
		{"another_head_in_the_jobs_second_cannot_tell", rec(decideNewer, 0), true, t0, false, headCheck{}},
		{"a_close_in_the_jobs_second_cannot_tell", closed(rec(decideSHA, 0)), true, t0, false, headCheck{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := judgeHead(tc.rec, tc.found, decideSHA, tc.at, tc.keep); got != tc.want {
				t.Errorf("judgeHead = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestGroupCheck: a merge group's head never changes and it has no pull
// request to read, so what the record cannot tell is current, and only
// the destroyed record (stamped events.GroupDestroyedAt) makes it stale.
func TestGroupCheck(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 6, 18, 0, 0, 0, time.UTC)
	cases := []struct {
		name  string
		rec   events.HeadRecord
		found bool
		want  headCheck
	}{
		{"no_record_is_current", events.HeadRecord{}, false, headCheck{known: true}},
		{"own_checks_requested_is_current", events.HeadRecord{SHA: decideSHA, UpdatedAt: t0}, true, headCheck{known: true}},
		{"destroyed_is_stale", events.HeadRecord{SHA: decideSHA, Closed: true, UpdatedAt: events.GroupDestroyedAt}, true,
			headCheck{known: true, stale: groupDestroyed}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := groupCheck(judgeHead(tc.rec, tc.found, decideSHA, t0, false)); got != tc.want {
				t.Errorf("groupCheck = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestPullEventReadsGitHubOnlyWhenItMust: a webhook's event carries its
// pull request and the head record orders it, so the pull is built (or
// dropped) without a GitHub request; the record is trusted only when it
// can tell, and anything else reads the pull request once and records it.
func TestPullEventReadsGitHubOnlyWhenItMust(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 6, 18, 0, 0, 0, time.UTC)
	repo := events.Repo{Owner: "acme", Name: "widget"}
	at := func(pr *github.PullRequest, when time.Time) *github.PullRequest {
		pr.UpdatedAt = &github.Timestamp{Time: when}
		return pr
	}
	cases := []struct {
		name      string
		carried   bool
		record    *events.HeadRecord
		rival     *events.HeadRecord  // a second report, after record
		api       *github.PullRequest // what a read answers
		wantClaim bool                // the event went on to claim its build
		wantReads int
		wantHead  events.HeadRecord // the record afterwards
	}{
		{name: "carried_pull_is_built_without_reading", carried: true,
			record:    &events.HeadRecord{SHA: decideSHA, UpdatedAt: t0},
			wantClaim: true, wantReads: 0, wantHead: events.HeadRecord{SHA: decideSHA, UpdatedAt: t0}},
		{name: "carried_pull_of_a_superseded_head_is_dropped_without_reading", carried: true,
			record:    &events.HeadRecord{SHA: decideNewer, UpdatedAt: t0.Add(time.Second)},
			wantReads: 0, wantHead: events.HeadRecord{SHA: decideNewer, UpdatedAt: t0.Add(time.Second)}},
		{name: "carried_pull_of_a_closed_pull_is_dropped_without_reading", carried: true,
			record:    &events.HeadRecord{SHA: decideSHA, Closed: true, UpdatedAt: t0.Add(time.Minute)},
			wantReads: 0, wantHead: events.HeadRecord{SHA: decideSHA, Closed: true, UpdatedAt: t0.Add(time.Minute)}},
		{name: "ambiguous_second_is_settled_by_one_read", carried: true,
			record: &events.HeadRecord{SHA: decideSHA, UpdatedAt: t0}, rival: &events.HeadRecord{SHA: decideNewer, UpdatedAt: t0.Add(time.Millisecond)},
			api: at(openPull("open", decideNewer, "alice"), t0), wantReads: 1,
			wantHead: events.HeadRecord{SHA: decideNewer, UpdatedAt: t0, Read: true}},
		{name: "carried_pull_without_a_record_is_read_once", carried: true,
			api:       at(openPull("open", decideSHA, "alice"), t0),
			wantClaim: true, wantReads: 1, wantHead: events.HeadRecord{SHA: decideSHA, UpdatedAt: t0, Read: true}},
		{name: "sweep_event_reads_and_records_the_pull", api: at(openPull("open", decideSHA, "alice"), t0),
			wantClaim: true, wantReads: 1,
			wantHead: events.HeadRecord{SHA: decideSHA, UpdatedAt: t0, Read: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w, q := decideWorker(t, decideCase{pull: tc.api, level: "write", built: true})
			pulls := w.opts.GitHub.(fakeGitHub).inst.Pulls.(*fakePulls)
			ctx := context.Background()
			for _, r := range []*events.HeadRecord{tc.record, tc.rival} {
				if r == nil {
					continue
				}
				if _, err := q.RecordHead(ctx, repo, 3, *r); err != nil {
					t.Fatal(err)
				}
			}
			ev := events.PullEvent{Repo: repo, Number: 3, HeadSHA: decideSHA, Delivery: "d1"}
			if tc.carried {
				raw, err := json.Marshal(at(openPull("open", decideSHA, "alice"), t0))
				if err != nil {
					t.Fatal(err)
				}
				ev.Pull, ev.PullUpdatedAt = raw, t0
			}
			if v := w.pulls.decide(ctx, w.log, ev, prepAttempt{delivered: 1, maxDeliver: 10}); v.Outcome != Done {
				t.Fatalf("verdict %v (%v), want Done", v.Outcome, v.Err)
			}
			if got := q.claimsAsked.Load() == 1; got != tc.wantClaim {
				t.Errorf("%d build claims asked, want the build claimed: %v", q.claimsAsked.Load(), tc.wantClaim)
			}
			if got := pulls.readCount(); got != tc.wantReads {
				t.Errorf("read the pull request %d times, want %d", got, tc.wantReads)
			}
			got, _, _ := q.HeadOf(ctx, repo, 3)
			if got.SHA != tc.wantHead.SHA || got.Closed != tc.wantHead.Closed || got.Read != tc.wantHead.Read ||
				got.Ambiguous || !got.UpdatedAt.Equal(tc.wantHead.UpdatedAt) {
				t.Errorf("head record afterwards %+v, want %+v", got, tc.wantHead)
			}
		})
	}
}

// TestTestHeadComesFromTheJobAndTheRecord: a test whose job carries its
// branches and when its pull was read starts without a GitHub request;
// an older job, or a record that cannot tell, reads the pull request.
func TestTestHeadComesFromTheJobAndTheRecord(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 6, 18, 0, 0, 0, time.UTC)
	repo := events.Repo{Owner: "acme", Name: "widget"}
	api := openPull("open", decideSHA, "alice")
	api.Head.Ref, api.UpdatedAt = github.Ptr("from-api"), &github.Timestamp{Time: t0}
	carrying := events.TestJob{Repo: repo, Number: 3, HeadSHA: decideSHA, Build: 1, Attempt: 1, Test: events.TestSpec{Name: "t"},
		BaseRef: "main", HeadRef: "from-job", CloneURL: "https://github.invalid/acme/widget.git", PullUpdatedAt: t0}
	older := carrying
	older.HeadRef, older.PullUpdatedAt = "", time.Time{}
	cases := []struct {
		name        string
		job         events.TestJob
		records     []events.HeadRecord
		wantReads   int
		wantHeadRef string
		wantStale   string
	}{
		{"carrying_job_with_a_current_record_reads_nothing", carrying,
			[]events.HeadRecord{{SHA: decideSHA, UpdatedAt: t0}}, 0, "from-job", ""},
		{"carrying_job_with_a_newer_head_recorded_is_stale_without_reading", carrying,
			[]events.HeadRecord{{SHA: decideNewer, UpdatedAt: t0.Add(time.Second)}}, 0, "from-job", "superseded by " + decideNewer},
		{"ambiguous_record_reads_once", carrying,
			[]events.HeadRecord{{SHA: decideSHA, UpdatedAt: t0}, {SHA: decideNewer, UpdatedAt: t0}}, 1, "from-api", ""},
		{"older_job_reads_once", older, []events.HeadRecord{{SHA: decideSHA, UpdatedAt: t0}}, 1, "from-api", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w, q := decideWorker(t, decideCase{pull: api})
			pulls := w.opts.GitHub.(fakeGitHub).inst.Pulls.(*fakePulls)
			ctx := context.Background()
			for _, r := range tc.records {
				if _, err := q.RecordHead(ctx, repo, 3, r); err != nil {
					t.Fatal(err)
				}
			}
			h, err := w.heads.headOfTest(ctx, w.log, w.opts.GitHub.(fakeGitHub).inst, tc.job)
			if err != nil || !h.known {
				t.Fatalf("headOfTest = %+v, %v", h, err)
			}
			if got := pulls.readCount(); got != tc.wantReads {
				t.Errorf("read the pull request %d times, want %d", got, tc.wantReads)
			}
			if h.stale != tc.wantStale || h.headRef != tc.wantHeadRef || h.baseRef != "main" {
				t.Errorf("head %+v, want stale %q, head ref %q, base main", h, tc.wantStale, tc.wantHeadRef)
			}
		})
	}
}
