package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/yourci/yourci/pkg/fakegithub"
	"github.com/yourci/yourci/pkg/projector"
)

// writeLoad is what one run of many quick tests cost on GitHub.
type writeLoad struct {
	heads, tests int
	// testWrites are the writes (statuses or check-run creations and
	// updates) of the tests' own contexts; summaryWrites those of "yci".
	testWrites, summaryWrites int
	// requests is every REST request the workers made.
	requests int
}

func (l writeLoad) String() string {
	return fmt.Sprintf("%d tests: %d test writes (%.2f/test), %d summary writes (%.2f/head), %d requests (%.2f/test)",
		l.tests, l.testWrites, float64(l.testWrites)/float64(l.tests), l.summaryWrites, float64(l.summaryWrites)/float64(l.heads),
		l.requests, float64(l.requests)/float64(l.tests))
}

// quickMatrix yields tests named t1..tN that pass at once.
func quickMatrix(tests int) string {
	var names []string
	for i := 1; i <= tests; i++ {
		names = append(names, fmt.Sprintf("'t%d'", i))
	}
	return "from yci.run import Bash\n\ndef test_generator(build_id, pull):\n    for name in [" +
		strings.Join(names, ", ") + "]:\n        yield Bash('true', name=name)\n"
}

// runWriteLoad opens pulls pull requests of tests quick tests each, runs
// them on workers workers started with env, waits until every test has its
// final state, stops the workers (so nothing they hold back is still on
// its way) and counts what GitHub was sent. final reports each head's
// final states by test name, for the caller to check.
func runWriteLoad(tb testing.TB, s *stack, boxes, pulls, tests int, final func(sha string) map[string]string, env ...string) (writeLoad, []string) {
	tb.Helper()
	var workers []*worker
	for i := range boxes {
		workers = append(workers, s.startWorker(fmt.Sprintf("box%d", i+1), env...))
	}
	if _, err := s.gh.Commit(owner, repoName, "main", map[string]string{"README.md": "widgets\n"}, "Initial commit"); err != nil {
		tb.Fatal(err)
	}
	s.gh.ResetCounts()
	var shas []string // one head each: pull.txt makes every commit different
	for p := range pulls {
		branch := fmt.Sprintf("load-%d", p)
		if _, err := s.gh.Commit(owner, repoName, branch, map[string]string{".yci.py": quickMatrix(tests), "pull.txt": branch + "\n"}, "Add tests"); err != nil {
			tb.Fatal(err)
		}
		pr, err := s.gh.OpenPull(owner, repoName, fakegithub.PullSpec{Head: branch})
		if err != nil {
			tb.Fatal(err)
		}
		shas = append(shas, pr.GetHead().GetSHA())
	}
	ctx, cancel := context.WithTimeout(s.ctx, waitLimit)
	defer cancel()
	for _, sha := range shas {
		for {
			if got := final(sha); len(got) == tests {
				break
			}
			select {
			case <-ctx.Done():
				tb.Fatalf("waiting for %d final states of %.7s: %v (have %v)", tests, sha, ctx.Err(), final(sha))
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	stopCtx, stop := context.WithTimeout(s.ctx, 30*time.Second)
	defer stop()
	for _, w := range workers {
		if err := w.Stop(stopCtx); err != nil {
			tb.Errorf("stopping %s: %v", w.name, err)
		}
	}
	return s.countWrites(shas, tests), shas
}

// sentWrite is one write GitHub took for a head: a commit status or a
// check run's creation or update, by its context (name) and what it said.
type sentWrite struct {
	context, said string
}

// writesOf lists the writes GitHub took for sha: its commit statuses,
// oldest first, then its check-run writes, oldest first.
func (s *stack) writesOf(sha string) []sentWrite {
	var out []sentWrite
	for _, st := range s.gh.Statuses(owner, repoName, sha) {
		out = append(out, sentWrite{st.GetContext(), st.GetState() + " " + st.GetDescription()})
	}
	for _, run := range s.gh.CheckRunWrites(owner, repoName, sha) {
		said := run.GetStatus()
		if c := run.GetConclusion(); c != "" {
			said += "/" + c
		}
		out = append(out, sentWrite{run.GetName(), said + " " + run.GetOutput().GetTitle()})
	}
	return out
}

// summaryWrites lists what the summary "yci" of sha was written as,
// oldest first (statuses, then check runs).
func (s *stack) summaryWrites(sha string) []string {
	var out []string
	for _, w := range s.writesOf(sha) {
		if w.context == "yci" {
			out = append(out, w.said)
		}
	}
	return out
}

// countWrites counts what GitHub was sent for heads shas of tests tests
// each since its counts were reset.
func (s *stack) countWrites(shas []string, tests int) writeLoad {
	load := writeLoad{heads: len(shas), tests: len(shas) * tests, requests: s.gh.Requests().Total}
	for _, sha := range shas {
		for _, w := range s.writesOf(sha) {
			if w.context == "yci" {
				load.summaryWrites++
			} else {
				load.testWrites++
			}
		}
	}
	return load
}

// statusFinals are the final commit statuses of sha's tests.
func statusFinals(s *stack) func(sha string) map[string]string {
	return func(sha string) map[string]string {
		out := map[string]string{}
		for ctx, st := range s.gh.LatestStatuses(owner, repoName, sha) {
			if name, ok := strings.CutPrefix(ctx, "yci/"); ok && st.GetState() != "pending" {
				out[name] = st.GetState()
			}
		}
		return out
	}
}

// TestWriteBudget runs 8 pull requests of 4 quick tests on one worker,
// on two sharing the tests, and on two preparing two pulls at once each
// (the setting that once cost 2.5 summary writes per head in a burst),
// and counts the commit statuses GitHub received: every test ends on its
// final state, and the tests cost at most two writes each on average
// (queued and final: the running state is overtaken while held) and each
// head's summary at most two (pending and final), however many workers
// share the tests: one projector writes. The hold is longer than the
// default so that a stalled machine cannot make a quick test look slow;
// the summary interval is next to nothing, as if every test had waited in
// the queue for longer than the default interval: the progress of quick
// tests is not news, however long they wait.
func TestWriteBudget(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		boxes int
		env   []string
	}{
		{"1_workers", 1, nil},
		{"2_workers", 2, nil},
		{"2_workers_2_pull_slots", 2, []string{"YCI_PULL_SLOTS=2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newStack(t, stackOptions{})
			env := append([]string{"YCI_JOBS=2", "YCI_STATUS_HOLD=20s", "YCI_SUMMARY_INTERVAL=1ns"}, tt.env...)
			load, shas := runWriteLoad(t, s, tt.boxes, 8, 4, statusFinals(s), env...)
			t.Log(load)
			checkWriteBudget(t, load)
			for _, sha := range shas {
				if w := s.summaryWrites(sha); len(w) > 2 {
					t.Logf("%.7s: %d summary writes: %s", sha, len(w), strings.Join(w, "; "))
				}
			}
		})
	}
}

// checkWriteBudget fails the test when load spent more than two writes
// per test or per head's summary, or less than one per test (its final
// state, which the caller waited for). A test's queued state may be
// overtaken by its final before the projector gets to it, on a busy box:
// GitHub is then sent the final alone, as the record has it.
func checkWriteBudget(t *testing.T, load writeLoad) {
	t.Helper()
	if perTest := float64(load.testWrites) / float64(load.tests); perTest > 2 {
		t.Errorf("%.2f writes per test, want at most 2: %s", perTest, load)
	}
	if load.testWrites < load.tests {
		t.Errorf("%d test writes for %d tests: a final state is missing", load.testWrites, load.tests)
	}
	if queuedSkipped := 2*load.tests - load.testWrites; queuedSkipped > 0 {
		t.Logf("%d tests' queued states were overtaken by their finals before they were written", queuedSkipped)
	}
	if perHead := float64(load.summaryWrites) / float64(load.heads); perHead > 2 {
		t.Errorf("%.2f summary writes per head, want at most 2: %s", perHead, load)
	}
}

// BenchmarkStatusWrites runs 40 pull requests of 4 quick tests on two
// workers, as the issue measured, with the default write budget, and
// reports the writes and requests each test cost GitHub, all written by
// the projector (one writer for the fleet).
func BenchmarkStatusWrites(b *testing.B) {
	for b.Loop() {
		s := newStack(b, stackOptions{})
		load, _ := runWriteLoad(b, s, 2, 40, 4, statusFinals(s), "YCI_JOBS=2",
			"YCI_STATUS_HOLD="+projector.DefaultHold.String())
		b.ReportMetric(float64(load.testWrites)/float64(load.tests), "writes/test")
		b.ReportMetric(float64(load.summaryWrites)/float64(load.tests), "summary-writes/test")
		b.ReportMetric(float64(load.summaryWrites)/float64(load.heads), "summary-writes/head")
		b.ReportMetric(float64(load.requests)/float64(load.tests), "requests/test")
		b.Log(load)
	}
}
