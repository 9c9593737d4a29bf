package pages

import (
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/yourci/yourci/pkg/events"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var (
	t0   = time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)
	repo = events.Repo{Owner: "acme", Name: "widget.go"}
)

// attempt is a finished attempt starting at t0+start seconds.
func attempt(n int, start, seconds float64, outcome string) events.AttemptRecord {
	return events.AttemptRecord{Number: n, Start: t0.Add(time.Duration(start * float64(time.Second))),
		Duration: time.Duration(seconds * float64(time.Second)), Outcome: outcome}
}

// record is a build of four tests: one passed at once, one passed on its
// second attempt (flaky), one failed every attempt, and one as given.
func record(last events.TestRecord) events.BuildRecord {
	logURL := func(name string) string {
		return "http://logs.example/ci/acme/widget.go/pulls/7/2/" + name + "/out.txt"
	}
	tests := []events.TestRecord{
		{Name: "foo-x", State: events.TestPassed, Description: "passed in 1.2s", MaxAttempts: 3,
			Attempts: []events.AttemptRecord{attempt(1, 0, 1.2, "passed")}},
		{Name: "bar-y", State: events.TestPassed, Description: "passed in 800ms on attempt 2", MaxAttempts: 3, Flaky: true,
			Attempts: []events.AttemptRecord{attempt(1, 0, 3, "failed"), attempt(2, 5, 0.8, "passed")}},
		{Name: "lint", State: events.TestFailed, Description: "failed with exit code 1 after 2m3s", MaxAttempts: 1,
			Attempts: []events.AttemptRecord{attempt(1, 0, 123, "failed")}},
		last,
	}
	for i := range tests {
		tests[i].LogURL = logURL(tests[i].Name)
	}
	return events.BuildRecord{Version: events.Version, Key: events.BuildKey{Repo: repo, Pull: 7, Build: 2},
		SHA: "0123456789abcdef0123456789abcdef01234567", Title: "Make widgets faster", Branch: "faster",
		PullURL: "https://github.example/acme/widget.go/pull/7", Tests: tests, Created: t0, Updated: t0.Add(time.Minute)}
}

var (
	running = events.TestRecord{Name: "slow", State: events.TestRunning, Description: "running", MaxAttempts: 1,
		Attempts: []events.AttemptRecord{{Number: 1, Start: t0.Add(10 * time.Second)}}}
	errored = events.TestRecord{Name: "slow", State: events.TestErrored, Description: "error: stopped: pull request is closed",
		MaxAttempts: 1, Attempts: []events.AttemptRecord{attempt(1, 10, 4, "canceled")}}
	stopped = events.TestRecord{Name: "slow", State: events.TestSuperseded, Description: "stopped: superseded by fedcba9",
		SupersededBy: "fedcba9876543210fedcba9876543210fedcba98", MaxAttempts: 1,
		Attempts: []events.AttemptRecord{attempt(1, 10, 4, "stopped")}}
)

// superseded is a build a newer push stopped: two tests had passed, one
// (lint) was dropped before it ran and one (slow) stopped while it ran.
func superseded() events.BuildRecord {
	rec := record(stopped)
	rec.Tests[2] = events.TestRecord{Name: "lint", State: events.TestSuperseded, Description: "not run: superseded by fedcba9",
		SupersededBy: stopped.SupersededBy, MaxAttempts: 1, LogURL: "http://logs.example/ci/acme/widget.go/pulls/7/2/index.html"}
	return rec
}

// planned is a running build whose record keeps its plan: every test's
// command, and the changed files .yci.py saw (two of 102 kept).
func planned() events.BuildRecord {
	rec := record(running)
	for i := range rec.Tests {
		rec.Tests[i].Command = "./test.sh " + rec.Tests[i].Name
	}
	rec.Tests[3].Command = "make slow \\\n  ARGS='-v'"
	rec.Changes = &events.Changes{Files: []string{"README.md", "pkg/widget/fast.go"}, Total: 102}
	return rec
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden file (run go test -update): %v", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs (-want +got):\n%s", name, diff)
	}
}

