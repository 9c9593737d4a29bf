package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/yourci/yourci/pkg/events"
)

// buildStates reads the test states of a build from the build.json the
// worker's pages keep from the build record.
func (s *stack) buildStates(worker string, n, build int) map[string]events.TestState {
	data, err := os.ReadFile(s.workspacePath(worker, owner, repoName, "pulls", strconv.Itoa(n), strconv.Itoa(build), "build.json"))
	if err != nil {
		return nil
	}
	var state struct {
		Tests []struct {
			Name  string           `json:"name"`
			State events.TestState `json:"state"`
		} `json:"tests"`
	}
	if err := json.Unmarshal(data, &state); err != nil {
		return nil
	}
	out := map[string]events.TestState{}
	for _, t := range state.Tests {
		out[t.Name] = t.State
	}
	return out
}

// TestGitHubOutageMidBuild makes GitHub answer every API request with 503
// while a build's tests run and end: the records keep their final states,
// GitHub shows none of them, and once GitHub is back every final state and
// the summary reach it from the records, with no handler writing again.
func TestGitHubOutageMidBuild(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	s.startWorker("box1", "YCI_JOBS=3")
	names := []string{"pass", "fail", "also-pass"}
	n, sha := s.openPull(map[string]string{
		".yci.py": yciPy(names, 0, 0),
		"test.sh": s.script(`wait_release; [ "$T" != fail ]`),
	})
	for _, name := range names {
		s.waitRunning(sha, name)
	}

	s.gh.FailNext("", "/repos/", 1<<30, http.StatusServiceUnavailable, nil)
	s.release()
	s.waitUntil("the records to hold every final state", func() bool {
		states := s.buildStates("box1", n, 1)
		for _, name := range names {
			if !states[name].Final() {
				return false
			}
		}
		return true
	})
	refused := s.gh.Requests().Injected
	s.waitUntil("the projector to try GitHub again during the outage", func() bool {
		return s.gh.Requests().Injected > refused
	})
	for c, st := range s.gh.LatestStatuses(owner, repoName, sha) {
		if st.GetState() != "pending" {
			t.Errorf("during the outage GitHub shows %s %s: a write got through a failing server", c, st.GetState())
		}
	}

	s.gh.ClearFailures()
	final := s.waitFinal(sha, append(contexts(names...), "yci")...)
	want := map[string]string{"yci/pass": "success", "yci/fail": "failure", "yci/also-pass": "success", "yci": "failure"}
	for c, state := range want {
		if got := final[c]; got.GetState() != state {
			t.Errorf("after the outage %s is %s %q, want %s\nhistory:\n%s", c, got.GetState(), got.GetDescription(), state, s.history(sha))
		}
	}
	t.Logf("%d requests refused during the outage; history:\n%s", s.gh.Requests().Injected, s.history(sha))
}

// checkNeverBack checks a test's status history (descriptions) as the
// projector writes it from the records: GitHub may miss states the record
// moved past while no write could go (a lease changing hands, an outage),
// but it never goes back to queued once the test ran or ended, and it
// ends with a description starting with wantLast.
func checkNeverBack(t *testing.T, got []string, wantLast string) {
	t.Helper()
	ran := false
	for _, d := range got {
		if ran && strings.HasPrefix(d, "pending: queued") {
			t.Errorf("status history went back to queued:\n  %s", strings.Join(got, "\n  "))
			return
		}
		ran = ran || !strings.HasPrefix(d, "pending: queued")
	}
	if len(got) == 0 || !strings.HasPrefix(got[len(got)-1], wantLast) {
		t.Errorf("status history:\n  %s\nwant it to end with %q", strings.Join(got, "\n  "), wantLast)
	}
}
