package e2e

import (
	"context"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-github/v88/github"

	"github.com/yourci/yourci/pkg/fakegithub"
	"github.com/yourci/yourci/pkg/pause"
)

// TestNATSRestartLosesNothing restarts the JetStream server (same store,
// same port) while one test runs and three wait in the queue: every test
// still ends in success, in the one build.
func TestNATSRestartLosesNothing(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{shortAckWait: true})
	w := s.startWorker("worker", "YCI_JOBS=1")
	names := []string{"t1", "t2", "t3", "t4"}
	n, sha := s.openPull(map[string]string{".yci.py": yciPy(names, 0, 0), "test.sh": s.script("sleep 1\necho done")})
	s.waitStatuses(sha, "all queued", func(m map[string]github.RepoStatus) bool { return testContexts(m) == len(names) })
	s.waitRunning(sha, "t1")

	s.restartNATS(500 * time.Millisecond)

	final := s.waitFinal(sha, contexts(names...)...)
	for _, name := range names {
		if st := final["yci/"+name]; st.GetState() != "success" {
			t.Errorf("%s: %s %q, want success", name, st.GetState(), st.GetDescription())
		}
		queued := 0
		for _, d := range s.descriptions(sha, "yci/"+name) {
			if d == "pending: queued" {
				queued++
			}
		}
		if queued != 1 {
			t.Errorf("%s queued %d times, want once:\n%s", name, queued, s.history(sha))
		}
		if _, err := os.Stat(s.workspacePath(w.name, owner, repoName, "pulls", strconv.Itoa(n), "1", name, "out.txt")); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if runs := len(s.starts(sha, name)); runs > 1 {
			t.Logf("%s ran %d times (its acknowledgement was lost in the restart)", name, runs)
		}
	}
	if diff := cmp.Diff([]string{"1"}, s.buildDirs(w.name, n)); diff != "" {
		t.Errorf("builds (-want +got):\n%s", diff)
	}
}

// TestGitHubFaultsDelayStatusesWithoutLosingThem makes GitHub refuse the
// first status calls with a 500, a 502, a secondary rate limit (403 with
// Retry-After) and a 429: the final states still arrive, and each refusal
// cost exactly one more call.
func TestGitHubFaultsDelayStatusesWithoutLosingThem(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	w := s.startWorker("worker", "YCI_JOBS=1")
	statuses := "/repos/" + owner + "/" + repoName + "/statuses/"
	retryAfter := http.Header{"Retry-After": {"1"}}
	faults := []struct {
		code   int
		header http.Header
	}{
		{http.StatusInternalServerError, nil},
		{http.StatusBadGateway, nil},
		{http.StatusForbidden, retryAfter},
		{http.StatusTooManyRequests, retryAfter},
	}
	for _, f := range faults {
		s.gh.FailNext(http.MethodPost, statuses, 1, f.code, f.header)
	}
	_, sha := s.openPull(map[string]string{".yci.py": yciPy([]string{"steady"}, 0, 0), "test.sh": s.script("echo ok")})

	s.waitFinal(sha, "yci/steady", "yci")
	// The projector retries from the build's latest record: the queued
	// and running states the faults held back are overtaken, never sent
	// after the fact.
	checkHistory(t, s.descriptions(sha, "yci/steady"), []string{"success: passed in"})
	// Counted once the worker has stopped, so that no write is on its way;
	// a request is counted when it arrives and its status stored just
	// after, hence the short wait for the two to agree.
	if err := stop(s, w.Process); err != nil {
		t.Fatalf("stopping the worker: %v", err)
	}
	var got fakegithub.Counts
	var calls, posted int
	waitCtx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
	defer cancel()
	if err := pause.Poll(waitCtx, 20*time.Millisecond, func() bool {
		got = s.gh.Requests()
		posted = len(s.gh.Statuses(owner, repoName, sha))
		calls = got.ByRoute["POST /repos/{owner}/{repo}/statuses/{sha}"]
		return calls == posted+len(faults)
	}); err != nil {
		t.Logf("requests and stored statuses never agreed: %v", err)
	}
	if got.Injected != len(faults) {
		t.Errorf("%d injected faults answered, want %d", got.Injected, len(faults))
	}
	if calls != posted+len(faults) {
		t.Errorf("%d status calls for %d statuses and %d faults: want exactly one retry per fault", calls, posted, len(faults))
	}
}

// TestTwoWorkersShareTheWork runs a matrix of six one-at-a-time tests on
// two workers with separate workspaces: each test runs once, and each
// workspace holds some of the logs.
func TestTwoWorkersShareTheWork(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	boxes := []*worker{s.startWorker("box1", "YCI_JOBS=1"), s.startWorker("box2", "YCI_JOBS=1")}
	names := []string{"a", "b", "c", "d", "e", "f"}
	n, sha := s.openPull(map[string]string{".yci.py": yciPy(names, 0, 0), "test.sh": s.script("sleep 1\necho done")})

	// The summary yci too: it is final once every test is.
	for c, st := range s.waitFinal(sha, append(contexts(names...), "yci")...) {
		if st.GetState() != "success" {
			t.Errorf("%s: %s %q, want success", c, st.GetState(), st.GetDescription())
		}
	}
	ran := map[string][]string{} // box → tests whose log it holds
	for _, name := range names {
		var where []string
		for _, b := range boxes {
			if _, err := os.Stat(s.workspacePath(b.name, owner, repoName, "pulls", strconv.Itoa(n), "1", name, "out.txt")); err == nil {
				where = append(where, b.name)
				ran[b.name] = append(ran[b.name], name)
			}
		}
		if len(where) != 1 {
			t.Errorf("%s's log is in %d workspaces (%s), want exactly one", name, len(where), strings.Join(where, ", "))
		}
		if runs := len(s.starts(sha, name)); runs != 1 {
			t.Errorf("%s ran %d times, want 1", name, runs)
		}
	}
	for _, b := range boxes {
		if len(ran[b.name]) == 0 {
			t.Errorf("%s ran none of the tests (%v)", b.name, ran)
		}
	}
	t.Logf("tests per box: %v", ran)
}
