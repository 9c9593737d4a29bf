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
//
// It failed about five runs in seven until two causes were found: Debian's
// nats-server 2.9.10 let two compare-and-set updates of one build record,
// based on the same revision, both be stored (tests released together
// finish together; see electionProofKV.Update), and the receiver's head
// record, sent to a bucket still electing its leader, used up the whole
// publish timeout. The cluster now waits for every stream and bucket to be
// current before the second kill, as an operator would.
func TestClusterLeaderKilledMidBuild(t *testing.T) {
	t.Parallel()
	// The production ack wait: no worker dies here, and a job whose
	// acknowledgement or keep-alive is lost in the election must not run
	// twice.
	s := newStack(t, stackOptions{nats: cluster})
	s.startWorker("box1", "YCI_JOBS=2")
	s.startWorker("box2", "YCI_JOBS=2")
	blocked := []string{"a", "b", "c", "d"}
	first := s.openClusterPull("first", yciPy(blocked, 0, 0), s.script("wait_release\necho ok"))
	for _, name := range blocked {
		s.waitRunning(first.sha, name)
	}

	s.cluster.WaitCurrent(events.DefaultStream)
	// The blocked tests finish, and are acknowledged and recorded, during
	// the election.
	during := s.commitClusterPulls("during", 3)
	killedNode, killed := s.killStreamLeader(s.release)
	s.openClusterPulls(during)
	s.checkAnswers(t, "first election", killed)
	resumed := s.firstStart(during, []string{"quick"})
	t.Logf("first election: work resumed %s after the kill (first test of a pull opened during the election started)",
		resumed.Sub(killed).Round(100*time.Millisecond))
	s.checkBuiltOnce(t, append(during, first), map[string][]string{"first": blocked, "during": {"quick"}})

	s.cluster.Restart(killedNode)
	s.cluster.WaitReady()
	// Every stream and bucket, not the work stream alone: a group whose
	// third replica is still catching up has no quorum once another node
	// dies.
	s.cluster.WaitCurrent()
	after := s.commitClusterPulls("after", 3)
	_, killedAgain := s.killStreamLeader(func() {})
	s.openClusterPulls(after)
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

// electionLead is how long after a kill the cluster test sends its
// webhooks. nats-server 2.9 lets a follower wait 4 to 9 s (from the last
// heartbeat, sent every second) before it stands for election, so the
// stream is leaderless from the kill until 3 to 9 s after it. Sent this
// long after the kill, the webhooks still meet no leader, and the
// receiver's 8 s of retries reach past the longest election; one arriving
// at the very moment of the kill can still meet a 9 s election and get a
// 503 after 8 s (see the README on clusters).
const electionLead = 1500 * time.Millisecond

// killStreamLeader SIGKILLs the node leading the work stream, calls
// then, waits electionLead, and returns the node and when it died.
func (s *stack) killStreamLeader(then func()) (int, time.Time) {
	s.tb.Helper()
	leader, err := s.cluster.Leader(s.ctx, events.DefaultStream)
	if err != nil || leader == "" {
		s.tb.Fatalf("finding the leader of stream %s (%q): %v", events.DefaultStream, leader, err)
	}
	i := s.cluster.Node(leader)
	s.cluster.Kill(i)
	killed := time.Now()
	s.tb.Logf("killed %s, leader of stream %s", leader, events.DefaultStream)
	then()
	time.Sleep(electionLead) // not a wait for an event: the webhooks are to land within the election
	return i, killed
}

// openClusterPull commits a .yci.py and test.sh on branch and opens a pull
// request from it; the stand-in delivers the webhook before returning.
func (s *stack) openClusterPull(branch, yci, script string) clusterPull {
	s.tb.Helper()
	n, sha := s.openBranch(branch, map[string]string{".yci.py": yci, "test.sh": script})
	return clusterPull{branch: branch, n: n, sha: sha}
}

// commitClusterPulls commits count branches, each with one quick test,
// for openClusterPulls to open later: on a busy box committing takes
// seconds, and the webhooks are to go out together within an election.
func (s *stack) commitClusterPulls(prefix string, count int) []clusterPull {
	s.tb.Helper()
	pulls := make([]clusterPull, count)
	for i := range pulls {
		pulls[i].branch = fmt.Sprintf("%s-%d", prefix, i)
		files := map[string]string{".yci.py": yciPy([]string{"quick"}, 0, 0), "test.sh": s.script("echo " + pulls[i].branch)}
		if _, err := s.gh.Commit(owner, repoName, pulls[i].branch, files, "Add tests"); err != nil {
			s.tb.Fatal(err)
		}
	}
	return pulls
}

// openClusterPulls opens a pull request from each committed branch at
// once, filling in their numbers and heads.
func (s *stack) openClusterPulls(pulls []clusterPull) {
	s.tb.Helper()
	var wg sync.WaitGroup
	errs := make([]error, len(pulls))
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
	// A publish to a stream with a leader takes milliseconds: an answer
	// this fast would mean the election was over and nothing was tested.
	if longest < time.Second {
		t.Errorf("%s: the longest answer took %s; the webhooks did not meet the election", what, longest)
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