func TestBuildPageGolden(t *testing.T) {
	t.Parallel()
	// successor is the build of the commit that superseded superseded().
	successor := record(running)
	successor.Key.Build, successor.SHA = 3, stopped.SupersededBy
	merged := record(running)
	merged.Base = &events.TestedBase{Ref: "main", SHA: "1234567890abcdef1234567890abcdef12345678", Merged: true,
		Merge: "fedcba0987654321fedcba0987654321fedcba09", Behind: 12}
	conflicted := events.BuildRecord{Key: events.BuildKey{Repo: repo, Pull: 1, Build: 1}, SHA: "abc", Updated: t0,
		ConfigError: "cannot merge into main at 1234567: 2 files conflict", ConfigLogURL: "yci/out.txt",
		Base: &events.TestedBase{Ref: "main", SHA: "1234567890abcdef1234567890abcdef12345678", Merged: true, Behind: 1,
			Conflicts: []string{"lib.py", "<b>docs</b>.md"}}}
	cases := []struct {
		name   string
		rec    events.BuildRecord
		others []events.BuildRecord
	}{
		{"build_running", record(running), nil},
		{"build_finished", record(errored), nil},
		{"build_superseded", superseded(), []events.BuildRecord{record(running), successor}},
		{"build_without_tests", events.BuildRecord{Key: events.BuildKey{Repo: repo, Pull: 1, Build: 1}, SHA: "abc", Updated: t0}, nil},
		{"build_planned", planned(), nil},
		{"build_merged", merged, nil},
		{"build_conflicted", conflicted, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			page, err := BuildPage(tc.rec, tc.others)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, tc.name+".html", page)
			state, err := BuildJSON(tc.rec)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, tc.name+".json", state)
		})
	}
}

func TestRepoPageGolden(t *testing.T) {
	t.Parallel()
	older := record(errored)
	older.Key.Build, older.Updated = 1, t0
	closed := record(errored)
	closed.Key = events.BuildKey{Repo: repo, Pull: 3, Build: 1}
	closed.Closed = true
	other := record(events.TestRecord{Name: "slow", State: events.TestPassed, Flaky: true,
		Attempts: []events.AttemptRecord{attempt(1, 0, 1, "failed"), attempt(2, 2, 1, "passed")}})
	other.Key, other.Title = events.BuildKey{Repo: repo, Pull: 9, Build: 4}, "Other <change>"
	page, err := RepoPage(repo, []events.BuildRecord{other, record(running), older, closed}, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "repo.html", page)
	html := string(page)
	open, closedList, ok := strings.Cut(html, "<h2>Recently closed</h2>")
	if !ok {
		t.Fatalf("page lists no recently closed pull:\n%s", html)
	}
	t.Run("lists_each_open_pull_once_with_its_latest_build", func(t *testing.T) {
		for _, want := range []string{`href="pulls/7/2/index.html"`, `href="pulls/9/4/index.html"`} {
			if !strings.Contains(open, want) {
				t.Errorf("page lacks %s", want)
			}
		}
		for _, unwanted := range []string{`href="pulls/7/1/index.html">build`, `#3</td>`} {
			if strings.Contains(open, unwanted) {
				t.Errorf("open pulls show %s: an older build or a closed pull", unwanted)
			}
		}
	})
	t.Run("lists_the_closed_pull_apart", func(t *testing.T) {
		closedList, _, _ = strings.Cut(closedList, "<h2>")
		if !strings.Contains(closedList, `href="pulls/3/1/index.html"`) || strings.Contains(closedList, "pulls/7/") {
			t.Errorf("recently closed section:\n%s", closedList)
		}
	})
	t.Run("ranks_the_tests_that_needed_retries", func(t *testing.T) {
		// bar-y needed a retry in all four builds, slow in one.
		bar, slow := strings.Index(html, "<code>bar-y</code>"), strings.Index(html, "<code>slow</code>")
		if bar < 0 || slow < 0 || bar > slow {
			t.Errorf("bar-y at %d, slow at %d: want both listed, bar-y first", bar, slow)
		}
		if strings.Contains(html, "<code>foo-x</code>") {
			t.Error("foo-x never needed a retry but is listed")
		}
	})
}

