package worker

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-github/v88/github"

	"github.com/yourci/yourci/pkg/artifacts"
	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/events/memrecords"
	"github.com/yourci/yourci/pkg/events/memregistry"
	"github.com/yourci/yourci/pkg/pipeline"
	"github.com/yourci/yourci/pkg/status"
)

// The pull handler carrying out its plans over in-memory parts: the
// records are memrecords' state-based store, the mirror, merge and
// evaluation are fakes, so every way a build ends is checked in
// milliseconds without NATS, git or python. The rig in worker_test.go
// keeps the real wiring.

// memWorkspace is the mirror, the merges and the preparation logs in
// memory; only a build's own log (CreateTestDir) is a real directory.
// MergeBuild answers merge.
type memWorkspace struct {
	dir   string
	merge artifacts.Merged
	mu    sync.Mutex
	// prepLogs are the preparation logs by head commit.
	prepLogs map[string]string
}

func (m *memWorkspace) UpdateMirrorSince(context.Context, string, string, string, artifacts.GitAuth, time.Time) (bool, error) {
	return true, nil
}

func (m *memWorkspace) SourceDir(artifacts.Build) (string, error) {
	return filepath.Join(m.dir, "src"), nil
}

func (m *memWorkspace) Checkout(context.Context, artifacts.Build, string, string, string) error {
	return nil
}

func (m *memWorkspace) CreateTestDir(_ artifacts.Build, name string) (string, error) {
	dir := filepath.Join(m.dir, "logs", name)
	return dir, os.MkdirAll(dir, 0o755)
}

func (m *memWorkspace) LinkLog(artifacts.Build, string) error { return nil }
func (m *memWorkspace) MakeSpare(context.Context, artifacts.Build, string, string) error {
	return nil
}
func (m *memWorkspace) DropSpare(artifacts.Build) error { return nil }

func (m *memWorkspace) MaintainMirror(context.Context, string, string) error { return nil }

func (m *memWorkspace) MergeBuild(context.Context, string, string, string, string, bool) (artifacts.Merged, error) {
	return m.merge, nil
}

func (m *memWorkspace) RemakeMerge(context.Context, string, string, string, string, string) (artifacts.Merged, error) {
	return m.merge, nil
}

func (m *memWorkspace) AppendPrepareLog(_, _ string, _ int, sha, text string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.prepLogs == nil {
		m.prepLogs = map[string]string{}
	}
	m.prepLogs[sha] += text
	return nil
}

func (m *memWorkspace) PrepareLogURL(_, _, _ string, _ int, sha string) (string, error) {
	return "https://ci.invalid/prepare-" + sha, nil
}

// memEvaluator answers every evaluation with tests or err, and keeps the
// pull request .yci.py was given.
type memEvaluator struct {
	tests []pipeline.Test
	err   error
	mu    sync.Mutex
	calls int
	pull  json.RawMessage
}

func (e *memEvaluator) EvaluateChange(_ context.Context, _ string, _ int, pull json.RawMessage, _ *pipeline.Change) ([]pipeline.Test, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls++
	e.pull = pull
	return e.tests, e.err
}

// jobLog keeps every test job published.
type jobLog struct {
	mu   sync.Mutex
	jobs []events.TestJob
}

func (l *jobLog) PublishTest(_ context.Context, job events.TestJob) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.jobs = append(l.jobs, job)
	return nil
}

// memSecret is the one secret the handler's logs must never show.
const memSecret = "hunter2-installation-token"

// memPullRig is a pull handler over in-memory parts.
type memPullRig struct {
	h       *pullHandler
	q       *fakeQueue
	records *memrecords.Store
	ws      *memWorkspace
	eval    *memEvaluator
	jobs    *jobLog
}

