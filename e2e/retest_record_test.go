package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-github/v88/github"

	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/pause"
)

// waitRecord waits until done holds for the tests of build b of pull n as
// its record says, read from the build.json the worker w writes from the
// record (a moment after the record changes), and returns their states.
// /retest and the re-run buttons act on the record, which may trail the
// statuses GitHub already shows: a test that comments right after a final
// status waits here first.
func (s *stack) waitRecord(w *worker, n, b int, what string, done func(map[string]events.TestState) bool) map[string]events.TestState {
	s.tb.Helper()
	url := w.httpRoot + owner + "/" + repoName + "/pulls/" + strconv.Itoa(n) + "/" + strconv.Itoa(b) + "/build.json"
	ctx, cancel := context.WithTimeout(s.ctx, waitLimit)
	defer cancel()
	var states map[string]events.TestState
	err := pause.Poll(ctx, 20*time.Millisecond, func() bool {
		states = buildStates(ctx, url)
		return states != nil && done(states)
	})
	if err != nil {
		s.tb.Fatalf("waiting for the record to show %s (last seen %v): %v", what, states, err)
	}
	return states
}

// buildStates reads the test states of a build.json, or nil while it is
// not there yet or cannot be read.
func buildStates(ctx context.Context, url string) map[string]events.TestState {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil
	}
	var st struct {
		Tests []struct {
			Name  string           `json:"name"`
			State events.TestState `json:"state"`
		} `json:"tests"`
	}
	if json.Unmarshal(body, &st) != nil {
		return nil
	}
	states := make(map[string]events.TestState, len(st.Tests))
	for _, t := range st.Tests {
		states[t.Name] = t.State
	}
	return states
}

// setStatus writes a commit status through GitHub's API as a person with
// the repository's token would, behind YourCI's back.
func (s *stack) setStatus(sha, statusContext, state, description string) {
	s.tb.Helper()
	base := s.gh.URL() + "/"
	c, err := github.NewClient(github.WithURLs(&base, &base), github.WithAuthToken(s.gh.Token()), github.WithTimeout(30*time.Second))
	if err != nil {
		s.tb.Fatal(err)
	}
	_, _, err = c.Repositories.CreateStatus(s.ctx, owner, repoName, sha, github.RepoStatus{
		Context: github.Ptr(statusContext), State: github.Ptr(state), Description: github.Ptr(description)})
	if err != nil {
		s.tb.Fatalf("setting %s to %s by hand: %v", statusContext, state, err)
	}
}

// finalIs is a waitRecord condition: every named test is in its state.
func finalIs(want map[string]events.TestState) func(map[string]events.TestState) bool {
	return func(got map[string]events.TestState) bool {
		for name, st := range want {
			if got[name] != st {
				return false
			}
		}
		return true
	}
}

// TestRetestTrustsTheRecordOverGitHub: GitHub's statuses say the opposite
// of the build record (set by hand, as a lagging or lost write would leave
// them), and a bare /retest re-runs what the record says failed, not what
// GitHub shows as failed.
func TestRetestTrustsTheRecordOverGitHub(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	w := s.startWorker("worker", "YCI_JOBS=2")
	s.grant("maintainer", "write")
	n, sha := s.openPull(map[string]string{".yci.py": yciPy([]string{"flaky", "steady"}, 0, 0), "test.sh": s.script(rerunScript)})
	s.waitFinal(sha, "yci/flaky", "yci/steady")
	s.waitRecord(w, n, 1, "flaky failed and steady passed", finalIs(map[string]events.TestState{
		"flaky": events.TestFailed, "steady": events.TestPassed}))

	s.setStatus(sha, "yci/flaky", "success", "set by hand")
	s.setStatus(sha, "yci/steady", "failure", "set by hand")
	c := s.comment(n, "maintainer", "/retest")

	wantURL := w.httpRoot + owner + "/" + repoName + "/pulls/" + strconv.Itoa(n) + "/1/flaky/rerun-1/out.txt"
	final := s.waitStatuses(sha, "flaky's re-run", func(m map[string]github.RepoStatus) bool {
		st := m["yci/flaky"]
		return st.GetTargetURL() == wantURL && st.GetState() == "success"
	})
	if st := final["yci/flaky"]; !strings.HasPrefix(st.GetDescription(), "passed in") {
		t.Errorf("flaky's re-run ended %q, want passed", st.GetDescription())
	}
	// The reaction comes after every re-run the command asked for was
	// queued, each with its "queued: re-run" status: steady has none.
	s.waitReaction(c.GetID(), "the command")
	for _, d := range s.descriptions(sha, "yci/steady") {
		if strings.Contains(d, "re-run") {
			t.Errorf("steady, which the record has as passed, was re-run: %q", d)
		}
	}
	if got := len(s.starts(sha, "steady")); got != 1 {
		t.Errorf("steady started %d times, want 1", got)
	}
	if got := len(s.starts(sha, "flaky")); got != 2 {
		t.Errorf("flaky started %d times, want 2", got)
	}
	s.waitRecord(w, n, 1, "flaky's re-run passed", finalIs(map[string]events.TestState{
		"flaky": events.TestPassed, "steady": events.TestPassed}))
}
