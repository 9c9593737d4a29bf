package worker

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-github/v88/github"

	"github.com/yourci/yourci/pkg/artifacts"
	"github.com/yourci/yourci/pkg/fakegithub"
	"github.com/yourci/yourci/pkg/pause"
)

// This file feeds one worker hostile .yci.py files, hostile tests and
// hostile pull request metadata (issue 5), asserting each end state and that
// the same worker then still builds an ordinary pull request.

var markerSeq atomic.Int64

// uniqueDigits returns digits no other marker of this run shares. Digits
// only, so a marker can be the fraction of sleep's argument and so show in
// the process's command line.
func uniqueDigits() string {
	return strconv.FormatInt(time.Now().UnixNano(), 10) + strconv.FormatInt(markerSeq.Add(1), 10)
}

// openBranchPull commits files on spec.Head and opens a pull request from
// it with spec's title and body.
func (r *rig) openBranchPull(t *testing.T, spec fakegithub.PullSpec, files map[string]string) *github.PullRequest {
	t.Helper()
	if _, err := r.gh.Commit(owner, repoName, "main", map[string]string{"README": "widget\n"}, "init"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.gh.Commit(owner, repoName, spec.Head, files, "change"); err != nil {
		t.Fatalf("committing on branch %q: %v", spec.Head, err)
	}
	spec.Base = "main"
	pr, err := r.gh.OpenPull(owner, repoName, spec)
	if err != nil {
		t.Fatal(err)
	}
	return pr
}

// servesNormalJob checks that the worker, after whatever came before, still
// builds an ordinary pull request to success with its output in the log.
func (r *rig) servesNormalJob(t *testing.T) {
	t.Helper()
	pr := r.openBranchPull(t, fakegithub.PullSpec{Head: "healthy-" + uniqueDigits()}, map[string]string{".yci.py": oneTest})
	sha := pr.GetHead().GetSHA()
	r.publish(t, pr.GetNumber(), sha, "healthy-"+sha)
	if s := r.waitFinal(t, sha, "yci/t")["yci/t"]; s.GetState() != "success" {
		t.Fatalf("the worker no longer serves a normal job: %s %q", s.GetState(), s.GetDescription())
	}
	if log := r.readLog(t, pr.GetNumber(), 1, "t"); !strings.Contains(log, "\nhi\n") {
		t.Errorf("the normal job's log lacks its output:\n%s", log)
	}
}

// readLog returns the log of test name of a build.
func (r *rig) readLog(t *testing.T, pull, number int, name string) string {
	t.Helper()
	path, err := r.ws.LogPath(artifacts.Build{Owner: owner, Repo: repoName, Pull: pull, Number: number}, name)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading the log of %s: %v", name, err)
	}
	return string(data)
}

// processesWith returns the command lines of live processes whose
// arguments contain marker. Zombies have empty command lines and so do not
// count: they run nothing.
func processesWith(t *testing.T, marker string) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue // gone meanwhile
		}
		if bytes.Contains(cmdline, []byte(marker)) {
			found = append(found, e.Name()+": "+string(bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '})))
		}
	}
	return found
}

// assertNoProcessWith fails when a process with marker in its arguments
// is still alive once the kill its group was sent has been delivered.
func assertNoProcessWith(t *testing.T, marker string) {
	t.Helper()
	var left []string
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if pause.Poll(ctx, 50*time.Millisecond, func() bool { left = processesWith(t, marker); return len(left) == 0 }) != nil {
		t.Errorf("processes left behind: %q", left)
	}
}

// testRunning is a .yci.py yielding one test named t running command,
// with Bash's extra keyword arguments and retries.
func testRunning(command, extra string, retries int) string {
	return "from yci.retry import IncrementalRetry\nfrom yci.run import Bash\n\n" +
		"def test_generator(build_id, pull):\n" +
		"    yield IncrementalRetry(Bash(r'''" + command + "''', name='t'" + extra + "), retries=" +
		strconv.Itoa(retries) + ", retry_increment=0)\n"
}

