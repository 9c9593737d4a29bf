package limits

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// TestScore is the oom_score_adj of every process of a command the worker
// does not trust: the top, so that the OOM killer takes one of them first.
const TestScore = 1000

// Start starts cmd, unstarted, with its first process already in the
// cgroup, so that nothing the command runs is ever outside it: on v2 the
// kernel places the process there as it is cloned (CLONE_INTO_CGROUP); on
// v1 a locked thread of the worker joins the cgroup, forks the command and
// leaves the cgroup before it runs other goroutines. Start does not
// touch the command's oom_score_adj (see RaiseScore). An error means cmd
// did not start.
func (g *Group) Start(cmd *exec.Cmd) error {
	switch g.mode {
	case V1:
		return g.startV1(cmd)
	case V2:
		return g.startV2(cmd)
	}
	return cmd.Start()
}

// startV1 forks cmd from a locked OS thread that has joined the cgroup's
// tasks, and moves the thread back to the worker's own cgroups (parents)
// before unlocking it. The thread must live on: bubblewrap's
// --die-with-parent (PR_SET_PDEATHSIG) fires when the thread that forked
// it ends, not the process.
func (g *Group) startV1(cmd *exec.Cmd) error {
	for key := range g.dirs {
		if g.parents[key] == "" {
			return fmt.Errorf("starting a command in cgroup %s: no cgroup of the worker's to return to", g.dirs[key])
		}
	}
	started := make(chan error, 1)
	go g.forkFromOwnThread(cmd, started)
	return <-started
}

// forkFromOwnThread joins the cgroup with its thread, starts cmd from it
// and leaves the cgroup again. When it cannot leave, it kills cmd and
// returns without UnlockOSThread, so that the runtime ends the thread
// instead of running other goroutines on it in the command's cgroup;
// threads the runtime needs meanwhile are cloned by its template thread,
// not by a locked one. The main thread never ends (the runtime parks it
// instead), so on it the work moves to a goroutine that cannot run there
// while this one holds it.
func (g *Group) forkFromOwnThread(cmd *exec.Cmd, started chan<- error) {
	runtime.LockOSThread()
	if unix.Gettid() == unix.Getpid() {
		inner := make(chan error, 1)
		go g.forkFromOwnThread(cmd, inner)
		err := <-inner
		runtime.UnlockOSThread()
		started <- err
		return
	}
	tid := []byte(strconv.Itoa(unix.Gettid()))
	if err := g.joinTasks(g.dirs, tid); err != nil {
		// Some may have been joined: the thread stays locked and ends.
		started <- err
		return
	}
	if err := cmd.Start(); err != nil {
		started <- errors.Join(err, g.joinTasks(g.parents, tid))
		return
	}
	if err := g.joinTasks(g.parents, tid); err != nil {
		if kerr := cmd.Process.Kill(); kerr != nil {
			err = errors.Join(err, kerr)
		}
		cmd.Wait() // its error is the kill's
		started <- err
		return
	}
	runtime.UnlockOSThread()
	started <- nil
}

// joinTasks moves thread tid into the cgroups dirs (keyed as
// hierarchy.dirs).
func (g *Group) joinTasks(dirs map[string]string, tid []byte) error {
	for _, key := range slices.Sorted(maps.Keys(dirs)) {
		if err := os.WriteFile(filepath.Join(dirs[key], "tasks"), tid, 0o644); err != nil {
			return fmt.Errorf("moving the thread starting a command to cgroup %s: %w", dirs[key], err)
		}
	}
	return nil
}

// startV2 has the kernel clone cmd straight into the cgroup.
func (g *Group) startV2(cmd *exec.Cmd) error {
	dir := g.dirs[""]
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening cgroup %s to start the command in: %w", dir, err)
	}
	defer unix.Close(fd)
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, fd
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting the command in cgroup %s: %w", dir, err)
	}
	return nil
}

// RaiseScore sets the oom_score_adj of process pid to TestScore. Raising
// needs no privilege over a process of the same user; children forked
// afterwards inherit it. A process already gone is an error: the caller
// raises the score of a command it holds (see the sandbox's block-fd).
func RaiseScore(pid int) error {
	err := os.WriteFile("/proc/"+strconv.Itoa(pid)+"/oom_score_adj", []byte(strconv.Itoa(TestScore)), 0o644)
	if err != nil {
		return fmt.Errorf("raising the oom_score_adj of %d: %w", pid, err)
	}
	return nil
}
