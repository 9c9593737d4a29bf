package limits_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/yourci/yourci/pkg/limits"
	"github.com/yourci/yourci/pkg/limits/limitstest"
)

// run runs script in bash in a Group of l, as the worker does without a
// sandbox (start, then raise the score), and returns Close's error and
// the output.
func run(t *testing.T, l *limits.Limits, script string) (string, error) {
	t.Helper()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatal(err)
	}
	// The script waits for its score to be raised: bash reads stdin first.
	cmd := exec.Command(bash, "-c", "read go; "+script)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	g, err := l.Group()
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(cmd); err != nil {
		t.Fatal(errors.Join(err, g.Close()))
	}
	if err := limits.RaiseScore(cmd.Process.Pid); err != nil {
		t.Error(err)
	}
	in.Write([]byte("go\n"))
	in.Close()
	cmd.Wait()
	return out.String(), g.Close()
}

func TestLimitsV1(t *testing.T) {
	l := limitstest.Open(t, limits.Config{Memory: 64 << 20, Pids: 32, CPUWeight: 50})
	t.Run("memory_hog_is_oom_killed_and_reported", func(t *testing.T) {
		out, err := run(t, l, `python3 -c "a = b'x' * (400 << 20); print('survived')"`)
		var e *limits.Exceeded
		if !errors.As(err, &e) || !e.Memory || e.Errored() {
			t.Fatalf("done = %v (output %q); want a memory Exceeded", err, out)
		}
		if strings.Contains(out, "survived") || !strings.Contains(err.Error(), "more than 64 MiB of memory") {
			t.Fatalf("err %q, output %q", err, out)
		}
	})
	t.Run("fork_bomb_stops_at_the_pid_limit_and_leaves_nothing", func(t *testing.T) {
		marker := "yci-limits-test-" + filepath.Base(t.TempDir())
		// python's fork, unlike bash's, does not retry for 15 s on EAGAIN.
		out, err := run(t, l, `python3 -c "
import os, sys, time  # `+marker+`
for i in range(1000):
    try:
        if os.fork() == 0:
            os.close(1); os.close(2); time.sleep(100); os._exit(0)
    except OSError as e:
        print(e); break
"`)
		var e *limits.Exceeded
		if !errors.As(err, &e) || !e.Pids || !e.Errored() || !strings.Contains(err.Error(), "limit of 32 processes") {
			t.Fatalf("done = %v (output %q); want a pids Exceeded", err, out)
		}
		if left, _ := exec.Command("pgrep", "-f", marker).Output(); len(left) > 0 {
			t.Fatalf("processes left after done: %s", left)
		}
	})
	t.Run("well_behaved_command_reports_nothing", func(t *testing.T) {
		out, err := run(t, l, `cat /proc/self/oom_score_adj; sleep 0.01 & wait`)
		if err != nil || strings.TrimSpace(out) != "1000" {
			t.Fatalf("done = %v, output %q; want nil and oom_score_adj 1000", err, out)
		}
	})
}

// TestStartV1 attacks the start: the command's first instruction must
// already run in every cgroup of its Group, and no thread of the worker
// may stay in a test's cgroup after the start (the runtime would run
// other goroutines there, charged and killed with the test).
func TestStartV1(t *testing.T) {
	l := limitstest.Open(t, limits.Config{Memory: 64 << 20, Pids: 32, CPUWeight: 50})
	t.Run("first_process_is_in_every_cgroup_of_its_group", func(t *testing.T) {
		out, err := run(t, l, `grep -E ':(memory|pids|cpu):' /proc/self/cgroup`)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) < 2 {
			t.Fatalf("cgroups %q; want memory and pids at least", out)
		}
		for _, line := range lines {
			if !strings.Contains(line, "/yci-") {
				t.Errorf("cgroup %q is not the command's own", line)
			}
		}
	})
	// bubblewrap's --die-with-parent is PR_SET_PDEATHSIG, which fires
	// when the thread that forked it ends: that thread must live on.
	t.Run("command_outlives_the_thread_that_started_it", func(t *testing.T) {
		cmd := exec.Command("bash", "-c", "read go; exit 7")
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		in, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		g, err := l.Group()
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Start(cmd); err != nil {
			t.Fatal(errors.Join(err, g.Close()))
		}
		// Let other goroutines run on every thread before bash goes on.
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() { defer wg.Done(); runtime.Gosched() }()
		}
		wg.Wait()
		in.Write([]byte("go\n"))
		in.Close()
		err = cmd.Wait()
		if cerr := g.Close(); cerr != nil {
			t.Error(cerr)
		}
		if code := cmd.ProcessState.ExitCode(); code != 7 {
			t.Fatalf("command ended with %v; want exit status 7", err)
		}
	})
	t.Run("no_worker_thread_stays_in_a_test_cgroup", func(t *testing.T) {
		var wg sync.WaitGroup
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := run(t, l, "true"); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		tasks, err := filepath.Glob("/proc/self/task/*/cgroup")
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range tasks {
			b, err := os.ReadFile(f)
			if err == nil && strings.Contains(string(b), "/yci-") {
				t.Errorf("%s: %s", f, b)
			}
		}
	})
}

func TestUnlimitedStillRaisesOOMScore(t *testing.T) {
	l, err := limits.Unlimited()
	if err != nil {
		t.Fatal(err)
	}
	out, err := run(t, l, `cat /proc/self/oom_score_adj`)
	if err != nil || strings.TrimSpace(out) != "1000" {
		t.Fatalf("done = %v, output %q; want nil and 1000", err, out)
	}
}

func TestOpenRefusesBadConfig(t *testing.T) {
	_, err := limits.Open(limits.Config{Memory: 10, Pids: 1, CPUWeight: 20000})
	for _, want := range []string{"below 1 MiB", "below 8", "not between 1 and 10000"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Open = %v; want %q in it", err, want)
		}
	}
}

// TestProtectSelf lowers the score in a child process, leaving the test
// binary's alone: the child reads back -900, or (without CAP_SYS_RESOURCE,
// as in some containers even for root) gets a permission error and keeps
// its score.
func TestProtectSelf(t *testing.T) {
	if os.Getenv("YCI_LIMITS_CHILD") == "1" {
		err := limits.ProtectSelf(-900)
		b, _ := os.ReadFile("/proc/self/oom_score_adj")
		got := strings.TrimSpace(string(b))
		if (err == nil && got != "-900") || (err != nil && (!errors.Is(err, os.ErrPermission) || got == "-900")) {
			t.Fatalf("ProtectSelf = %v, oom_score_adj now %s", err, got)
		}
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestProtectSelf$")
	cmd.Env = append(os.Environ(), "YCI_LIMITS_CHILD=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child: %v, %s", err, out)
	}
}
