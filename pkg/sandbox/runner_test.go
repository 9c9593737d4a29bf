package sandbox_test

import (
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/yourci/yourci/pkg/pause"
	"github.com/yourci/yourci/pkg/pipeline"
	"github.com/yourci/yourci/pkg/sandbox"
	"github.com/yourci/yourci/pkg/sandbox/sandboxtest"
)

// attempt returns the first attempt of a test running cmd in a fresh
// source directory, its log in a sibling directory as in the workspace.
func attempt(t testing.TB, cmd string) pipeline.Attempt {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "source")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	return pipeline.Attempt{Test: pipeline.Test{Name: "unit", Command: cmd}, Number: 1, Dir: src,
		LogPath: filepath.Join(dir, "unit", "out.txt")}
}

func run(t *testing.T, r *pipeline.Runner, ctx context.Context, a pipeline.Attempt) (pipeline.Result, string) {
	t.Helper()
	res, err := r.Run(ctx, a)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	log, err := os.ReadFile(a.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(log)
}

// marker is a process name no other process has: pids inside the sandbox
// are its own namespace's, so the host finds the test's processes by name.
func marker(t *testing.T) string {
	return "yci-sbx-" + strings.ToLower(rand.Text()[:12])
}

// running lists the host pids whose command line holds name.
func running(name string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && strings.Contains(string(cmdline), name) {
			stat, _ := os.ReadFile("/proc/" + e.Name() + "/stat")
			if _, after, _ := strings.Cut(string(stat), ") "); after != "" && after[0] != 'Z' {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// waitNoneRunning waits until no process is named name: SIGKILL takes
// effect asynchronously.
func waitNoneRunning(t *testing.T, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if pause.Poll(ctx, 5*time.Millisecond, func() bool { return len(running(name)) == 0 }) == nil {
		return
	}
	t.Fatalf("processes %v named %s still run after the attempt", running(name), name)
}

// sleeper is bash that starts a background sleep named name.
func sleeper(name string) string { return "(exec -a " + name + " sleep 1000) & " }

func TestRunnerInSandbox(t *testing.T) {
	t.Parallel()
	box := sandboxtest.New(t, sandbox.Options{})
	tests := []struct {
		name    string
		command func(mark string) string
		timeout time.Duration
		grace   time.Duration
		want    pipeline.Outcome
		reason  string
		inLog   []string
		notLog  []string
	}{
		{name: "exit_status_is_the_tests", command: func(m string) string { return "echo hi; exit 3" },
			want: pipeline.Failed, reason: "exit status 3", inLog: []string{"hi\n"}},
		{name: "passing_test_passes", command: func(m string) string { return "echo out; echo err >&2" },
			want: pipeline.Passed, inLog: []string{"out\nerr\n"}},
		{name: "background_sleeper_is_gone_after_a_pass", command: func(m string) string { return sleeper(m) + "echo done" },
			want: pipeline.Passed},
		{name: "sleeper_that_left_the_session_is_gone", command: func(m string) string {
			return "setsid bash -c 'exec -a " + m + " sleep 1000' & sleep 0.2; echo done"
		}, want: pipeline.Passed, notLog: []string{"still holds its output"}},
		{name: "timeout_sends_SIGTERM_the_test_can_trap", command: func(m string) string {
			return "trap 'echo got TERM; exit 0' TERM; " + sleeper(m) + "sleep 1000 & wait"
		}, timeout: time.Second, want: pipeline.TimedOut, inLog: []string{"got TERM\n"}, notLog: []string{"SIGKILL"}},
		{name: "a_test_ignoring_SIGTERM_is_killed_after_grace", command: func(m string) string {
			return "trap '' TERM; " + sleeper(m) + "sleep 1000"
		}, timeout: time.Second, grace: 100 * time.Millisecond, want: pipeline.TimedOut, inLog: []string{"sent SIGKILL"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			mark := marker(t)
			a := attempt(t, tt.command(mark))
			a.Test.Timeout = tt.timeout
			res, log := run(t, &pipeline.Runner{Sandbox: box, KillGrace: tt.grace}, t.Context(), a)
			if res.Outcome != tt.want || (tt.reason != "" && res.Reason != tt.reason) {
				t.Errorf("result = %v, want %v (%s)\n%s", res, tt.want, tt.reason, log)
			}
			for _, s := range tt.inLog {
				if !strings.Contains(log, s) {
					t.Errorf("log lacks %q:\n%s", s, log)
				}
			}
			for _, s := range tt.notLog {
				if strings.Contains(log, s) {
					t.Errorf("log has %q:\n%s", s, log)
				}
			}
			waitNoneRunning(t, mark)
		})
	}
}

func TestRunnerInSandboxCancelEndsEverything(t *testing.T) {
	t.Parallel()
	box := sandboxtest.New(t, sandbox.Options{})
	mark := marker(t)
	a := attempt(t, "trap 'echo got TERM; exit 0' TERM; "+sleeper(mark)+"touch started; sleep 1000 & wait")
	ctx, cancel := context.WithCancelCause(t.Context())
	go func() {
		// Cancel once the test has started, or after 20s without it.
		waitCtx, stop := context.WithTimeout(ctx, 20*time.Second)
		defer stop()
		if pause.Poll(waitCtx, 5*time.Millisecond, func() bool { _, err := os.Stat(filepath.Join(a.Dir, "started")); return err == nil }) != nil {
			t.Log("the test never started; cancelling anyway")
		}
		cancel(errors.New("superseded by 0123abc"))
	}()
	res, log := run(t, &pipeline.Runner{Sandbox: box}, ctx, a)
	if res.Outcome != pipeline.Canceled || res.Reason != "canceled: superseded by 0123abc" {
		t.Errorf("result = %+v, want canceled with the cause", res)
	}
	if !strings.Contains(log, "got TERM\n") {
		t.Errorf("test never saw SIGTERM:\n%s", log)
	}
	waitNoneRunning(t, mark)
}
