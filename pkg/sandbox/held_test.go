package sandbox_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/yourci/yourci/pkg/limits"
	"github.com/yourci/yourci/pkg/pipeline"
	"github.com/yourci/yourci/pkg/sandbox"
	"github.com/yourci/yourci/pkg/sandbox/sandboxtest"
)

// TestHeldRunsNothingBeforeRelease attacks the window between bubblewrap's
// start and the raise of the sandbox's OOM score: no instruction of the
// command may run before Release's ready has, and a failing ready or a
// sandbox that cannot be built runs nothing at all.
func TestHeldRunsNothingBeforeRelease(t *testing.T) {
	box := sandboxtest.New(t, sandbox.Options{})
	if b, err := os.ReadFile("/proc/self/oom_score_adj"); err != nil || strings.TrimSpace(string(b)) == "1000" {
		t.Fatalf("the test's own oom_score_adj is %q (%v): a child would inherit 1000 and prove nothing", b, err)
	}
	tests := []struct {
		name     string
		script   string
		writable func(dir string) string
		ready    func(t *testing.T, cmd *exec.Cmd, pids []int) error
		wantOut  string
		wantErr  error // from Release
		wantDone error
	}{
		{name: "first_instruction_sees_score_1000", script: "cat /proc/self/oom_score_adj; touch ran",
			ready: func(t *testing.T, cmd *exec.Cmd, pids []int) error {
				if len(pids) != 2 || pids[0] != cmd.Process.Pid {
					t.Errorf("ready got pids %v; want bubblewrap's %d and the sandbox's", pids, cmd.Process.Pid)
				} else if ppid := parentOf(t, pids[1]); ppid != pids[0] {
					t.Errorf("the sandbox pid %d has parent %d; want bubblewrap %d", pids[1], ppid, pids[0])
				}
				for _, pid := range pids {
					if err := limits.RaiseScore(pid); err != nil {
						return err
					}
				}
				return nil
			},
			wantOut: "1000\n"},
		{name: "failing_ready_runs_nothing", script: "touch ran",
			ready:   func(*testing.T, *exec.Cmd, []int) error { return errors.New("no score for you") },
			wantErr: errors.New("no score for you"), wantDone: sandbox.ErrSetup},
		// bubblewrap blocks before it mounts anything: the failure shows
		// after the release, as the command never running.
		{name: "sandbox_that_cannot_be_built_runs_nothing", script: "touch ran",
			writable: func(dir string) string { return filepath.Join(dir, "gone") },
			ready:    func(*testing.T, *exec.Cmd, []int) error { return nil },
			wantDone: sandbox.ErrSetup},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writable := dir
			if tt.writable != nil {
				writable = tt.writable(dir)
				if err := os.Mkdir(writable, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			cmd := exec.Command("/bin/bash", "-c", tt.script)
			cmd.Dir = dir
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			held, err := box.ConfineHeld(cmd, []string{dir, writable}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.writable != nil {
				// Gone between Confine and the start, as a cleaned-up
				// workspace can be.
				if err := os.Remove(writable); err != nil {
					t.Fatal(err)
				}
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(errors.Join(err, held.Done()))
			}
			rerr := held.Release(func(pids ...int) error { return tt.ready(t, cmd, pids) })
			if !matches(rerr, tt.wantErr) {
				t.Fatalf("Release = %v; want %v", rerr, tt.wantErr)
			}
			if rerr == nil {
				if err := cmd.Wait(); err != nil && tt.wantDone == nil {
					t.Fatalf("%v: %s", err, out.String())
				}
			} else if cmd.ProcessState == nil {
				t.Fatal("Release failed without waiting for the command")
			}
			if done := held.Done(); !matches(done, tt.wantDone) || (tt.wantOut != "" && out.String() != tt.wantOut) {
				t.Fatalf("done = %v, output %q; want %v and %q", done, out.String(), tt.wantDone, tt.wantOut)
			}
			_, err = os.Stat(filepath.Join(dir, "ran"))
			if ran, want := err == nil, tt.wantErr == nil && tt.wantDone == nil; ran != want {
				t.Fatalf("command ran: %v; want %v", ran, want)
			}
		})
	}
}

// matches reports whether err is want, or both nil, or has its message.
func matches(err, want error) bool {
	if err == nil || want == nil {
		return err == want
	}
	return errors.Is(err, want) || err.Error() == want.Error()
}

// parentOf is process pid's parent.
func parentOf(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "PPid:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no PPid for %d", pid)
	return 0
}

// TestLimitedStartsEveryProcessAtTheTopScore runs the worker's
// composition without cgroups: every process of an attempt, bubblewrap's
// included, is the OOM killer's first choice from its first instruction.
func TestLimitedStartsEveryProcessAtTheTopScore(t *testing.T) {
	box := sandboxtest.New(t, sandbox.Options{})
	lim, err := limits.Unlimited()
	if err != nil {
		t.Fatal(err)
	}
	r := &pipeline.Runner{Sandbox: &sandbox.Limited{Box: box, Limits: lim}}
	a := attempt(t, `cat /proc/self/oom_score_adj; for p in /proc/[0-9]*; do echo "$(cat $p/oom_score_adj)"; done | sort -u`)
	res, log := run(t, r, t.Context(), a)
	if res.Outcome != pipeline.Passed {
		t.Fatalf("result %v; log:\n%s", res, log)
	}
	if !strings.Contains(log, "\n1000\n1000\n") || strings.Count(log, "\n1000\n") != 1 {
		t.Fatalf("scores in the sandbox are not all 1000; log:\n%s", log)
	}
}