func newMemPullRig(t *testing.T, pull *github.PullRequest, level string, merge artifacts.Merged, eval *memEvaluator) *memPullRig {
	t.Helper()
	r := &memPullRig{q: newFakeQueue(), records: memrecords.New(),
		ws: &memWorkspace{dir: t.TempDir(), merge: merge}, eval: eval, jobs: &jobLog{}}
	inst := Installation{Pulls: &fakePulls{pull: pull}, Permissions: fakePermissions{level: level}}
	summaries := headSummaries{records: r.records}
	r.h = &pullHandler{
		installs: fakeGitHub{inst: inst}, heads: &headReader{heads: r.q}, claims: r.q,
		gate: &approvalGate{trust: &trustCache{entries: map[string]trustEntry{}, now: time.Now}, approvals: r.q,
			summaries: summaries, label: DefaultApprovalLabel},
		merger:    &baseMerger{workspace: r.ws, records: r.records},
		workspace: r.ws, evaluator: eval, records: r.records, publish: r.jobs, summaries: summaries,
		journal: &prepJournal{logs: r.ws, summaries: summaries, httpRoot: httpRoot,
			secrets: func() []string { return []string{memSecret} }},
		logURL: func(_ artifacts.Build, name string) string { return "https://ci.invalid/logs/" + name },
		guard: func(ctx context.Context, _, _, _ string, _, _ time.Duration, work func(context.Context) error) error {
			return work(ctx)
		},
		timeout: time.Minute, metrics: NewMetrics(nil), log: slog.New(slog.DiscardHandler),
	}
	return r
}

// builtBefore is a registry where another delivery built the head.
func builtBefore(t *testing.T, q *fakeQueue) { claimElsewhere(t, q, decideSHA) }

