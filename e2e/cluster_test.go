package e2e

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/fakegithub"
)

// clusterPull is a pull request opened by the cluster test: its branch,
// number and head.
type clusterPull struct {
	branch string
	n      int
	sha    string
}

// TestClusterLeaderKilledMidBuild runs YourCI on three Debian nats-server
// processes with three replicas: a receiver and two workers with their own
// workspaces. While both workers run tests of a first pull, the node
// leading the work stream is killed with SIGKILL, and pull requests are
// opened while the two survivors elect a new leader. Every webhook must be
// accepted (none refused, each answered within GitHub's 10 s) and every
// test built once, on both boxes. Then the killed node is brought back,
// the leader is killed again (so the cluster's quorum needs the node that
// came back), and the same holds. It logs the figures issue 17 asks for:
// webhooks refused during the election, the longest answer, and how long
// after the kill the work resumed.
func TestClusterLeaderKilledMidBuild(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{nats: cluster, shortAckWait: true})
	s.startWorker("box1", "YCI_JOBS=2")
	s.startWorker("box2", "YCI_JOBS=2")
	blocked := []string{"a", "b", "c", "d"}
	first := s.openClusterPull("first", yciPy(blocked, 0, 0), s.script("wait_release\necho ok"))
	for _, name := range blocked {
		s.waitRunning(first.sha, name)
	}

	killedNode, killed := s.killStreamLeader()
	during := s.openClusterPulls("during", 3)
	s.checkAnswers(t, "first election", killed)
	s.release()
	resumed := s.firstStart(during, []string{"quick"})
	t.Logf("first election: work resumed %s after the kill (first test of a pull opened during the election started)",
		resumed.Sub(killed).Round(100*time.Millisecond))
	s.checkBuiltOnce(t, append(during, first), map[string][]string{"first": blocked, "during": {"quick"}})

	s.cluster.Restart(killedNode)
	s.cluster.WaitReady()
	_, killedAgain := s.killStreamLeader()
	after := s.openClusterPulls("after", 3)
	s.checkAnswers(t, "second election, the first killed node back", killedAgain)
	resumed = s.firstStart(after, []string{"quick"})
	t.Logf("second election: work resumed %s after the kill", resumed.Sub(killedAgain).Round(100*time.Millisecond))
	s.checkBuiltOnce(t, after, map[string][]string{"after": {"quick"}})

	for _, box := range []string{"box1", "box2"} {
		outs, err := filepath.Glob(s.workspacePath(box, owner, repoName, "pulls", "*", "*", "*", "out.txt"))
		if err != nil || len(outs) == 0 {
			t.Errorf("%s ran no test (%v): both workers must share the work", box, err)
		}
	}
}

// killStreamLeader SIGKILLs the node leading the work stream and returns
// it and when it died.
func (s *stack) killStreamLeader() (int, time.Time) {
	s.tb.Helper()
	leader, err := s.cluster.Leader(s.ctx, events.DefaultStream)
	if err != nil || leader == "" {
		s.tb.Fatalf("finding the leader of stream %s (%q): %v", events.DefaultStream, leader, err)
	}
	i := s.cluster.Node(leader)
	s.cluster.Kill(i)
	s.tb.Logf("killed %s, leader of stream %s", leader, events.DefaultStream)
	return i, time.Now()
}

// openClusterPull commits a .yci.py and test.sh on branch and opens a pull
// request from it; the stand-in delivers the webhook before returning.
func (s *stack) openClusterPull(branch, yci, script string) clusterPull {
	s.tb.Helper()
	n, sha := s.openBranch(branch, map[string]string{".yci.py": yci, "test.sh": script})
	return clusterPull{branch: branch, n: n, sha: sha}
}

// openClusterPulls opens count pull requests, each with one quick test, at
// once (their branches are committed first, so the webhooks go out
// together).
func (s *stack) openClusterPulls(prefix string, count int) []clusterPull {
	s.tb.Helper()
	pulls := make([]clusterPull, count)
	for i := range pulls {
		pulls[i].branch = fmt.Sprintf("%s-%d", prefix, i)
		files := map[string]string{".yci.py": yciPy([]string{"quick"}, 0, 0), "test.sh": s.script("echo " + pulls[i].branch)}
		if _, err := s.gh.Commit(owner, repoName, pulls[i].branch, files, "Add tests"); err != nil {
			s.tb.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, count)
	for i := range pulls {
		wg.Go(func() {
			pr, err := s.gh.OpenPull(owner, repoName, fakegithub.PullSpec{Head: pulls[i].branch, Title: pulls[i].branch})
			if err != nil {
				errs[i] = err
				return
			}
			pulls[i].n, pulls[i].sha = pr.GetNumber(), pr.GetHead().GetSHA()
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			s.tb.Fatal(err)
		}
	}
	return pulls
}

// checkAnswers checks every pull_request delivery sent since the kill was
// accepted, and logs how many were refused and the longest answer.
func (s *stack) checkAnswers(t *testing.T, what string, since time.Time) {
	t.Helper()
	refused, sent := 0, 0
	var longest time.Duration
	for _, d := range s.gh.Deliveries() {
		if d.Event != "pull_request" || d.At.Before(since) {
			continue
		}
		sent++
		longest = max(longest, d.Took)
		if d.StatusCode != http.StatusAccepted {
			refused++
			t.Errorf("%s: delivery %s answered %d (%v) after %s, want 202", what, d.ID, d.StatusCode, d.Err, d.Took)
		}
	}
	if sent == 0 {
		t.Fatalf("%s: no delivery sent after the kill", what)
	}
	t.Logf("%s: %d of %d webhooks refused; longest answer %s", what, refused, sent, longest.Round(10*time.Millisecond))
}

// firstStart waits for every named test of pulls to finish and returns
// when the first of them started.
func (s *stack) firstStart(pulls []clusterPull, names []string) time.Time {
	s.tb.Helper()
	var first time.Time
	for _, p := range pulls {
		s.waitFinal(p.sha, contexts(names...)...)
		for _, name := range names {
			if at := s.lastStart(p.sha, name); first.IsZero() || at.Before(first) {
				first = at
			}
		}
	}
	return first
}

// checkBuiltOnce checks that each pull built once, its tests (by branch
// prefix) each started once and passed.
func (s *stack) checkBuiltOnce(t *testing.T, pulls []clusterPull, tests map[string][]string) {
	t.Helper()
	for _, p := range pulls {
		prefix, _, _ := strings.Cut(p.branch, "-")
		names := tests[prefix]
		final := s.waitFinal(p.sha, contexts(names...)...)
		for _, name := range names {
			if st := final["yci/"+name]; st.GetState() != "success" {
				t.Errorf("pull %d (%s) test %s: final %s %q, want success:\n%s", p.n, p.branch, name, st.GetState(), st.GetDescription(), s.history(p.sha))
			}
			if got := len(s.starts(p.sha, name)); got != 1 {
				t.Errorf("pull %d (%s) test %s started %d times, want once", p.n, p.branch, name, got)
			}
		}
		builds := append(s.buildDirs("box1", p.n), s.buildDirs("box2", p.n)...)
		for _, b := range builds {
			if b != "1" {
				t.Errorf("pull %d (%s) has build %s on some box, want build 1 only: %v", p.n, p.branch, b, builds)
			}
		}
	}
}
