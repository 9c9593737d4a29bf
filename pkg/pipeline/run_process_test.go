package pipeline

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/yourci/yourci/pkg/pause"
)

// readPID reads a process id a test's command wrote to path.
func readPID(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("pid file %s: %v", path, err)
	}
	return pid
}

// alive reports whether pid is a process that has not exited. An exited
// process nobody reaped (a zombie) is not alive: in containers whose init
// does not reap, orphans stay zombies.
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	_, after, _ := bytes.Cut(stat, []byte(") "))
	return len(after) > 0 && after[0] != 'Z' && after[0] != 'X'
}

// waitGone waits until pid is no longer alive: a SIGKILL takes effect
// asynchronously when the process does not hold the test's output.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if pause.Poll(ctx, 5*time.Millisecond, func() bool { return !alive(pid) }) != nil {
		t.Fatalf("process %d still alive", pid)
	}
}

func TestRunnerTimeoutKillsWholeProcessGroup(t *testing.T) {
	t.Parallel()
	// The timeout leaves bash ample time to start the sleeper on a busy
	// machine; the test takes no longer than it.
	a := attemptIn(t, "sleep 1000 & echo $! > bg.pid; echo $$ > main.pid; sleep 1000")
	a.Test.Timeout = time.Second
	res, log := runOK(t, &Runner{KillGrace: 10 * time.Second}, a)
	if res.Outcome != TimedOut || res.Reason != "no result within 1s" {
		t.Errorf("result = %v, want timed out", res)
	}
	for _, f := range []string{"bg.pid", "main.pid"} {
		pid := readPID(t, filepath.Join(a.Dir, f))
		waitGone(t, pid)
	}
	if strings.Contains(log, "SIGKILL") {
		t.Errorf("group ended on SIGTERM, yet the log says SIGKILL:\n%s", log)
	}
}

func TestRunnerEscalatesToSIGKILLAfterGrace(t *testing.T) {
	t.Parallel()
	a := attemptIn(t, "trap '' TERM; sleep 1000 & echo $! > bg.pid; sleep 1000")
	a.Test.Timeout = time.Second
	res, log := runOK(t, &Runner{KillGrace: 100 * time.Millisecond}, a)
	if res.Outcome != TimedOut || res.ExitCode != 137 {
		t.Errorf("result = %+v, want timed out by SIGKILL", res)
	}
	if !strings.Contains(log, LogPrefix+"the process group outlived SIGTERM by 100ms; sent SIGKILL\n") {
		t.Errorf("log lacks the SIGKILL note:\n%s", log)
	}
	waitGone(t, readPID(t, filepath.Join(a.Dir, "bg.pid")))
}

func TestRunnerCancellationTermsGroupAndSaysWhy(t *testing.T) {
	t.Parallel()
	a := attemptIn(t, "trap 'echo got TERM; exit 0' TERM; sleep 1000 & echo $! > bg.pid; touch started; wait")
	ctx, cancel := context.WithCancelCause(t.Context())
	go func() {
		waitForFile(t, filepath.Join(a.Dir, "started"))
		cancel(errors.New("superseded by 0123abc"))
	}()
	res, err := (&Runner{}).Run(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != Canceled || res.Reason != "canceled: superseded by 0123abc" {
		t.Errorf("result = %+v, want canceled with the cause", res)
	}
	if log := readLog(t, a.LogPath); !strings.Contains(log, "got TERM\n") {
		t.Errorf("test never saw SIGTERM:\n%s", log)
	}
	waitGone(t, readPID(t, filepath.Join(a.Dir, "bg.pid")))
}

func TestRunnerLeavesNoProcessBehind(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, command string }{
		{"sleeper_holding_output", "sleep 1000 & echo $! > bg.pid; echo done"},
		{"sleeper_with_own_output", "sleep 1000 > /dev/null 2>&1 & echo $! > bg.pid; echo done"},
		{"sleeper_of_a_subshell", "(sleep 1000 & echo $! > bg.pid) ; echo done"},
		{"sleeper_of_a_failing_test", "sleep 1000 & echo $! > bg.pid; exit 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := attemptIn(t, tt.command)
			res, _ := runOK(t, &Runner{}, a)
			if res.Outcome != Passed && res.Outcome != Failed {
				t.Errorf("result = %v, want the test's own exit", res)
			}
			waitGone(t, readPID(t, filepath.Join(a.Dir, "bg.pid")))
		})
	}
}

func TestRunnerDoesNotHangOnProcessEscapingGroup(t *testing.T) {
	t.Parallel()
	// The command waits until the sleeper has left the group, which it does
	// before it writes its pid.
	a := attemptIn(t, "setsid bash -c 'echo $$ > escaped.pid; exec sleep 1000' & while [ ! -s escaped.pid ]; do sleep 0.01; done; echo done")
	res, err := (&Runner{KillGrace: 100 * time.Millisecond}).Run(t.Context(), a)
	pid := readPID(t, filepath.Join(a.Dir, "escaped.pid"))
	t.Cleanup(func() {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			t.Errorf("killing the escaped sleeper: %v", err)
		}
	})
	if err != nil || res.Outcome != Passed {
		t.Fatalf("Run = %v, %v; want passed", res, err)
	}
	if log := readLog(t, a.LogPath); !strings.Contains(log, "still holds its output; stopped reading") {
		t.Errorf("log lacks the escaped-process note:\n%s", log)
	}
}

// fullDisk accepts room bytes, then fails as a full disk does.
type fullDisk struct{ room int }

func (d *fullDisk) Write(p []byte) (int, error) {
	n := min(len(p), d.room)
	d.room -= n
	if n < len(p) {
		return n, syscall.ENOSPC
	}
	return n, nil
}

func TestRunnerKillsTestWhenLogFailsMidway(t *testing.T) {
	t.Parallel()
	a := attemptIn(t, "sleep 1000 & echo $! > bg.pid; while :; do echo output; done")
	res, err := (&Runner{}).attempt(t.Context(), a, &fullDisk{room: 1000}, logEnd{last: '\n'})
	if !errors.Is(err, ErrLog) || !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("error = %v, want ErrLog for a full disk", err)
	}
	if res.Outcome != Errored || !strings.Contains(res.Reason, "no space left") {
		t.Errorf("result = %+v, want errored for a full disk", res)
	}
	waitGone(t, readPID(t, filepath.Join(a.Dir, "bg.pid")))
}
