package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

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

// shownFinal is what GitHub shows as final for each context of sha: a
// commit status's state, or a completed check run's conclusion.
func (s *stack) shownFinal(sha string, checkRuns bool) map[string]string {
	out := map[string]string{}
	if checkRuns {
		for name, run := range s.gh.LatestCheckRuns(owner, repoName, sha) {
			if run.GetStatus() == "completed" {
				out[name] = run.GetConclusion()
			}
		}
		return out
	}
	for c, st := range s.gh.LatestStatuses(owner, repoName, sha) {
		if st.GetState() != "pending" {
			out[c] = st.GetState()
		}
	}
	return out
}

// outageLength is how long GitHub stays away in TestGitHubOutageMidBuild.
const outageLength = time.Minute

// TestGitHubOutageMidBuild makes GitHub answer every API request with 503
// while a build's tests run and end, with commit statuses and with check
// runs (App auth): the records keep the final states, GitHub shows none of
// them, and once GitHub is back every test's final state and the summary
// reach it from the records, with no handler writing again. The outage
// lasts until the records are final and the projector has tried GitHub
// again, and at least outageLength, as the issue asked: long enough for the
// projector's retries to back off as far as they go.
func TestGitHubOutageMidBuild(t *testing.T) {
	t.Parallel()
	for _, checkRuns := range []bool{false, true} {
		t.Run(map[bool]string{false: "statuses", true: "check_runs"}[checkRuns], func(t *testing.T) {
			t.Parallel()
			s := newStack(t, stackOptions{})
			env := []string{"YCI_JOBS=3"}
			if checkRuns {
				env = append(env, s.appEnv()...)
			}
			s.startWorker("box1", env...)
			names := []string{"pass", "fail", "also-pass"}
			n, sha := s.openPull(map[string]string{
				".yci.py": yciPy(names, 0, 0),
				"test.sh": s.script(`wait_release; [ "$T" != fail ]`),
			})
			for _, name := range names {
				s.waitFile("started-" + sha + "-" + name + "-*")
			}

			outage := time.Now()
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
			if got := s.shownFinal(sha, checkRuns); len(got) != 0 {
				t.Errorf("during the outage GitHub shows final states %v: a write got through a failing server", got)
			}
			// Not a wait for an event: the outage's length is the behaviour
			// under test.
			time.Sleep(time.Until(outage.Add(outageLength)))

			s.gh.ClearFailures()
			back := time.Now()
			want := map[string]string{"yci/pass": "success", "yci/fail": "failure", "yci/also-pass": "success", "yci": "failure"}
			s.waitUntil("every final state on GitHub after the outage", func() bool { return len(s.shownFinal(sha, checkRuns)) == len(want) })
			if diff := cmp.Diff(want, s.shownFinal(sha, checkRuns)); diff != "" {
				t.Errorf("after the outage GitHub shows (-want +got):\n%s\nhistory:\n%s", diff, s.history(sha))
			}
			if checkRuns {
				if runs := s.gh.CheckRuns(owner, repoName, sha); len(runs) != len(want) {
					t.Errorf("%d check runs, want one per test and the summary: retries must not create more", len(runs))
				}
			}
			t.Logf("outage of %s: %d requests refused; every final state on GitHub %s after it ended",
				back.Sub(outage).Round(time.Second), s.gh.Requests().Injected, time.Since(back).Round(10*time.Millisecond))
		})
	}
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
