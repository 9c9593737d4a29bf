package worker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/yourci/yourci/pkg/events"
)

// memRecords is an in-memory BuildRecords keeping state as events.Records
// does: UpdateBuild applies a change to a copy and stores it unless the
// change returns an error (ErrUnchanged included, returned wrapped).
type memRecords struct {
	mu   sync.Mutex
	recs map[events.BuildKey]events.BuildRecord
}

func (m *memRecords) UpdateBuild(_ context.Context, k events.BuildKey, change func(*events.BuildRecord) error) (events.BuildRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, ok := m.recs[k]
	if !ok {
		rec = events.BuildRecord{Version: events.Version, Key: k}
	}
	rec.Tests = append([]events.TestRecord(nil), rec.Tests...)
	if err := change(&rec); err != nil {
		return events.BuildRecord{}, fmt.Errorf("updating build record %s: %w", k, err)
	}
	rec.Revision++
	if m.recs == nil {
		m.recs = map[events.BuildKey]events.BuildRecord{}
	}
	m.recs[k] = rec
	return rec, nil
}

func (m *memRecords) BuildRecord(_ context.Context, k events.BuildKey) (events.BuildRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, ok := m.recs[k]
	if !ok {
		return events.BuildRecord{}, fmt.Errorf("build %s: %w", k, events.ErrNoRecord)
	}
	return rec, nil
}

func (m *memRecords) RecentBuilds(_ context.Context, repo events.Repo, n int) ([]events.BuildRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []events.BuildRecord
	for k, rec := range m.recs {
		if k.Repo == repo && len(out) < n {
			out = append(out, rec)
		}
	}
	return out, nil
}

func (m *memRecords) SetPullClosed(context.Context, events.Repo, int, bool) (int, error) {
	return 0, errors.New("not expected in these tests")
}

func (m *memRecords) UpdateHeadSummary(context.Context, events.HeadKey, func(*events.HeadSummary) error) (events.HeadSummary, error) {
	return events.HeadSummary{}, errors.New("not expected in these tests")
}

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

// TestRetestReadsTheRecord: what a bare /retest runs, and what a named one
// refuses as busy, is decided by the build record alone; the worker has no
// GitHub read left to consult.
func TestRetestReadsTheRecord(t *testing.T) {
	t.Parallel()
	repo := events.Repo{Owner: owner, Name: repoName}
	target := &commandTarget{pull: 4, sha: headSHA, build: 2}
	known := []string{"a", "b", "c", "d"}
	tests := []struct {
		name    string
		records *memRecords // nil: the worker keeps no records
		cmd     events.Command
		want    []string
		refusal string
	}{
		{"bare_retest_runs_what_the_record_says_failed",
			&memRecords{recs: map[events.BuildKey]events.BuildRecord{{Repo: repo, Pull: 4, Build: 2}: recordOf(map[string]events.TestState{
				"a": events.TestPassed, "b": events.TestFailed, "c": events.TestErrored, "d": events.TestSuperseded})}},
			events.Command{Kind: events.Retest}, []string{"b", "c"}, ""},
		{"named_test_the_record_shows_running_is_busy",
			&memRecords{recs: map[events.BuildKey]events.BuildRecord{{Repo: repo, Pull: 4, Build: 2}: recordOf(map[string]events.TestState{
				"a": events.TestRunning})}},
			events.Command{Kind: events.Retest, Tests: []string{"a"}}, nil, "still queued or running"},
		{"another_builds_failures_do_not_count",
			&memRecords{recs: map[events.BuildKey]events.BuildRecord{{Repo: repo, Pull: 4, Build: 1}: recordOf(map[string]events.TestState{
				"a": events.TestFailed})}},
			events.Command{Kind: events.Retest}, nil, "nothing to re-run"},
		{"no_record_yet_means_nothing_failed", &memRecords{}, events.Command{Kind: events.Retest}, nil, "nothing to re-run"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := &Worker{}
			if tc.records != nil {
				w.opts.Records = tc.records
			}
			states, o, err := w.testStates(t.Context(), repo, target)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			if o.refusal == "" {
				got, o = pickReruns(known, states, tc.cmd, target.build, target.sha)
			}
			switch {
			case tc.refusal != "" && !strings.Contains(o.refusal, tc.refusal):
				t.Errorf("refusal %q, want one saying %q", o.refusal, tc.refusal)
			case tc.refusal == "" && o.refusal != "":
				t.Errorf("refused: %s", o.refusal)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("re-runs (-want +got):\n%s", diff)
			}
		})
	}
}

