package sandbox

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"

	"github.com/yourci/yourci/pkg/limits"
)

// Limited confines each command with Box (nil: not at all) and runs it in
// a cgroup of its own from Limits, started so that none of the command's
// instructions runs outside its cgroup or below the top oom_score_adj.
// It is pkg/pipeline's Sandbox and Starter; Start must follow Confine for
// the same *exec.Cmd. It is safe for concurrent use.
type Limited struct {
	Box    *Bwrap
	Limits *limits.Limits

	mu      sync.Mutex
	pending map[*exec.Cmd]limitedCmd
}

// limitedCmd is what Confine prepared for Start.
type limitedCmd struct {
	group *limits.Group
	held  *Held // nil without Box
}

// Confine confines cmd with Box, held until Start has raised its score,
// and creates its cgroup. done removes the cgroup (killing what is left)
// and returns a *limits.Exceeded for a command past a limit, joined with
// the sandbox's own report.
func (l *Limited) Confine(cmd *exec.Cmd, writable, readOnly []string) (done func() error, err error) {
	var held *Held
	if l.Box != nil {
		if held, err = l.Box.ConfineHeld(cmd, writable, readOnly); err != nil {
			return nil, err
		}
	}
	g, err := l.Limits.Group()
	if err != nil {
		return nil, errors.Join(err, held.Done())
	}
	l.mu.Lock()
	if l.pending == nil {
		l.pending = map[*exec.Cmd]limitedCmd{}
	}
	l.pending[cmd] = limitedCmd{group: g, held: held}
	l.mu.Unlock()
	return func() error {
		l.take(cmd)
		return errors.Join(g.Close(), held.Done())
	}, nil
}

func (l *Limited) take(cmd *exec.Cmd) (limitedCmd, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c, ok := l.pending[cmd]
	delete(l.pending, cmd)
	return c, ok
}

// Start starts cmd, which Confine prepared, in its cgroup, and raises the
// oom_score_adj of bubblewrap and the sandbox before the command runs.
// Without Box nothing holds the command, so it runs for a moment at the
// worker's own score. An error means cmd is not running (it was killed
// and waited for if it had started).
func (l *Limited) Start(cmd *exec.Cmd) error {
	c, ok := l.take(cmd)
	if !ok {
		return errors.New("starting a command that was not confined by Limited")
	}
	if err := c.group.Start(cmd); err != nil {
		return err
	}
	if c.held != nil {
		return c.held.Release(raiseScores)
	}
	if err := limits.RaiseScore(cmd.Process.Pid); err != nil {
		// Its group, should it lead one, and then itself.
		if kerr := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); kerr != nil && !errors.Is(kerr, syscall.ESRCH) {
			err = errors.Join(err, fmt.Errorf("killing the command: %w", kerr))
		}
		if kerr := cmd.Process.Kill(); kerr != nil && !errors.Is(kerr, os.ErrProcessDone) {
			err = errors.Join(err, fmt.Errorf("killing the command: %w", kerr))
		}
		cmd.Wait() // its error is the kill's
		return err
	}
	return nil
}

func raiseScores(pids ...int) error {
	for _, pid := range pids {
		if err := limits.RaiseScore(pid); err != nil {
			return err
		}
	}
	return nil
}
