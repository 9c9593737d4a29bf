package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-github/v88/github"

	"github.com/yourci/yourci/pkg/pause"
)

// script is a test.sh: a prelude, then body. The prelude names the test
// $T (from the env .yci.py gives it, or the seed's ENV_VAR_1-ENV_VAR_2),
// records the start in the marks directory as started-<sha>-<T>-<pid>, and
// defines wait_release, which blocks until the test calls s.release (at
// most a minute, so no script outlives a broken test for long).
func (s *stack) script(body string) string {
	return fmt.Sprintf(`#!/bin/bash
M=%s
T=${T:-$ENV_VAR_1-$ENV_VAR_2}
touch "$M/started-$YCI_SHA-$T-$$"
echo "attempt of $T on $YCI_SHA build $YCI_BUILD"
wait_release() {
  for i in $(seq 600); do [ -e "$M/release" ] && return 0; sleep 0.1; done
  echo "never released"; exit 99
}
%s
`, shellQuote(s.marks), body)
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// yciPy is a .yci.py yielding one ./test.sh per name, with T=name (so the
// name is the status context yci/<name>), retried through the queue when
// retries > 0.
func yciPy(names []string, retries, increment int) string {
	var b strings.Builder
	b.WriteString("from yci.retry import IncrementalRetry\nfrom yci.run import Bash\n\n")
	b.WriteString("def test_generator(build_id, pull):\n")
	b.WriteString("    for name in " + pyList(names) + ":\n")
	if retries == 0 {
		b.WriteString("        yield Bash('./test.sh', env={'T': name})\n")
	} else {
		fmt.Fprintf(&b, "        yield IncrementalRetry(Bash('./test.sh', env={'T': name}), retries=%d, retry_increment=%d)\n", retries, increment)
	}
	return b.String()
}

func pyList(names []string) string {
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = strconv.Quote(n)
	}
	return "[" + strings.Join(quoted, ", ") + "]"
}

// contexts are the status contexts of names.
func contexts(names ...string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = "yci/" + n
	}
	return out
}

// starts are the pids of every start of test name on sha so far.
func (s *stack) starts(sha, name string) []int {
	s.tb.Helper()
	matches, err := filepath.Glob(filepath.Join(s.marks, "started-"+sha+"-"+name+"-*"))
	if err != nil {
		s.tb.Fatal(err)
	}
	var pids []int
	for _, m := range matches {
		pid, err := strconv.Atoi(m[strings.LastIndexByte(m, '-')+1:])
		if err != nil {
			s.tb.Fatalf("marker %s: %v", m, err)
		}
		pids = append(pids, pid)
	}
	return pids
}

// waitFile waits until a file matching pattern exists under the marks
// directory.
func (s *stack) waitFile(pattern string) {
	s.tb.Helper()
	for {
		if m, _ := filepath.Glob(filepath.Join(s.marks, pattern)); len(m) > 0 {
			return
		}
		select {
		case <-s.ctx.Done():
			s.tb.Fatalf("no %s appeared: %v", pattern, s.ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// release lets every script blocked in wait_release go on.
func (s *stack) release() {
	if err := os.WriteFile(filepath.Join(s.marks, "release"), nil, 0o644); err != nil {
		s.tb.Error(err)
	}
}

// alive reports whether pid runs: a zombie, waiting for a parent that will
// never reap it (as under a container's init that reaps nothing), does not.
func alive(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z"
}

// waitOrphans waits a while for every script started in this test to
// exit: a SIGKILLed worker leaves its test's process group running, and
// it must not write into the test's directory while it is removed.
func (s *stack) waitOrphans() {
	matches, _ := filepath.Glob(filepath.Join(s.marks, "started-*"))
	ctx, cancel := context.WithTimeout(s.ctx, 15*time.Second)
	defer cancel()
	for _, m := range matches {
		pid, err := strconv.Atoi(m[strings.LastIndexByte(m, '-')+1:])
		if err != nil {
			continue
		}
		if pause.Poll(ctx, 50*time.Millisecond, func() bool { return !alive(pid) }) != nil {
			return // waited long enough: what is left is the cleanup's to bear
		}
	}
}

// waitStatuses waits until done holds for the latest statuses of sha.
func (s *stack) waitStatuses(sha, what string, done func(map[string]github.RepoStatus) bool) map[string]github.RepoStatus {
	s.tb.Helper()
	ctx, cancel := context.WithTimeout(s.ctx, waitLimit)
	defer cancel()
	var got map[string]github.RepoStatus
	err := s.gh.WaitStatuses(ctx, owner, repoName, sha, func(m map[string]github.RepoStatus) bool {
		got = m
		return done(m)
	})
	if err != nil {
		s.tb.Fatalf("waiting for %s of %.7s: %v\nhistory:\n%s", what, sha, err, s.history(sha))
	}
	return got
}

// waitFinal waits until every context in want has a final state.
func (s *stack) waitFinal(sha string, want ...string) map[string]github.RepoStatus {
	s.tb.Helper()
	return s.waitStatuses(sha, "final statuses", func(m map[string]github.RepoStatus) bool {
		for _, c := range want {
			if st, ok := m[c]; !ok || st.GetState() == "pending" {
				return false
			}
		}
		return true
	})
}

// waitRunning waits until test name of sha is running: its status says
// so and its script has started.
func (s *stack) waitRunning(sha, name string) {
	s.tb.Helper()
	s.waitStatuses(sha, name+" running", func(m map[string]github.RepoStatus) bool {
		st := m["yci/"+name]
		return strings.HasPrefix(st.GetDescription(), "running")
	})
	s.waitFile("started-" + sha + "-" + name + "-*")
}

// history is every status of sha, one per line, for failure messages.
func (s *stack) history(sha string) string {
	var b strings.Builder
	for _, st := range s.gh.Statuses(owner, repoName, sha) {
		fmt.Fprintf(&b, "  %-16s %-8s %s\n", st.GetContext(), st.GetState(), st.GetDescription())
	}
	return b.String()
}

// descriptions are the "state: description" of every status of one
// context of sha, oldest first.
func (s *stack) descriptions(sha, context string) []string {
	var out []string
	for _, st := range s.gh.Statuses(owner, repoName, sha) {
		if st.GetContext() == context {
			out = append(out, st.GetState()+": "+st.GetDescription())
		}
	}
	return out
}

// lastStart is when the latest start of test name on sha was recorded.
func (s *stack) lastStart(sha, name string) time.Time {
	s.tb.Helper()
	matches, err := filepath.Glob(filepath.Join(s.marks, "started-"+sha+"-"+name+"-*"))
	if err != nil {
		s.tb.Fatal(err)
	}
	var last time.Time
	for _, m := range matches {
		info, err := os.Stat(m)
		if err != nil {
			s.tb.Fatal(err)
		}
		if info.ModTime().After(last) {
			last = info.ModTime()
		}
	}
	return last
}
