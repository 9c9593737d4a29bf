package pipeline

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

func TestKillLeftoversEndsOrphansWorkingInTheDirectory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	work := filepath.Join(dir, "source", "sub")
	if err := os.MkdirAll(work, 0o755); err != nil {
		t.Fatal(err)
	}
	other := t.TempDir()
	start := func(cwd string) *exec.Cmd {
		// A group of its own, as a test's attempt has; bash waits on a
		// child so that two processes of the group work in cwd.
		cmd := exec.Command("bash", "-c", "sleep 1000 & wait")
		cmd.Dir = cwd
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); cmd.Wait() })
		return cmd
	}
	orphan := start(work)
	bystander := start(other)

	n, err := KillLeftovers(dir)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("signalled %d groups, want 1", n)
	}
	if err := orphan.Wait(); err == nil {
		t.Error("the leftover exited normally; want it killed")
	}
	if err := syscall.Kill(bystander.Process.Pid, 0); err != nil {
		t.Errorf("a process working elsewhere was killed: %v", err)
	}
}