func TestBoxPageGolden(t *testing.T) {
	t.Parallel()
	other := events.Repo{Owner: "zed", Name: "<gadget>"}
	queued := events.TestRecord{Name: "late", State: events.TestQueued, MaxAttempts: 2, Updated: t0.Add(5 * time.Second)}
	retrying := events.TestRecord{Name: "flappy", State: events.TestRetrying, MaxAttempts: 3, Updated: t0.Add(20 * time.Second),
		LogURL: "http://other.box/o/r/flappy/out.txt", Attempts: []events.AttemptRecord{attempt(1, 0, 2, "failed")}}
	live := record(running)
	live.Tests = append(live.Tests, queued)
	live.Tests[3].Updated = t0.Add(10 * time.Second)
	older := record(running) // superseded by live: its tests do not count
	older.Key.Build = 1
	failed := record(errored)
	failed.Key, failed.Title = events.BuildKey{Repo: repo, Pull: 8, Build: 1}, "Break <everything> & \"more\""
	closed := record(running)
	closed.Key, closed.Closed = events.BuildKey{Repo: repo, Pull: 3, Build: 1}, true
	elsewhere := record(retrying)
	elsewhere.Key = events.BuildKey{Repo: other, Pull: 1, Build: 1}
	elsewhere.PullURL = "" // recorded before records kept it: no link
	stale := superseded()  // not failing: a newer push replaced it
	stale.Key = events.BuildKey{Repo: repo, Pull: 5, Build: 1}
	page, err := BoxPage([]events.BuildRecord{closed, older, elsewhere, live, failed, stale}, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "box.html", page)
	html := string(page)
	liveSection, reposSection, _ := strings.Cut(html, "<h2>Repositories with open pull requests</h2>")
	t.Run("lists_live_tests_of_latest_open_builds_running_first", func(t *testing.T) {
		slow, flappy, late := strings.Index(liveSection, "<code>slow</code>"), strings.Index(liveSection, "<code>flappy</code>"),
			strings.Index(liveSection, "<code>late</code>")
		if slow < 0 || flappy < slow || late < flappy {
			t.Errorf("slow at %d, flappy at %d, late at %d: want all, running, retrying, queued", slow, flappy, late)
		}
		if strings.Count(liveSection, "<code>slow</code>") != 1 || strings.Contains(liveSection, "#3") {
			t.Errorf("a superseded or closed build's tests are listed:\n%s", liveSection)
		}
	})
	t.Run("counts_open_pulls_per_repository", func(t *testing.T) {
		for _, want := range []string{
			"<td><a href=\"acme/widget.go/index.html\">acme/widget.go</a></td>\n<td>3</td>\n<td>1</td>\n<td>1</td>",
			"<td><a href=\"zed/%3cgadget%3e/index.html\">zed/&lt;gadget&gt;</a></td>\n<td>1</td>\n<td>1</td>\n<td>0</td>",
		} {
			if !strings.Contains(reposSection, want) {
				t.Errorf("repositories lack\n%s\nin\n%s", want, reposSection)
			}
		}
	})
	t.Run("escapes_titles", func(t *testing.T) {
		if strings.Contains(html, "<everything>") || strings.Contains(html, "<gadget>") {
			t.Error("text from GitHub reached the page unescaped")
		}
	})
	t.Run("lists_each_repositorys_place", func(t *testing.T) {
		shares := []events.RepoShare{
			{Repo: other, Stored: 1, Place: 1},
			{Repo: repo, Stored: 80, Held: 2, Limit: events.RepoLimit{MaxRunning: 2, Weight: 3}},
		}
		page, err := BoxPage(nil, t0, shares...)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{
			"<td>1</td>\n<td><a href=\"zed/%3cgadget%3e/index.html\">zed/&lt;gadget&gt;</a></td>\n<td>1</td>\n<td>0</td>\n<td>–</td>\n<td>1</td>",
			"<td>at cap</td>\n<td><a href=\"acme/widget.go/index.html\">acme/widget.go</a></td>\n<td>80</td>\n<td>2</td>\n<td>2</td>\n<td>3</td>",
		} {
			if !strings.Contains(string(page), want) {
				t.Errorf("box page lacks\n%s\nin\n%s", want, page)
			}
		}
		if strings.Contains(html, "Test slots by repository") {
			t.Error("a page given no shares has a section of them")
		}
	})
	t.Run("empty", func(t *testing.T) {
		page, err := BoxPage(nil, t0)
		if err != nil || !strings.Contains(string(page), "Nothing is queued or running.") {
			t.Errorf("empty box page: %v\n%s", err, page)
		}
	})
}

