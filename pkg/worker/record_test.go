package worker

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-github/v88/github"

	"github.com/yourci/yourci/pkg/artifacts"
	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/pause"
	"github.com/yourci/yourci/pkg/pipeline"
	"github.com/yourci/yourci/pkg/status"
)

func TestApplyChange(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	st := func(desc string) status.Status { return status.Status{Description: desc, TargetURL: "http://box/log"} }
	failed := &pipeline.Result{Outcome: pipeline.Failed, Duration: 2 * time.Second}
	passed := &pipeline.Result{Outcome: pipeline.Passed, Duration: time.Second}
	type step struct {
		rerun   int
		attempt int
		state   events.TestState
		res     *pipeline.Result
	}
	cases := []struct {
		name     string
		steps    []step
		state    events.TestState
		outcomes string
		flaky    bool
	}{
		{"passed_at_once", []step{{0, 1, events.TestRunning, nil}, {0, 1, events.TestPassed, passed}},
			events.TestPassed, "1:passed", false},
		{"passed_after_a_retry_is_flaky", []step{{0, 1, events.TestRunning, nil}, {0, 1, events.TestRetrying, failed},
			{0, 2, events.TestRunning, nil}, {0, 2, events.TestPassed, passed}}, events.TestPassed, "1:failed 2:passed", true},
		{"failed_after_a_retry_is_not_flaky", []step{{0, 1, events.TestRunning, nil}, {0, 1, events.TestRetrying, failed},
			{0, 2, events.TestRunning, nil}, {0, 2, events.TestFailed, failed}}, events.TestFailed, "1:failed 2:failed", false},
		{"stopped_attempt_ends_without_a_result", []step{{0, 1, events.TestRunning, nil}, {0, 1, events.TestErrored, nil}},
			events.TestErrored, "1:stopped", false},
		{"redelivered_attempt_starts_over", []step{{0, 1, events.TestRunning, nil}, {0, 1, events.TestQueued, nil},
			{0, 1, events.TestRunning, nil}, {0, 1, events.TestPassed, passed}}, events.TestPassed, "1:passed", false},
		{"late_word_of_an_earlier_attempt_changes_nothing", []step{{0, 1, events.TestRunning, nil}, {0, 1, events.TestRetrying, failed},
			{0, 2, events.TestRunning, nil}, {0, 1, events.TestErrored, nil}}, events.TestRunning, "1:failed 2:", false},
		{"a_rerun_follows_the_last_retry_and_passing_it_is_flaky", []step{{0, 1, events.TestRunning, nil}, {0, 1, events.TestRetrying, failed},
			{0, 2, events.TestRunning, nil}, {0, 2, events.TestFailed, failed}, {1, 1, events.TestRunning, nil}, {1, 1, events.TestPassed, passed}},
			events.TestPassed, "1:failed 2:failed 1:passed", true},
		{"late_word_of_the_first_run_changes_no_rerun", []step{{1, 1, events.TestRunning, nil}, {0, 2, events.TestErrored, nil}},
			events.TestRunning, "1:", false},
		{"result_without_a_running_word_still_counts", []step{{0, 1, events.TestFailed, failed}}, events.TestFailed, "1:failed", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tr := &events.TestRecord{Name: "t"}
			for i, s := range tc.steps {
				applyChange(tr, s.rerun, s.attempt, s.state, st(string(s.state)), s.res, t0.Add(time.Duration(i)*time.Second))
			}
			var outcomes []string
			for _, a := range tr.Attempts {
				outcomes = append(outcomes, strings.TrimSpace(strconv.Itoa(a.Number)+":"+a.Outcome))
			}
			if tr.State != tc.state || strings.Join(outcomes, " ") != tc.outcomes || tr.Flaky != tc.flaky {
				t.Errorf("got %s %q flaky=%v, want %s %q flaky=%v", tr.State, outcomes, tr.Flaky, tc.state, tc.outcomes, tc.flaky)
			}
			if tr.LogURL != "http://box/log" {
				t.Errorf("log URL %q not recorded", tr.LogURL)
			}
		})
	}
}

