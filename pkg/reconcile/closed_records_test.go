package reconcile_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/reconcile"
)

func TestClosedChanges(t *testing.T) {
	t.Parallel()
	listed := time.Date(2025, 5, 1, 12, 0, 0, 0, time.UTC)
	rec := func(pull, build int, closed bool, created time.Time) events.BuildRecord {
		return events.BuildRecord{Key: events.BuildKey{Repo: repo("o", "r"), Pull: pull, Build: build}, Closed: closed, Created: created}
	}
	before, after := listed.Add(-time.Hour), listed.Add(time.Second)
	groupNumber, err := events.GroupNumber("4fd5a3c0a7f9b5d31e2c8e0f9a6b7c8d9e0f1a2b")
	if err != nil {
		t.Fatal(err)
	}
	group := func(state events.TestState) events.BuildRecord {
		r := rec(groupNumber, 1, false, before)
		r.Tests = []events.TestRecord{{Name: "t", State: state}}
		return r
	}
	cases := []struct {
		name            string
		recs            []events.BuildRecord
		open            map[int]bool
		toClose, reopen []int
	}{
		{"open_pull_stays", []events.BuildRecord{rec(1, 1, false, before)}, map[int]bool{1: true}, nil, nil},
		{"pull_gone_from_the_listing_closes", []events.BuildRecord{rec(1, 1, false, before)}, map[int]bool{}, []int{1}, nil},
		{"pull_built_after_the_listing_is_left_alone", []events.BuildRecord{rec(1, 1, false, after)}, map[int]bool{}, nil, nil},
		{"closed_pull_listed_open_reopens", []events.BuildRecord{rec(1, 1, true, before)}, map[int]bool{1: true}, nil, []int{1}},
		{"closed_pull_stays_closed", []events.BuildRecord{rec(1, 1, true, before)}, map[int]bool{}, nil, nil},
		{"the_latest_build_decides", []events.BuildRecord{rec(1, 1, false, before), rec(1, 2, true, before)}, map[int]bool{}, nil, nil},
		{"finished_merge_group_closes", []events.BuildRecord{group(events.TestPassed)}, map[int]bool{}, []int{groupNumber}, nil},
		{"running_merge_group_is_left_alone", []events.BuildRecord{group(events.TestRunning)}, map[int]bool{}, nil, nil},
		{"several_pulls_in_order", []events.BuildRecord{rec(3, 1, false, before), rec(2, 1, false, before), rec(1, 1, false, before)},
			map[int]bool{2: true}, []int{1, 3}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			toClose, reopen := reconcile.ClosedChanges(tc.recs, tc.open, listed)
			if fmt.Sprint(toClose) != fmt.Sprint(tc.toClose) || fmt.Sprint(reopen) != fmt.Sprint(tc.reopen) {
				t.Errorf("close %v, reopen %v; want close %v, reopen %v", toClose, reopen, tc.toClose, tc.reopen)
			}
		})
	}
}

// A sweep marks the build records of a pull that closed without a webhook
// reaching the workers, and unmarks those of one reopened.
func TestSweepMarksClosedPullsInTheBuildRecords(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testContext(t)
	r := repo("acme", "widgets")
	shas := e.repoWithPulls(t, r.Owner, r.Name, 3)
	for pull, closed := range map[int]bool{1: false, 2: false, 3: true} {
		k := events.BuildKey{Repo: r, Pull: pull, Build: 1}
		if _, err := e.bus.Records().UpdateBuild(ctx, k, func(rec *events.BuildRecord) error {
			rec.SHA, rec.Closed = shas[pull-1], closed
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.gh.ClosePull(r.Owner, r.Name, 2); err != nil {
		t.Fatal(err)
	}
	s, _ := e.sweeper(t, []events.Repo{r}, func(o *reconcile.Options, _ *reconcile.CacheOptions) { o.Records = e.bus.Records() })
	sweep(t, s)
	for pull, want := range map[int]bool{1: false, 2: true, 3: false} {
		rec, err := e.bus.Records().BuildRecord(ctx, events.BuildKey{Repo: r, Pull: pull, Build: 1})
		if err != nil {
			t.Fatal(err)
		}
		if rec.Closed != want {
			t.Errorf("pull %d: closed %v, want %v", pull, rec.Closed, want)
		}
	}
}