func TestSummarize(t *testing.T) {
	t.Parallel()
	withStates := func(states ...events.TestState) events.BuildRecord {
		rec := events.BuildRecord{SHA: "1234567aaaaaaa1234567aaaaaaa1234567aaaaa"}
		for i, s := range states {
			rec.Tests = append(rec.Tests, events.TestRecord{Name: string(rune('a' + i)), State: s})
		}
		return rec
	}
	flaky := withStates(events.TestPassed, events.TestPassed, events.TestPassed, events.TestFailed)
	flaky.Tests[1].Flaky = true
	// supersededBy marks the record's superseded tests as ended by the
	// given commits, the i-th test at t0+i seconds.
	supersededBy := func(rec events.BuildRecord, shas ...string) events.BuildRecord {
		for i := range rec.Tests {
			rec.Tests[i].Updated = t0.Add(time.Duration(i) * time.Second)
			if rec.Tests[i].State == events.TestSuperseded {
				rec.Tests[i].SupersededBy, shas = shas[0], shas[1:]
			}
		}
		return rec
	}
	const newer, newest = "abc1234def5678abc1234def5678abc1234def56", "9999999aaaaaaa9999999aaaaaaa9999999aaaaa"
	onBase := func(rec events.BuildRecord, ref string, merged bool) events.BuildRecord {
		rec.Base = &events.TestedBase{Ref: ref, SHA: newest, Merged: merged, Merge: newer, Behind: 3}
		return rec
	}
	queued := func(rec events.BuildRecord) events.BuildRecord {
		rec.Base = &events.TestedBase{Ref: "main", SHA: newest, Queued: true}
		return rec
	}
	longRef := strings.Repeat("release/", 30)
	cases := []struct {
		name        string
		rec         events.BuildRecord
		state, desc string
		cancelled   bool
	}{
		{"superseded_before_anything_ran_is_cancelled", supersededBy(withStates(events.TestSuperseded, events.TestSuperseded), newer, newer),
			Error, "superseded by abc1234", true},
		{"superseded_counts_what_ended_before", supersededBy(withStates(events.TestPassed, events.TestFailed, events.TestPassed, events.TestSuperseded), newer),
			Failure, "superseded by abc1234; 2 passed, 1 failed before", false},
		{"superseded_after_passes_is_cancelled", supersededBy(withStates(events.TestPassed, events.TestSuperseded, events.TestErrored), newer),
			Error, "superseded by abc1234; 1 passed, 1 errored before", true},
		{"superseded_names_the_latest_push", supersededBy(withStates(events.TestSuperseded, events.TestSuperseded), newer, newest),
			Error, "superseded by 9999999", true},
		{"superseded_without_a_commit_says_so", withStates(events.TestSuperseded), Error, "superseded by a newer commit", true},
		{"pending_while_superseded_tests_still_run", supersededBy(withStates(events.TestSuperseded, events.TestRunning), newer),
			Pending, "1 superseded, 1 running of 2", false},
		{"pending_while_anything_runs", withStates(events.TestPassed, events.TestRunning, events.TestQueued, events.TestRetrying),
			Pending, "1 passed, 1 running, 1 retrying, 1 queued of 4", false},
		{"pending_while_a_failed_test_waits_to_retry", withStates(events.TestPassed, events.TestRetrying), Pending, "1 passed, 1 retrying of 2", false},
		{"success_when_all_passed", withStates(events.TestPassed, events.TestPassed), Success, "2 passed of 2", false},
		{"failure_with_flaky_count", flaky, Failure, "3 passed, 1 failed (1 flaky) of 4", false},
		{"failure_wins_over_error", withStates(events.TestErrored, events.TestFailed), Failure, "1 failed, 1 errored of 2", false},
		{"error_when_none_failed", withStates(events.TestPassed, events.TestErrored), Error, "1 passed, 1 errored of 2", false},
		{"no_tests_is_success", withStates(), Success, "no tests for this change", false},
		{"names_the_base_it_merged_into", onBase(withStates(events.TestPassed, events.TestFailed), "main", true),
			Failure, "1 passed, 1 failed of 2; tested merged into main at 9999999", false},
		{"preparing_is_pending_not_no_tests", onBase(events.BuildRecord{}, "main", true),
			Pending, "preparing the build; tested merged into main at 9999999", false},
		{"no_tests_names_the_base_too", onBase(withStates(), "main", true),
			Success, "no tests for this change; tested merged into main at 9999999", false},
		{"says_when_the_head_was_tested_alone", onBase(withStates(events.TestPassed), "main", false),
			Success, "1 passed of 1; head tested alone, not merged into main", false},
		{"a_merge_group_names_its_base", queued(withStates(events.TestPassed)),
			Success, "1 passed of 1; merge group onto main at 9999999", false},
		{"a_long_base_name_is_cut", onBase(withStates(events.TestPassed), longRef, true),
			Success, "1 passed of 1; tested merged into " + longRef[:37] + "... at 9999999", false},
		{"a_cancelled_build_does_not_name_the_base", onBase(supersededBy(withStates(events.TestSuperseded), newer), "main", true),
			Error, "superseded by abc1234", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := Summarize(tc.rec)
			if len(s.Description) > maxDescription {
				t.Errorf("description is %d bytes, more than GitHub takes", len(s.Description))
			}
			if s.State != tc.state || s.Description != tc.desc || s.Cancelled != tc.cancelled {
				t.Errorf("Summarize = %s %q cancelled %v, want %s %q cancelled %v",
					s.State, s.Description, s.Cancelled, tc.state, tc.desc, tc.cancelled)
			}
			if want := map[bool]string{true: Superseded, false: tc.state}[tc.cancelled]; s.Label() != want {
				t.Errorf("Label = %q, want %q", s.Label(), want)
			}
		})
	}
}