func TestHostileYciPy(t *testing.T) {
	t.Parallel()
	sleeper := "1000." + uniqueDigits()
	cases := []struct {
		name  string
		yci   string
		tweak func(*Options)
		// context is the one status expected; "yci" is the build-wide
		// one a broken .yci.py gets.
		context, state string
		desc, log      []string
		after          func(t *testing.T)
	}{
		{
			name: "exception_gives_an_error_with_its_traceback_in_the_log",
			yci: "def helper():\n    raise ValueError('no matrix today')\n\n" +
				"def test_generator(build_id, pull):\n    helper()\n    yield {'CMD': 'true'}\n",
			context: "yci", state: "error",
			desc: []string{".yci.py", "ValueError", "no matrix today"},
			log:  []string{"Traceback", "line 2", "helper", "ValueError: no matrix today"},
		},
		{
			name:    "infinite_loop_is_stopped_at_the_time_limit_naming_the_line",
			yci:     "def test_generator(build_id, pull):\n    while True:\n        pass\n    yield {'CMD': 'true'}\n",
			tweak:   func(o *Options) { o.Evaluator.Timeout = 3 * time.Second },
			context: "yci", state: "error",
			desc: []string{".yci.py:", "stopped after 3s"},
			log:  []string{"Where Python was when it was stopped", "line"},
		},
		{
			name: "a_million_configurations_are_capped_with_an_error",
			yci: "from yci.run import Bash\n\ndef test_generator(build_id, pull):\n" +
				"    for i in range(1000000):\n        yield Bash('true', name='t%d' % i)\n",
			context: "yci", state: "error",
			desc: []string{".yci.py:5", "more than 1000 tests"},
			log:  []string{"more than 1000 tests"},
		},
		{
			name: "print_heavy_file_still_evaluates",
			yci: "import sys\nfrom yci.run import Bash\n\nfor i in range(20000):\n    print('noise', i, 'x' * 80)\n" +
				"sys.stdout.write('no newline ' * 100000)\n\n" +
				"def test_generator(build_id, pull):\n    print('more noise\\n' * 10000, file=sys.stderr)\n" +
				"    yield Bash('echo hi', name='t')\n",
			context: "yci/t", state: "success",
			desc: []string{"passed"},
			log:  []string{"\nhi\n"},
		},
		{
			name: "background_processes_it_starts_are_killed",
			yci: "import subprocess\nfrom yci.run import Bash\n\n" +
				"subprocess.Popen(['sleep', '" + sleeper + "'])\n" +
				"subprocess.Popen(['sh', '-c', 'sleep " + sleeper + " & sleep " + sleeper + "'])\n\n" +
				"def test_generator(build_id, pull):\n    yield Bash('echo hi', name='t')\n",
			context: "yci/t", state: "success",
			desc:  []string{"passed"},
			log:   []string{"\nhi\n"},
			after: func(t *testing.T) { assertNoProcessWith(t, sleeper) },
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var tweaks []func(*Options)
			if tc.tweak != nil {
				tweaks = append(tweaks, tc.tweak)
			}
			r := newRig(t, tweaks...)
			pr := r.openBranchPull(t, fakegithub.PullSpec{Head: "hostile"}, map[string]string{".yci.py": tc.yci})
			sha := pr.GetHead().GetSHA()
			r.publish(t, pr.GetNumber(), sha, "d1")
			final := r.waitFinal(t, sha, tc.context)
			s := final[tc.context]
			if s.GetState() != tc.state {
				t.Errorf("%s: %s %q, want %s", tc.context, s.GetState(), s.GetDescription(), tc.state)
			}
			for _, want := range tc.desc {
				if !strings.Contains(s.GetDescription(), want) {
					t.Errorf("description %q lacks %q", s.GetDescription(), want)
				}
			}
			if tc.context != "yci" {
				delete(final, "yci") // the build's summary, which the projector writes
			}
			if len(final) != 1 {
				t.Errorf("want one status context, got %s", describe(final))
			}
			if tc.context == "yci" {
				if n := len(r.gh.Statuses(owner, repoName, sha)); n != 1 {
					t.Errorf("%d statuses posted, want the one error: %v", n, r.gh.Statuses(owner, repoName, sha))
				}
			}
			logName := strings.TrimPrefix(tc.context, "yci/")
			if tc.context == "yci" {
				logName = configLogName
			}
			log := r.readLog(t, pr.GetNumber(), 1, logName)
			for _, want := range tc.log {
				if !strings.Contains(log, want) {
					t.Errorf("log lacks %q:\n%s", want, cut(log))
				}
			}
			if tc.after != nil {
				tc.after(t)
			}
			r.servesNormalJob(t)
		})
	}
}