func TestBuildPagesAndSummaryFollowTheBuild(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	pr := r.openPull(t, map[string]string{".yci.py": seedMatrix, "test.sh": testScript})
	sha := pr.GetHead().GetSHA()
	r.publish(t, pr.GetNumber(), sha, "delivery-1")
	final := r.waitFor(t, sha, func(m map[string]github.RepoStatus) bool {
		s := m["yci"]
		return s.GetState() != "" && s.GetState() != "pending"
	})

	pageURL := httpRoot + owner + "/" + repoName + "/pulls/1/1/index.html"
	t.Run("summary_goes_from_pending_to_success_with_counts_and_the_page", func(t *testing.T) {
		var history []string
		for _, s := range r.gh.Statuses(owner, repoName, sha) {
			if s.GetContext() == "yci" {
				history = append(history, s.GetState()+": "+s.GetDescription())
				if s.GetTargetURL() != pageURL {
					t.Errorf("summary links to %q, want %q", s.GetTargetURL(), pageURL)
				}
			}
		}
		// Every summary also names the base it tested; the head here
		// contains it, so that is the head itself.
		tail := "; tested merged into main at "
		if len(history) < 2 || !strings.HasPrefix(history[0], "pending: 4 queued of 4"+tail) {
			t.Errorf("summary history %q, want it to start with every test queued", history)
		}
		if got := history[len(history)-1]; !strings.HasPrefix(got, "success: 4 passed (1 flaky) of 4"+tail) {
			t.Errorf("final summary %q", got)
		}
		if s := final["yci"]; !strings.HasPrefix(s.GetDescription(), "4 passed (1 flaky) of 4"+tail) {
			t.Errorf("latest summary %q", s.GetDescription())
		}
	})
	dir, err := r.ws.BuildDir(artifacts.Build{Owner: owner, Repo: repoName, Pull: 1, Number: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("build_page_lists_every_test_and_marks_the_flaky_one", func(t *testing.T) {
		// The pages follow the record a moment after the summary is sent.
		page := waitForFile(t, filepath.Join(dir, "index.html"), "success: 4 passed (1 flaky) of 4")
		for _, c := range matrix {
			name := strings.TrimPrefix(c, "yci/")
			if !strings.Contains(string(page), `<span id="state-`+name+`" class="state passed">passed`) {
				t.Errorf("page does not show %s passed", name)
			}
		}
		if !strings.Contains(string(page), "passed (flaky)") || strings.Contains(string(page), "<script") {
			t.Errorf("finished page lacks the flaky mark or still follows the build:\n%s", page)
		}
		// The pull request's html_url, as GitHub's API gave it, and its
		// commit's page made from it (issue 15).
		for _, want := range []string{`href="` + pr.GetHTMLURL() + `"`, `href="` + strings.TrimSuffix(pr.GetHTMLURL(), "/pull/1") + "/commit/" + sha + `"`} {
			if pr.GetHTMLURL() == "" || !strings.Contains(string(page), want) {
				t.Errorf("page lacks the link %s", want)
			}
		}
		var state struct {
			Summary struct{ State string }
			Tests   []struct {
				Name     string
				Flaky    bool
				Attempts []events.AttemptRecord
			}
		}
		data, err := os.ReadFile(filepath.Join(dir, "build.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, &state); err != nil {
			t.Fatal(err)
		}
		if state.Summary.State != "success" || len(state.Tests) != 4 {
			t.Fatalf("build.json: %s", data)
		}
		for _, tt := range state.Tests {
			wantAttempts := map[bool]int{true: 2, false: 1}[tt.Name == "bar-y"]
			if tt.Flaky != (tt.Name == "bar-y") || len(tt.Attempts) != wantAttempts {
				t.Errorf("%s: flaky=%v with %d attempts", tt.Name, tt.Flaky, len(tt.Attempts))
			}
		}
	})
	t.Run("repository_page_lists_the_pull_and_the_retried_test", func(t *testing.T) {
		page := waitForFile(t, filepath.Join(r.ws.Root(), owner, repoName, "index.html"), "4 passed (1 flaky) of 4")
		for _, want := range []string{`href="pulls/1/1/index.html"`, "<code>bar-y</code>"} {
			if !strings.Contains(string(page), want) {
				t.Errorf("repository page lacks %s:\n%s", want, page)
			}
		}
	})
	t.Run("box_page_counts_the_open_pull", func(t *testing.T) {
		waitForFile(t, filepath.Join(r.ws.Root(), "index.html"), "<td>1</td>\n<td>0</td>\n<td>0</td>")
	})
	t.Run("a_closed_pull_moves_to_recently_closed_and_back_when_reopened", func(t *testing.T) {
		repoPage := filepath.Join(r.ws.Root(), owner, repoName, "index.html")
		r.w.PullClosed(t.Context(), events.HeadAnnouncement{Repo: events.Repo{Owner: owner, Name: repoName}, Number: 1, SHA: sha, Closed: true})
		waitForFile(t, repoPage, "<h2>Recently closed</h2>")
		waitForFile(t, filepath.Join(r.ws.Root(), "index.html"), "No open pull request has a build.")
		// Reopened without a new commit: the event builds nothing, but
		// the pull is open on the pages again.
		r.publish(t, pr.GetNumber(), sha, "delivery-reopened")
		var page []byte
		waitCtx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		if pause.Poll(waitCtx, 20*time.Millisecond, func() bool {
			page, _ = os.ReadFile(repoPage)
			return !strings.Contains(string(page), "Recently closed")
		}) != nil {
			t.Fatalf("the reopened pull stays closed:\n%s", page)
		}
		if !strings.Contains(string(page), `href="pulls/1/1/index.html"`) {
			t.Errorf("the reopened pull is not listed open:\n%s", page)
		}
	})
}

// waitForFile waits until the file at path holds want, and returns it.
func waitForFile(t *testing.T, path, want string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var data []byte
	var err error
	if pause.Poll(ctx, 20*time.Millisecond, func() bool {
		data, err = os.ReadFile(path)
		return err == nil && strings.Contains(string(data), want)
	}) != nil {
		t.Fatalf("%s never held %q (%v):\n%s", path, want, err, data)
	}
	return data
}