func TestHostileTextIsEscaped(t *testing.T) {
	t.Parallel()
	const evil = `<script>alert(1)</script>"'><img src=x onerror=alert(2)>&amp;`
	rec := record(events.TestRecord{Name: "slow", State: events.TestRunning, Description: evil})
	rec.Title, rec.Branch = evil, evil
	rec.Tests[0].Command = evil
	rec.Changes = &events.Changes{Files: []string{evil}, Total: 1}
	rec.Key.Repo = events.Repo{Owner: "o", Name: `r"><script>`}
	rec.Tests[0].LogURL = "javascript:alert(3)"
	rec.PullURL = "javascript:alert(4)//pull/7"
	page, err := BuildPage(rec, nil)
	if err != nil {
		t.Fatal(err)
	}
	repoHTML, err := RepoPage(rec.Key.Repo, []events.BuildRecord{rec}, t0)
	if err != nil {
		t.Fatal(err)
	}
	for name, html := range map[string]string{"build page": string(page), "repository page": string(repoHTML)} {
		t.Run(strings.ReplaceAll(name, " ", "_"), func(t *testing.T) {
			// The page's own script is the only one.
			if n := strings.Count(html, "<script"); n > 1 {
				t.Errorf("%d script tags, want at most the page's own", n)
			}
			for _, bad := range []string{"<img", `"'>`, "javascript:", "<script>alert", `r"><`} {
				if strings.Contains(html, bad) {
					t.Errorf("%s holds %q unescaped", name, bad)
				}
			}
			if !strings.Contains(html, "&lt;script&gt;alert(1)&lt;/script&gt;") {
				t.Errorf("%s does not show the title escaped", name)
			}
		})
	}
}