// claimedBy is a registry where ev itself claimed its head's build, as a
// delivery whose handler then died did, and marked it queued or not.
func claimedBy(ev events.PullEvent, queued bool) func(t *testing.T, q *fakeQueue) {
	return func(t *testing.T, q *fakeQueue) {
		t.Helper()
		c, err := q.Registry.ClaimBuildFor(t.Context(), ev.Repo, ev.Number, ev.HeadSHA, ev.MsgID(), false)
		if err == nil && queued {
			err = q.MarkQueued(t.Context(), ev.Repo, ev.Number, ev.HeadSHA, c.Build)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestPullHandlerCarriesOutItsPlans(t *testing.T) {
	t.Parallel()
	base := "3333333333333333333333333333333333333333"
	merged := artifacts.Merged{SHA: decideNewer, Base: base, Changes: []string{"a.go"}}
	conflicted := artifacts.Merged{SHA: decideSHA, Base: base, Conflicts: []string{"a.go"}}
	twoTests := []pipeline.Test{{Name: "unit", Command: "go test"}, {Name: "lint", Command: "vet", Retries: 1}}
	ev := events.PullEvent{Repo: events.Repo{Owner: "acme", Name: "widget"}, Number: 3, HeadSHA: decideSHA, Delivery: "d1"}
	// The event's own build, claimed and then marked queued or not.
	claimed := memregistry.HeadBuild{Build: 1, By: ev.MsgID()}
	queued := memregistry.HeadBuild{Build: 1, By: ev.MsgID(), Queued: true}
	cases := []struct {
		name  string
		level string
		// before is what the registry held when the event came: nothing,
		// builtElsewhere's build, or this event's own (a redelivery).
		before func(t *testing.T, q *fakeQueue)
		merge  artifacts.Merged
		eval   *memEvaluator

		want Outcome
		// build is the head's build afterwards (zero: none), asked
		// whether its approval was asked for, announced whether the
		// head was announced.
		build       memregistry.HeadBuild
		asked       bool
		announced   bool
		jobs        int
		evaluations int
		configError string // a substring of the build record's ConfigError
		summary     string // a substring of the head summary's description
	}{
		{name: "tests_are_recorded_then_queued", level: "write", merge: merged, eval: &memEvaluator{tests: twoTests},
			want: Done, build: queued, announced: true, jobs: 2, evaluations: 1},
		{name: "no_tests_queues_nothing_and_marks_the_build_queued", level: "write", merge: merged, eval: &memEvaluator{},
			want: Done, build: queued, announced: true, evaluations: 1},
		{name: "conflict_ends_the_build_unevaluated", level: "write", merge: conflicted, eval: &memEvaluator{tests: twoTests},
			want: Done, build: queued, announced: true, configError: "merge conflict with main"},
		{name: "refused_yci_py_ends_the_build_with_its_reason_masked", level: "write", merge: merged,
			eval: &memEvaluator{err: &pipeline.ConfigError{File: ".yci.py", Line: 2, Message: "token " + memSecret + " leaked", Output: memSecret}},
			want: Done, build: queued, announced: true, evaluations: 1, configError: ".yci.py:2: token *** leaked"},
		{name: "broken_evaluation_is_handed_back_and_shown", level: "write", merge: merged, eval: &memEvaluator{err: errors.New("python3 killed")},
			want: HandBack, build: claimed, announced: true, evaluations: 1, summary: "preparing failed (attempt 1 of 9): evaluating .yci.py: python3 killed"},
		{name: "head_built_elsewhere_is_left_alone", level: "write", before: builtBefore, merge: merged, eval: &memEvaluator{tests: twoTests},
			want: Done, build: memregistry.HeadBuild{Build: 1, By: builtElsewhere}},
		{name: "redelivery_whose_handler_died_before_queueing_carries_on_with_its_build", level: "write",
			before: claimedBy(ev, false), merge: merged, eval: &memEvaluator{tests: twoTests},
			want: Done, build: queued, jobs: 2, evaluations: 1},
		{name: "redelivery_after_queueing_queues_nothing_again", level: "write",
			before: claimedBy(ev, true), merge: merged, eval: &memEvaluator{tests: twoTests},
			want: Done, build: queued},
		{name: "outsider_is_asked_for_approval_and_nothing_is_claimed", level: "read", merge: merged, eval: &memEvaluator{tests: twoTests},
			want: Done, asked: true, summary: status.ApprovalNeeded(DefaultApprovalLabel)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newMemPullRig(t, openPull("open", decideSHA, "alice"), tc.level, tc.merge, tc.eval)
			if tc.before != nil {
				tc.before(t, r.q)
			}
			ctx := context.Background()

			v := r.h.decide(ctx, r.h.log, ev, prepAttempt{delivered: 1, maxDeliver: 10})

			if v.Outcome != tc.want {
				t.Errorf("verdict %v (err %v), want %v", v.Outcome, v.Err, tc.want)
			}
			checkRegistry(t, r.q, ev, tc.build, tc.asked)
			if got := r.q.announcedHeads() == 1; got != tc.announced {
				t.Errorf("%d heads announced, want the head announced: %v", r.q.announcedHeads(), tc.announced)
			}
			if len(r.jobs.jobs) != tc.jobs || r.eval.calls != tc.evaluations {
				t.Errorf("%d jobs published after %d evaluations, want %d after %d", len(r.jobs.jobs), r.eval.calls, tc.jobs, tc.evaluations)
			}
			rec, err := r.records.BuildRecord(ctx, buildKey(ev.Repo, ev.Number, 1))
			switch {
			case tc.evaluations+len(tc.configError) > 0 && err != nil:
				t.Fatalf("reading the build's record: %v", err)
			case !strings.Contains(rec.ConfigError, tc.configError) || (tc.configError == "") != (rec.ConfigError == ""):
				t.Errorf("record's config error %q, want %q in it", rec.ConfigError, tc.configError)
			}
			for _, job := range r.jobs.jobs {
				tr := rec.Test(job.Test.Name)
				if tr == nil || tr.State != events.TestQueued || tr.Description != status.Queued() {
					t.Errorf("test %s published but its record is %+v, want it queued", job.Test.Name, tr)
				}
				if job.TestSHA != merged.SHA || job.BaseSHA != base {
					t.Errorf("job tests %s on %s, want the merge %s on %s", job.TestSHA, job.BaseSHA, merged.SHA, base)
				}
			}
			h, err := r.records.HeadSummary(ctx, events.HeadKey{Repo: ev.Repo, Pull: ev.Number, SHA: ev.HeadSHA})
			if tc.summary == "" && err == nil && h.Visible() || tc.summary != "" && (err != nil || !strings.Contains(h.Description, tc.summary)) {
				t.Errorf("head summary %q (err %v), want %q in it", h.Description, err, tc.summary)
			}
			if tc.configError != "" {
				out, err := os.ReadFile(filepath.Join(r.ws.dir, "logs", configLogName, "out.txt"))
				if err != nil || strings.Contains(string(out), memSecret) || len(out) == 0 {
					t.Errorf("the build's log %q (err %v), want it written with the secret masked", out, err)
				}
			}
		})
	}
}
