package reconcile

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/projector"
)

// finishedRecord is a projected build of one passed test "unit" and one
// running test "slow", with every part shown as it stands.
func finishedRecord() events.BuildRecord {
	start := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	rec := events.BuildRecord{
		Key: events.BuildKey{Repo: events.Repo{Owner: "acme", Name: "widgets"}, Pull: 3, Build: 2},
		SHA: "0123456789abcdef0123456789abcdef01234567", Projected: true,
		Tests: []events.TestRecord{
			{Name: "unit", State: events.TestPassed, Description: "passed in 1s",
				Attempts: []events.AttemptRecord{{Number: 1, Start: start, Duration: time.Second, Outcome: "success"}}, Updated: start},
			{Name: "slow", State: events.TestRunning, Description: "running (attempt 1/1)",
				Attempts: []events.AttemptRecord{{Number: 1, Start: start}}, Updated: start},
		},
	}
	rec.Shown = map[string]events.Shown{}
	for _, st := range projector.Project(rec, "") {
		rec.Shown[st.Part] = events.Shown{Mark: st.Mark, At: start}
	}
	return rec
}

// TestDrift attacks the comparison of what GitHub shows with what the
// record says was shown, in both auth modes: it must flag exactly the
// parts shown and since changed on GitHub (or gone), and leave alone those
// the projector still owes.
func TestDrift(t *testing.T) {
	rec := finishedRecord()
	states := projector.Project(rec, "")
	key := func(part string, checks bool) string {
		for _, st := range states {
			if st.Part == part {
				return partKey(st.Status, checks)
			}
		}
		t.Fatalf("no part %q", part)
		return ""
	}
	// asShown is GitHub showing every part as the record says, changed by
	// edit.
	asShown := func(checks bool, edit func(map[string]shownView)) map[string]shownView {
		m := map[string]shownView{}
		for _, st := range states {
			m[partKey(st.Status, checks)] = viewOf(st.Status, checks)
		}
		if edit != nil {
			edit(m)
		}
		return m
	}
	owed := func(part string) map[string]events.Shown {
		shown := map[string]events.Shown{}
		for p, s := range rec.Shown {
			shown[p] = s
		}
		shown[part] = events.Shown{Mark: "an older state"}
		return shown
	}
	tests := []struct {
		name     string
		checks   bool
		shown    map[string]events.Shown
		onGitHub map[string]shownView
		want     []string
	}{
		{name: "statuses_as_recorded", onGitHub: asShown(false, nil)},
		{name: "check_runs_as_recorded", checks: true, onGitHub: asShown(true, nil)},
		{name: "status_changed_to_failure_is_shown_again",
			onGitHub: asShown(false, func(m map[string]shownView) { m[key("unit", false)] = "failure" }),
			want:     []string{"unit"}},
		{name: "check_run_concluded_otherwise_is_shown_again", checks: true,
			onGitHub: asShown(true, func(m map[string]shownView) { m[key("unit", true)] = "completed/failure" }),
			want:     []string{"unit"}},
		{name: "check_run_left_in_progress_after_the_test_passed", checks: true,
			onGitHub: asShown(true, func(m map[string]shownView) { m[key("unit", true)] = "in_progress" }),
			want:     []string{"unit"}},
		{name: "running_test_shown_as_queued", checks: true,
			onGitHub: asShown(true, func(m map[string]shownView) { m[key("slow", true)] = "queued" }),
			want:     []string{"slow"}},
		{name: "deleted_check_run_and_summary_are_shown_again", checks: true,
			onGitHub: asShown(true, func(m map[string]shownView) {
				delete(m, key("unit", true))
				delete(m, key(projector.SummaryPart, true))
			}),
			want: []string{"unit", projector.SummaryPart}},
		{name: "a_check_run_of_another_build_does_not_count", checks: true,
			onGitHub: asShown(true, func(m map[string]shownView) {
				v := m[key("unit", true)]
				delete(m, key("unit", true))
				m["yci:1:acme/widgets:3:0123456789abcdef0123456789abcdef01234567:1:unit"] = v
			}),
			want: []string{"unit"}},
		{name: "summary_status_changed", onGitHub: asShown(false, func(m map[string]shownView) { m["yci"] = "success" }),
			want: []string{projector.SummaryPart}},
		{name: "a_part_the_projector_still_owes_is_left_to_it", shown: owed("unit"),
			onGitHub: asShown(false, func(m map[string]shownView) { m[key("unit", false)] = "pending" })},
		{name: "a_part_never_shown_is_left_to_the_projector", shown: map[string]events.Shown{},
			onGitHub: map[string]shownView{}},
		{name: "a_check_run_compared_as_a_status_differs", checks: true, onGitHub: asShown(false, nil),
			want: []string{"unit", "slow", projector.SummaryPart}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			shown := tt.shown
			if shown == nil {
				shown = rec.Shown
			}
			got := drift(states, shown, tt.onGitHub, tt.checks)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("drift (-want +got):\n%s", diff)
			}
		})
	}
}

// TestEndLost attacks the record change for lost tests: only unfinished
// tests end, with the reason, and a record with none is left unchanged.
func TestEndLost(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		states    []events.TestState
		want      []events.TestState
		unchanged bool
	}{
		{name: "running_and_queued_end_passed_stays",
			states: []events.TestState{events.TestPassed, events.TestRunning, events.TestQueued, events.TestRetrying},
			want:   []events.TestState{events.TestPassed, events.TestErrored, events.TestErrored, events.TestErrored}},
		{name: "all_final_is_unchanged",
			states: []events.TestState{events.TestPassed, events.TestFailed, events.TestSuperseded},
			want:   []events.TestState{events.TestPassed, events.TestFailed, events.TestSuperseded}, unchanged: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rec events.BuildRecord
			for i, s := range tt.states {
				rec.Tests = append(rec.Tests, events.TestRecord{Name: string(rune('a' + i)), State: s, Description: "before"})
			}
			err := endLost(&rec, "lost", "cancelled", now)
			if got := errors.Is(err, events.ErrUnchanged); got != tt.unchanged {
				t.Fatalf("endLost: %v, want unchanged %v", err, tt.unchanged)
			}
			for i, tr := range rec.Tests {
				if tr.State != tt.want[i] {
					t.Errorf("test %s: %s, want %s", tr.Name, tr.State, tt.want[i])
				}
				ended := tt.states[i] != tt.want[i]
				if ended && (tr.Description != "lost" || tr.Conclusion != "cancelled" || !tr.Updated.Equal(now)) {
					t.Errorf("test %s ended as %+v, want the reason, conclusion and time", tr.Name, tr)
				}
				if !ended && tr.Description != "before" {
					t.Errorf("final test %s changed: %+v", tr.Name, tr)
				}
			}
		})
	}
}