func TestPageScriptMatchesItsPolicy(t *testing.T) {
	t.Parallel()
	page, err := BuildPage(record(running), nil)
	if err != nil {
		t.Fatal(err)
	}
	html := string(page)
	// The browser hashes the text between the tags: it must be the text
	// the policy's hashes were computed from, byte for byte.
	for _, want := range []string{"<script>" + tailScript + "</script>", "<style>" + styleSheet + "</style>"} {
		if !strings.Contains(html, want) {
			t.Errorf("the page does not carry %.40q… verbatim", want)
		}
	}
	csp := ContentSecurityPolicy()
	for _, want := range []string{"'" + hashOf(tailScript) + "'", "'" + hashOf(styleSheet) + "'", "default-src 'none'", "connect-src 'self'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("policy %q lacks %s", csp, want)
		}
	}
	finished, err := BuildPage(record(errored), nil)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(finished), "<script") {
		t.Error("a finished build's page carries the live script")
	}
}

func TestWriteFile(t *testing.T) {
	t.Parallel()
	dir, outside := t.TempDir(), t.TempDir()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if err := os.MkdirAll(filepath.Join(dir, "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Run("replaces_the_file", func(t *testing.T) {
		for _, content := range []string{"one", "two"} {
			if err := WriteFile(root, "b/index.html", []byte(content)); err != nil {
				t.Fatal(err)
			}
		}
		got, err := os.ReadFile(filepath.Join(dir, "b/index.html"))
		if err != nil || string(got) != "two" {
			t.Errorf("file holds %q (%v), want two", got, err)
		}
		entries, _ := os.ReadDir(filepath.Join(dir, "b"))
		if len(entries) != 1 {
			t.Errorf("directory holds %d entries, want only the file: a temporary file was left", len(entries))
		}
	})
	t.Run("replaces_a_planted_link_without_following_it", func(t *testing.T) {
		target := filepath.Join(outside, "victim")
		if err := os.WriteFile(target, []byte("keep"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, filepath.Join(dir, "b/build.json")); err != nil {
			t.Fatal(err)
		}
		if err := WriteFile(root, "b/build.json", []byte("{}")); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(target); string(got) != "keep" {
			t.Errorf("the link's target now holds %q", got)
		}
	})
	t.Run("refuses_a_directory_linked_outside", func(t *testing.T) {
		if err := os.Symlink(outside, filepath.Join(dir, "escape")); err != nil {
			t.Fatal(err)
		}
		if err := WriteFile(root, "escape/index.html", []byte("x")); err == nil {
			t.Error("wrote through a link leading outside the root")
		}
		if _, err := os.Stat(filepath.Join(outside, "index.html")); err == nil {
			t.Error("a file appeared outside the root")
		}
	})
}

// The attempts column counts right after re-runs, each of which has its
// own allowance of attempts, and says so when a test never ran (issue 15).
func TestAttemptCount(t *testing.T) {
	t.Parallel()
	rerun := func(a events.AttemptRecord, n int) events.AttemptRecord { a.Rerun = n; return a }
	tests := []struct {
		name string
		rec  events.TestRecord
		want string
	}{
		{"first_run_counts_against_its_allowance", events.TestRecord{State: events.TestRetrying, MaxAttempts: 3,
			Attempts: []events.AttemptRecord{attempt(1, 0, 1, "failed")}}, "1 of 3"},
		{"re_run_counts_runs_not_an_overrun", events.TestRecord{State: events.TestPassed, MaxAttempts: 1,
			Attempts: []events.AttemptRecord{attempt(1, 0, 1, "failed"), rerun(attempt(1, 5, 1, "passed"), 1)}}, "2 runs"},
		{"dropped_before_it_ran", events.TestRecord{State: events.TestSuperseded, MaxAttempts: 1}, "not run"},
		{"queued_has_not_run_yet", events.TestRecord{MaxAttempts: 2}, "0 of 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := attemptCount(tt.rec); got != tt.want {
				t.Errorf("attemptCount = %q, want %q", got, tt.want)
			}
		})
	}
}

