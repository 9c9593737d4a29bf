package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"
)

// holdWait bounds how long Release waits for bubblewrap to report the
// sandbox's pid: building a sandbox takes milliseconds, and nothing of the
// command has run yet to slow it down.
const holdWait = 30 * time.Second

// hold is the pair of pipes that keep a confined command from running
// until the worker lets it: bubblewrap builds the sandbox, writes the pid
// of its first process to the info pipe (--info-fd) and then waits for a
// byte on the block pipe (--block-fd) before it runs anything of the
// command.
type hold struct {
	blockR, blockW *os.File
	infoR, infoW   *os.File
}

func newHold() (*hold, error) {
	h := &hold{}
	var err error
	if h.blockR, h.blockW, err = os.Pipe(); err != nil {
		return nil, fmt.Errorf("creating the sandbox's block pipe: %w", err)
	}
	if h.infoR, h.infoW, err = os.Pipe(); err != nil {
		h.close()
		return nil, fmt.Errorf("creating the sandbox's info pipe: %w", err)
	}
	return h, nil
}

// args are bubblewrap's arguments for the child's ends at fd and fd+1.
func (h *hold) args(fd int) []string {
	return []string{"--block-fd", strconv.Itoa(fd), "--info-fd", strconv.Itoa(fd + 1)}
}

// childEnds are the ends bubblewrap gets, in the order of args.
func (h *hold) childEnds() []*os.File { return []*os.File{h.blockR, h.infoW} }

// close closes every end not closed yet.
func (h *hold) close() {
	for _, f := range []**os.File{&h.blockR, &h.blockW, &h.infoR, &h.infoW} {
		if *f != nil {
			(*f).Close()
			*f = nil
		}
	}
}

// sandboxPid reads the pid bubblewrap reports for the sandbox's first
// process.
func (h *hold) sandboxPid() (int, error) {
	if err := h.infoR.SetReadDeadline(time.Now().Add(holdWait)); err != nil {
		return 0, fmt.Errorf("reading the sandbox's pid: %w", err)
	}
	var info struct {
		ChildPid int `json:"child-pid"`
	}
	if err := json.NewDecoder(io.LimitReader(h.infoR, 64<<10)).Decode(&info); err != nil {
		return 0, fmt.Errorf("%w: bubblewrap reported no sandbox pid: %w", ErrSetup, err)
	}
	if info.ChildPid <= 0 {
		return 0, fmt.Errorf("%w: bubblewrap reported sandbox pid %d", ErrSetup, info.ChildPid)
	}
	return info.ChildPid, nil
}

// Held is a command confined by ConfineHeld. Its methods are called by
// one goroutine: Release once, after the command started; Done once, as
// Confine's done.
type Held struct {
	cmd  *exec.Cmd
	hold *hold
	c    *confined
}

// ConfineHeld is Confine for a command that must not run before the
// worker has acted on its processes: bubblewrap builds the sandbox and
// then waits, before the command's first instruction, until Release lets
// it go. The caller starts cmd (cmd.Start, or a cgroup's start), then
// calls Release; Done as Confine's done in every case.
func (b *Bwrap) ConfineHeld(cmd *exec.Cmd, writable, readOnly []string) (*Held, error) {
	h, err := newHold()
	if err != nil {
		return nil, err
	}
	c, err := b.confine(cmd, writable, readOnly, h)
	if err != nil {
		h.close()
		return nil, err
	}
	return &Held{cmd: cmd, hold: h, c: c}, nil
}

// Release waits (at most holdWait) for bubblewrap to report the sandbox's
// pid, calls ready with bubblewrap's pid and the sandbox's, and only when
// ready returned nil lets the command run: nothing in the sandbox runs
// before ready has, and every process the command starts descends from
// those two. On an error the command's process group is killed and
// waited for (cmd.Wait), and the error returned.
func (h *Held) Release(ready func(pids ...int) error) error {
	// bubblewrap has its own copies: with ours closed, its death ends
	// the read of the info pipe.
	h.hold.blockR.Close()
	h.hold.infoW.Close()
	h.hold.blockR, h.hold.infoW = nil, nil
	defer h.hold.close()
	pid, err := h.hold.sandboxPid()
	if err == nil {
		err = ready(h.cmd.Process.Pid, pid)
	}
	if err == nil {
		_, werr := h.hold.blockW.Write([]byte{1})
		if errors.Is(werr, syscall.EPIPE) {
			// bubblewrap is gone before the release (it could not set
			// the sandbox up after it reported the pid): nothing ran,
			// and its exit, which Done reads, says why.
			return nil
		}
		if werr != nil {
			err = fmt.Errorf("releasing the sandbox: %w", werr)
		}
	}
	if err == nil {
		return nil
	}
	// Closing the block pipe would release the command too: kill first.
	if kerr := syscall.Kill(-h.cmd.Process.Pid, syscall.SIGKILL); kerr != nil && !errors.Is(kerr, syscall.ESRCH) {
		err = errors.Join(err, fmt.Errorf("killing the held sandbox: %w", kerr))
	}
	h.cmd.Wait() // its error is the kill's
	return err
}

// Done is Confine's done. A nil Held has nothing to release.
func (h *Held) Done() error {
	if h == nil {
		return nil
	}
	h.hold.close()
	return h.c.done()
}
