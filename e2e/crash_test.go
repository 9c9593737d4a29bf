package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-github/v88/github"
	"github.com/nats-io/nats.go"

	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/launch"
	"github.com/yourci/yourci/pkg/pause"
)

// TestWorkerKilledMidTestIsDeliveredAgain kills a worker (SIGKILL to its
// process group) while its test runs; another worker, on another box that
// never saw the pull request, gets the test again and finishes it. It runs
// with the production ack wait (events.DefaultAckWait) and logs how long
// the test waited for the other worker.
func TestWorkerKilledMidTestIsDeliveredAgain(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	first := s.startWorker("box1", "YCI_JOBS=1")
	n, sha := s.openPull(map[string]string{".yci.py": yciPy([]string{"slow"}, 0, 0), "test.sh": s.script("wait_release\necho finished")})
	s.waitRunning(sha, "slow")

	first.Kill()
	killed := time.Now()
	s.release() // the test passes from now on, wherever it runs
	second := s.startWorker("box2", "YCI_JOBS=1")

	final := s.waitFinal(sha, "yci/slow")
	if st := final["yci/slow"]; st.GetState() != "success" {
		t.Errorf("final status %s %q, want success:\n%s", st.GetState(), st.GetDescription(), s.history(sha))
	}
	if got := len(s.starts(sha, "slow")); got != 2 {
		t.Errorf("test started %d times, want 2 (before the crash and after)", got)
	}
	t.Logf("killed worker's test started again on the other box %s after the kill (ack wait %s)",
		s.lastStart(sha, "slow").Sub(killed).Round(100*time.Millisecond), events.DefaultAckWait)
	running := 0
	for _, d := range s.descriptions(sha, "yci/slow") {
		if strings.HasPrefix(d, "pending: running") {
			running++
		}
	}
	// One per start, and at most one more: the killed box may have
	// written its running state without living to record it in the build
	// record, and the projector that takes over writes it again.
	if running < 2 || running > 3 {
		t.Errorf("%d running statuses, want 2, or 3 with the killed box's last write made again:\n%s", running, s.history(sha))
	}
	log, err := os.ReadFile(s.workspacePath(second.name, owner, repoName, "pulls", strconv.Itoa(n), "1", "slow", "out.txt"))
	if err != nil || !strings.Contains(string(log), "finished") {
		t.Errorf("the second box's log lacks the finished run (%v):\n%s", err, log)
	}
}

// TestWorkerKilledDuringHandlePullIsDeliveredAgain kills the worker while
// it evaluates .yci.py; the same box, restarted, handles the pull event
// again and the build completes once.
func TestWorkerKilledDuringHandlePullIsDeliveredAgain(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{shortAckWait: true})
	w := s.startWorker("box", "YCI_JOBS=1")
	slowPy := `import os, time
from yci.run import Bash

def test_generator(build_id, pull):
    open(os.path.join(` + pyString(s.marks) + `, 'evaluating-%d' % os.getpid()), 'w').close()
    time.sleep(2)
    yield Bash('./test.sh', env={'T': 'after-crash'})
`
	n, sha := s.openPull(map[string]string{".yci.py": slowPy, "test.sh": s.script("echo built")})
	s.waitFile("evaluating-*")

	w.Kill()
	s.startWorker("box", "YCI_JOBS=1")

	final := s.waitFinal(sha, "yci/after-crash")
	if st := final["yci/after-crash"]; st.GetState() != "success" {
		t.Errorf("final status %s %q, want success", st.GetState(), st.GetDescription())
	}
	// A resumed build keeps the states its tests reached: tests queued
	// before a crash may have finished, and must not turn pending. The
	// killed worker held the projector lease, so its successor may show
	// only the states reached after the lease lapsed.
	checkNeverBack(t, s.descriptions(sha, "yci/after-crash"), "success: passed in")
	if diff := cmp.Diff([]string{"1"}, s.buildDirs(w.name, n)); diff != "" {
		t.Errorf("builds (-want +got):\n%s", diff)
	}
	if got := len(s.starts(sha, "after-crash")); got != 1 {
		t.Errorf("test ran %d times, want 1", got)
	}
	if evals := countFiles(t, s, "evaluating-*"); evals != 2 {
		t.Errorf(".yci.py evaluated %d times, want 2 (killed, then again)", evals)
	}
}

// stop sends SIGTERM and waits for the exit; the wait is generous next to
// any grace period, so only a process that ignores SIGTERM is killed (and
// reported).
func stop(s *stack, p *launch.Process) error {
	ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
	defer cancel()
	return p.Stop(ctx)
}

// watchNaks subscribes to JetStream's advisories of messages handed back
// (Nak) by consumer; the subscription ends with the test.
func (s *stack) watchNaks(consumer string) *nats.Subscription {
	s.tb.Helper()
	nc, err := nats.Connect(s.cfg.NATSURL, nats.Timeout(10*time.Second))
	if err != nil {
		s.tb.Fatal(err)
	}
	s.tb.Cleanup(nc.Close)
	sub, err := nc.SubscribeSync("$JS.EVENT.ADVISORY.CONSUMER.MSG_NAKED." + events.DefaultStream + "." + consumer)
	if err != nil {
		s.tb.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		s.tb.Fatal(err)
	}
	return sub
}

func pyString(s string) string { return strconv.Quote(s) }

func countFiles(t *testing.T, s *stack, pattern string) int {
	t.Helper()
	entries, err := os.ReadDir(s.marks)
	if err != nil {
		t.Fatal(err)
	}
	prefix := strings.TrimSuffix(pattern, "*")
	n := 0
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			n++
		}
	}
	return n
}