// A build links to its pull request and commit on GitHub only through
// http(s) URLs, escaped; a superseded one links to the build that
// replaced it when that build is known (issue 15).
func TestBuildPageLinks(t *testing.T) {
	t.Parallel()
	successor := record(running)
	successor.Key.Build, successor.SHA = 3, stopped.SupersededBy
	rebuilt := successor
	rebuilt.Key.Build = 5
	otherPull := successor
	otherPull.Key.Pull = 8
	cases := []struct {
		name      string
		rec       events.BuildRecord
		others    []events.BuildRecord
		want, not []string
	}{
		{"links_pull_and_commit", record(running), nil,
			[]string{`<a id="pull-link" href="https://github.example/acme/widget.go/pull/7">pull request #7 on GitHub</a>`,
				`<a id="commit-link" href="https://github.example/acme/widget.go/commit/0123456789abcdef0123456789abcdef01234567">`},
			[]string{`id="successor"`}},
		{"no_url_no_link", func() events.BuildRecord { r := record(running); r.PullURL = ""; return r }(), nil,
			[]string{"commit <code>0123456789abcdef0123456789abcdef01234567</code>"}, []string{"pull-link", "commit-link"}},
		{"other_schemes_not_linked", func() events.BuildRecord { r := record(running); r.PullURL = "data:text/html,x/pull/7"; return r }(), nil,
			nil, []string{"pull-link", "commit-link", "data:"}},
		{"quotes_escaped", func() events.BuildRecord {
			r := record(running)
			r.PullURL = `https://github.example/a"onmouseover="alert(1)/w/pull/7`
			return r
		}(), nil, []string{`href="https://github.example/a%22onmouseover=%22alert%281%29/w/pull/7"`}, []string{`"onmouseover`}},
		{"superseded_links_its_first_successor", superseded(), []events.BuildRecord{rebuilt, otherPull, successor},
			[]string{`<p id="successor" class="meta">Replaced by <a href="../3/index.html">build 3</a> of commit <code>fedcba987654</code>.</p>`}, nil},
		{"superseded_without_known_successor", superseded(), []events.BuildRecord{otherPull, record(running)},
			nil, []string{`id="successor"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			page, err := BuildPage(tc.rec, tc.others)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(page), w) {
					t.Errorf("page lacks %s", w)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(string(page), n) {
					t.Errorf("page holds %s", n)
				}
			}
		})
	}
}

func TestURL(t *testing.T) {
	k := events.BuildKey{Repo: events.Repo{Owner: "acme", Name: "widgets.go"}, Pull: 7, Build: 2}
	odd := k
	odd.Repo.Name = "a b?c"
	tests := []struct {
		name, root string
		k          events.BuildKey
		want       string
	}{
		{"no pages served", "", k, ""},
		{"root", "https://ci.example/logs", k, "https://ci.example/logs/acme/widgets.go/pulls/7/2/index.html"},
		{"root with a slash", "https://ci.example/logs/", k, "https://ci.example/logs/acme/widgets.go/pulls/7/2/index.html"},
		{"escaped segments", "http://h", odd, "http://h/acme/a%20b%3Fc/pulls/7/2/index.html"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := URL(tt.root, tt.k); got != tt.want {
				t.Errorf("URL(%q) = %q, want %q", tt.root, got, tt.want)
			}
		})
	}
}

func TestMergeGroupIsNamedAsOne(t *testing.T) {
	t.Parallel()
	const head = "4fd5a3c0a7f9b5d31e2c8e0f9a6b7c8d9e0f1a2b"
	n, err := events.GroupNumber(head)
	if err != nil {
		t.Fatal(err)
	}
	rec := record(running)
	rec.Key.Pull, rec.SHA, rec.PullURL, rec.Title = n, head, "", ""
	build, err := BuildPage(rec, nil)
	if err != nil {
		t.Fatal(err)
	}
	repoPage, err := RepoPage(repo, []events.BuildRecord{rec}, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for name, page := range map[string][]byte{"build": build, "repo": repoPage} {
		t.Run(name, func(t *testing.T) {
			if !strings.Contains(string(page), "merge group 4fd5a3c0a") || strings.Contains(string(page), "#"+strconv.Itoa(n)) {
				t.Errorf("%s page does not name the merge group as one:\n%s", name, page)
			}
		})
	}
}