// cut shortens a log for an error message.
func cut(log string) string {
	if len(log) > 4000 {
		return log[:2000] + "\n[...]\n" + log[len(log)-2000:]
	}
	return log
}

func TestHostileTests(t *testing.T) {
	t.Parallel()
	sleeper := "1000." + uniqueDigits()
	const smallCap = 64 << 10
	cases := []struct {
		name    string
		command string
		extra   string // more keyword arguments of Bash
		retries int
		tweak   func(*Options)
		state   string
		desc    string
		check   func(t *testing.T, log string)
	}{
		{
			name:    "background_sleep_left_running_is_killed_and_the_test_passes",
			command: "sleep " + sleeper + " & echo \"left behind: $!\"",
			state:   "success", desc: "passed",
			check: func(t *testing.T, log string) {
				if !strings.Contains(log, "left behind: ") {
					t.Errorf("the background sleep never started:\n%s", log)
				}
				assertNoProcessWith(t, sleeper)
			},
		},
		{
			name:    "output_without_newlines_is_logged_whole_with_the_footer_on_its_own_line",
			command: `head -c 100000 /dev/zero | tr '\0' x`,
			state:   "success", desc: "passed",
			check: func(t *testing.T, log string) {
				if !strings.Contains(log, "\n"+strings.Repeat("x", 100000)+"\n[yci] attempt 1/1 passed") {
					t.Errorf("log does not hold the 100000 x's followed by the footer:\n%s", cut(log))
				}
			},
		},
		{
			name:    "a_50MB_line_is_truncated_at_the_log_cap_and_the_exit_code_decides",
			command: `head -c 50000000 /dev/zero | tr '\0' y; exit 3`,
			tweak:   func(o *Options) { o.Runner.LogLimit = smallCap },
			state:   "failure", desc: "exit code 3",
			check: func(t *testing.T, log string) {
				if !strings.Contains(log, "\n[yci] log truncated at "+strconv.Itoa(smallCap)+" bytes") {
					t.Errorf("log lacks the truncation line:\n%s", cut(log))
				}
				if len(log) > smallCap+4096 {
					t.Errorf("log is %d bytes, cap %d", len(log), smallCap)
				}
				if !strings.Contains(log, "[yci] attempt 1/1 failed (exit status 3)") {
					t.Errorf("log lacks the footer:\n%s", cut(log))
				}
			},
		},
		{
			name:    "binary_output_is_logged",
			command: "head -c 4096 /dev/urandom",
			state:   "success", desc: "passed",
			check: func(t *testing.T, log string) {
				if len(log) < 4096 || !strings.Contains(log, "[yci] attempt 1/1 passed") {
					t.Errorf("log of %d bytes lacks the output or the footer", len(log))
				}
			},
		},
		{
			name: "a_test_deleting_its_own_source_ends_and_its_retry_gets_a_fresh_copy",
			command: `if [ "$YCI_ATTEMPT" = 1 ]; then rm -rf "$PWD"; echo "deleted $PWD"; exit 1; fi
test -f .yci.py && echo "fresh copy"`,
			retries: 1,
			state:   "success", desc: "on attempt 2",
			check: func(t *testing.T, log string) {
				for _, want := range []string{"deleted ", "[yci] attempt 1/2 failed (exit status 1)", "\nfresh copy\n", "[yci] attempt 2/2 passed"} {
					if !strings.Contains(log, want) {
						t.Errorf("log lacks %q:\n%s", want, log)
					}
				}
			},
		},
		{
			name:    "a_test_past_its_timeout_fails_as_timed_out",
			command: "echo waiting; sleep 30",
			extra:   ", timeout=1",
			state:   "failure", desc: "timed out after 1s",
			check: func(t *testing.T, log string) {
				if !strings.Contains(log, "[yci] attempt 1/1 timed out (no result within 1s)") {
					t.Errorf("log lacks the time-out footer:\n%s", log)
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var tweaks []func(*Options)
			if tc.tweak != nil {
				tweaks = append(tweaks, tc.tweak)
			}
			r := newRig(t, tweaks...)
			pr := r.openBranchPull(t, fakegithub.PullSpec{Head: "hostile"},
				map[string]string{".yci.py": testRunning(tc.command, tc.extra, tc.retries)})
			sha := pr.GetHead().GetSHA()
			r.publish(t, pr.GetNumber(), sha, "d1")
			s := r.waitFinal(t, sha, "yci/t")["yci/t"]
			if s.GetState() != tc.state || !strings.Contains(s.GetDescription(), tc.desc) {
				t.Errorf("yci/t: %s %q, want %s with %q", s.GetState(), s.GetDescription(), tc.state, tc.desc)
			}
			tc.check(t, r.readLog(t, pr.GetNumber(), 1, "t"))
			r.servesNormalJob(t)
		})
	}
}

// echoPull is a .yci.py whose one test prints, literally, pull request
// fields an author controls.
const echoPull = `from yci.run import Bash

def test_generator(build_id, pull):
    yield Bash('printf "ref=[%s]\\n" "$REF"; printf "title=[%s]\\n" "$TITLE"; printf "body=[%s]\\n" "$BODY"',
               env={'REF': pull['head']['ref'], 'TITLE': pull.title, 'BODY': pull['body']}, name='echo')
`

func TestShellInPullRequestFieldsRunsNothing(t *testing.T) {
	t.Parallel()
	u := uniqueDigits()
	pwned := "/tmp/yci-pwned-" + u
	t.Cleanup(func() {
		for _, f := range pwnedFiles(t, pwned) {
			if err := os.Remove(f); err != nil {
				t.Error(err)
			}
		}
	})
	canary := filepath.Join(t.TempDir(), "canary")
	if err := os.WriteFile(canary, []byte("still here\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	title := "fix $(touch " + pwned + "-title) `touch " + pwned + "-tick` \"; touch " + pwned + "-dq; #' ; rm -rf /"
	body := "$(touch " + pwned + "-body)\n`touch " + pwned + "-body-tick`\n'; touch " + pwned + "-sq; '\n; rm -rf " + canary + " ; rm -rf / ;\n${IFS}$((6*7)) --upload-pack=touch " + pwned + "-upload"
	branches := []struct{ name, branch string }{
		{"quote_and_IFS_branch_from_a_real_attack", `zzz";echo${IFS}pwned;#`},
		{"command_substitution_branch", "$(touch${IFS}" + pwned + "-branch)"},
	}
	for _, tc := range branches {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t)
			pr := r.openBranchPull(t, fakegithub.PullSpec{Head: tc.branch, Title: title, Body: body},
				map[string]string{".yci.py": echoPull})
			sha := pr.GetHead().GetSHA()
			r.publish(t, pr.GetNumber(), sha, "d1")
			if s := r.waitFinal(t, sha, "yci/echo")["yci/echo"]; s.GetState() != "success" {
				t.Errorf("yci/echo: %s %q, want success", s.GetState(), s.GetDescription())
			}
			log := r.readLog(t, pr.GetNumber(), 1, "echo")
			for _, want := range []string{"ref=[" + tc.branch + "]", "title=[" + title + "]", "body=[" + body + "]"} {
				if !strings.Contains(log, want) {
					t.Errorf("log lacks the literal %q:\n%s", want, log)
				}
			}
			if strings.Contains("\n"+log+"\n", "\npwned\n") || strings.Contains(log, "\n42\n") {
				t.Errorf("something in the pull request was run by a shell:\n%s", log)
			}
			r.servesNormalJob(t)
			if left := pwnedFiles(t, pwned); len(left) > 0 {
				t.Errorf("injected commands ran: %v", left)
			}
			if !exists(canary) {
				t.Error("an injected rm removed the canary")
			}
		})
	}
}