// TestQueuedRerunsAreRecorded: a re-run /retest queues is in the record at
// once, so a second /retest before it starts finds it busy, not failed;
// a command delivered again after its re-run started leaves the newer
// state alone.
func TestQueuedRerunsAreRecorded(t *testing.T) {
	t.Parallel()
	repo := events.Repo{Owner: owner, Name: repoName}
	key := events.BuildKey{Repo: repo, Pull: 4, Build: 2}
	target := &commandTarget{pull: 4, sha: headSHA, build: 2}
	ev := events.CommandEvent{Repo: repo, Number: 4, Author: "carol"}
	rec := recordOf(map[string]events.TestState{"a": events.TestFailed, "b": events.TestFailed})
	// b's re-run 1 already runs: this is the command delivered again.
	rec.Tests[1].State = events.TestRunning
	rec.Tests[1].Attempts = append(rec.Tests[1].Attempts, events.AttemptRecord{Rerun: 1, Number: 1})
	records := &memRecords{recs: map[events.BuildKey]events.BuildRecord{key: rec}}
	w := &Worker{opts: Options{Records: records}}
	if err := w.recordRerunsQueued(t.Context(), ev, target, map[string]int{"a": 1, "b": 1}); err != nil {
		t.Fatal(err)
	}
	got, err := records.BuildRecord(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	if a := got.Test("a"); a.State != events.TestQueued || !strings.Contains(a.Description, "re-run 1 asked by @carol") {
		t.Errorf("a after its re-run was queued: %s %q, want queued, asked by @carol", a.State, a.Description)
	}
	if b := got.Test("b"); b.State != events.TestRunning {
		t.Errorf("b, whose re-run already runs, became %s", b.State)
	}
	states, o, err := w.testStates(t.Context(), repo, target)
	if err != nil || o.refusal != "" {
		t.Fatalf("testStates: %v %q", err, o.refusal)
	}
	if _, o := pickReruns([]string{"a", "b"}, states, events.Command{Kind: events.Retest, Tests: []string{"a"}}, 2, headSHA); !strings.Contains(o.refusal, "still queued or running") {
		t.Errorf("a second /retest a = %q, want it refused as queued", o.refusal)
	}
	if err := w.recordRerunsQueued(t.Context(), ev, target, map[string]int{"b": 1}); err != nil {
		t.Errorf("a change with nothing to record = %v, want nil", err)
	}
}

// TestSuitePullFromTheRecords: "Re-run all checks" finds its pull request
// in the build records of the suite's commit, and refuses a commit built
// for none or for several.
func TestSuitePullFromTheRecords(t *testing.T) {
	t.Parallel()
	repo := events.Repo{Owner: owner, Name: repoName}
	other := strings.Repeat("e", 40)
	records := &memRecords{recs: map[events.BuildKey]events.BuildRecord{
		{Repo: repo, Pull: 4, Build: 1}: {Key: events.BuildKey{Repo: repo, Pull: 4, Build: 1}, SHA: headSHA},
		{Repo: repo, Pull: 4, Build: 2}: {Key: events.BuildKey{Repo: repo, Pull: 4, Build: 2}, SHA: headSHA},
		{Repo: repo, Pull: 5, Build: 1}: {Key: events.BuildKey{Repo: repo, Pull: 5, Build: 1}, SHA: other},
		{Repo: repo, Pull: 6, Build: 1}: {Key: events.BuildKey{Repo: repo, Pull: 6, Build: 1}, SHA: other},
	}}
	tests := []struct {
		name    string
		sha     string
		want    int
		refusal string
	}{
		{"commit_of_one_pull", headSHA, 4, ""},
		{"commit_of_two_pulls", other, 0, "several pull requests ([5 6])"},
		{"commit_never_built", strings.Repeat("f", 40), 0, "has no build of YourCI's"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := &Worker{opts: Options{Records: records}}
			ev := events.CommandEvent{Repo: repo, Button: &events.Button{CheckSuite: 9, SHA: tc.sha}}
			got, o, err := w.suitePull(t.Context(), ev)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want || (tc.refusal == "") != (o.refusal == "") || !strings.Contains(o.refusal, tc.refusal) {
				t.Errorf("suitePull(%.7s) = %d, %q; want %d, %q", tc.sha, got, o.refusal, tc.want, tc.refusal)
			}
		})
	}
}