// TestSIGTERMHandsRunningWorkBack stops a worker with SIGTERM while its
// test runs, with a short grace: the worker stops the test, hands the job
// back and exits by itself with status 0; a new worker finishes the job.
// A receiver stopped with SIGTERM exits 0 as well.
func TestSIGTERMHandsRunningWorkBack(t *testing.T) {
	t.Parallel()
	// A short ack wait: a hand-back lost on the way fails the test below
	// without making the rest of it wait a minute.
	s := newStack(t, stackOptions{shortAckWait: true})
	w := s.startWorker("box1", "YCI_JOBS=1", "YCI_GRACE=1s")
	_, sha := s.openPull(map[string]string{".yci.py": yciPy([]string{"long"}, 0, 0), "test.sh": s.script("wait_release\necho finished")})
	s.waitRunning(sha, "long")
	naks := s.watchNaks(events.TestConsumerFor(events.Repo{Owner: owner, Name: repoName}))

	if err := stop(s, w.Process); err != nil {
		t.Fatalf("worker did not exit cleanly on SIGTERM: %v", err)
	}
	// A job handed back reaches JetStream before the worker exits; one
	// lost on the way would wait for its ack wait instead.
	if _, err := naks.NextMsg(10 * time.Second); err != nil {
		t.Errorf("no hand-back (Nak) of the running job reached JetStream: %v", err)
	}
	for _, pid := range s.starts(sha, "long") {
		if alive(pid) {
			t.Errorf("test process %d still runs after its worker stopped", pid)
		}
	}
	latest := s.gh.LatestStatuses(owner, repoName, sha)["yci/long"]
	if latest.GetState() != "pending" || !strings.HasPrefix(latest.GetDescription(), "queued") {
		t.Errorf("status after the hand-back: %s %q, want pending and queued", latest.GetState(), latest.GetDescription())
	}

	s.release()
	s.startWorker("box2", "YCI_JOBS=1")
	if st := s.waitFinal(sha, "yci/long")["yci/long"]; st.GetState() != "success" {
		t.Errorf("final status %s %q, want success", st.GetState(), st.GetDescription())
	}
	if got := len(s.starts(sha, "long")); got != 2 {
		t.Errorf("test started %d times, want 2", got)
	}

	if err := stop(s, s.recv.Process); err != nil {
		t.Errorf("receiver did not exit cleanly on SIGTERM: %v", err)
	}
}

// TestNewCommitSupersedesQueuedTests pushes a commit while the previous
// head's tests wait behind a long one: they end as errors naming the new
// head, without running, and the new head is built.
func TestNewCommitSupersedesQueuedTests(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	s.startWorker("worker", "YCI_JOBS=1")
	names := []string{"first", "second", "third"}
	n, old := s.openPull(map[string]string{".yci.py": yciPy(names, 0, 0), "test.sh": s.script("wait_release\necho done")})
	s.waitRunning(old, "first")
	s.waitStatuses(old, "all queued", func(m map[string]github.RepoStatus) bool { return testContexts(m) == len(names) })

	newer := s.push(n)
	s.release()

	final := s.waitFinal(old, contexts(names...)...)
	for _, name := range names[1:] {
		st := final["yci/"+name]
		if st.GetState() != "error" || !strings.Contains(st.GetDescription(), "superseded by "+newer[:7]) {
			t.Errorf("%s of the old head: %s %q, want error superseded by %.7s", name, st.GetState(), st.GetDescription(), newer)
		}
		if got := len(s.starts(old, name)); got != 0 {
			t.Errorf("%s of the old head ran %d times, want 0", name, got)
		}
		for _, d := range s.descriptions(old, "yci/"+name) {
			if strings.HasPrefix(d, "pending: running") {
				t.Errorf("%s of the old head was reported running: %s", name, d)
			}
		}
	}
	st := final["yci/first"]
	t.Logf("the old head's running test ended %s %q", st.GetState(), st.GetDescription())
	// The summary yci too: it is final once every test is.
	for c, st := range s.waitFinal(newer, append(contexts(names...), "yci")...) {
		if st.GetState() != "success" {
			t.Errorf("%s of the new head: %s %q, want success", c, st.GetState(), st.GetDescription())
		}
	}
}

// TestRestartedWorkerEndsTheKilledWorkersTest kills a worker mid-test and
// restarts it on the same workspace: the test the dead worker left running
// is killed before the job's new attempt starts in its directory.
func TestRestartedWorkerEndsTheKilledWorkersTest(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{shortAckWait: true})
	first := s.startWorker("box", "YCI_JOBS=1")
	_, sha := s.openPull(map[string]string{".yci.py": yciPy([]string{"stuck"}, 0, 0),
		"test.sh": s.script(`[ -e "$M/go" ] && { echo finished; exit 0; }; sleep 1000`)})
	s.waitRunning(sha, "stuck")
	orphans := s.starts(sha, "stuck")

	first.Kill()
	if err := os.WriteFile(filepath.Join(s.marks, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s.startWorker("box", "YCI_JOBS=1")

	if st := s.waitFinal(sha, "yci/stuck")["yci/stuck"]; st.GetState() != "success" {
		t.Fatalf("final status %s %q, want success:\n%s", st.GetState(), st.GetDescription(), s.history(sha))
	}
	// The new worker sends the leftovers SIGKILL as it starts; the kill
	// takes effect a moment later.
	waitCtx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancel()
	for _, pid := range orphans {
		if pause.Poll(waitCtx, 20*time.Millisecond, func() bool { return !alive(pid) }) != nil {
			t.Errorf("the killed worker's test (pid %d) is still running", pid)
		}
	}
}