// pwnedFiles lists the files an injected command would have made.
func pwnedFiles(t *testing.T, prefix string) []string {
	t.Helper()
	files, err := filepath.Glob(prefix + "*")
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestSymlinksOutOfTheWorkspaceRedirectNothing covers links a test plants
// in its checkout and in the layout around it, pointing outside the
// workspace. The fake cannot commit a symlink, so the test makes them;
// committed links pointing outside, checked out and then cleaned up without
// being followed, are covered in pkg/artifacts (cleanup_test.go), and
// nginx's refusal to follow links in deploy/ (disable_symlinks).
func TestSymlinksOutOfTheWorkspaceRedirectNothing(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		plant string // run by attempt 1, which then fails; OUT is the outside directory
		state string
		desc  string
	}{
		{
			name:  "links_in_the_checkout_are_removed_not_followed_before_the_retry",
			plant: `ln -s "$OUT" escape-dir && ln -s "$OUT/keep.txt" escape-file && cat escape-file`,
			state: "success", desc: "on attempt 2",
		},
		{
			name:  "a_checkout_replaced_by_a_link_is_removed_not_followed_before_the_retry",
			plant: `cd .. && mv source source.moved && ln -s "$OUT" source`,
			state: "success", desc: "on attempt 2",
		},
		{
			name:  "a_test_directory_replaced_by_a_link_ends_the_test_as_error",
			plant: `cd ../.. && mv t t.moved && ln -s "$OUT" t`,
			state: "error", desc: "cannot prepare the test",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out := t.TempDir()
			if err := os.WriteFile(filepath.Join(out, "keep.txt"), []byte("outside the workspace\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			r := newRig(t)
			command := `if [ "$YCI_ATTEMPT" = 1 ]; then ` + tc.plant + `; exit 1; fi
test -f .yci.py && test ! -e escape-dir && echo "fresh copy"`
			yci := testRunning(command, ", env={'OUT': '"+out+"'}", 1)
			pr := r.openBranchPull(t, fakegithub.PullSpec{Head: "links"}, map[string]string{".yci.py": yci})
			sha := pr.GetHead().GetSHA()
			r.publish(t, pr.GetNumber(), sha, "d1")
			s := r.waitFinal(t, sha, "yci/t")["yci/t"]
			if s.GetState() != tc.state || !strings.Contains(s.GetDescription(), tc.desc) {
				t.Errorf("yci/t: %s %q, want %s with %q", s.GetState(), s.GetDescription(), tc.state, tc.desc)
			}
			entries, err := os.ReadDir(out)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 1 {
				t.Errorf("the worker wrote outside the workspace: %v", entries)
			}
			if keep, err := os.ReadFile(filepath.Join(out, "keep.txt")); err != nil || string(keep) != "outside the workspace\n" {
				t.Errorf("keep.txt outside the workspace is now %q (%v)", keep, err)
			}
			r.servesNormalJob(t)
		})
	}
}
