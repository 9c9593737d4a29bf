package pipeline

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// yciPackage is the Python package .yci.py files import (yci.run, yci.retry)
// and the evaluator script that drives them (yci/_evaluate.py).
//
//go:embed yci/*.py
var yciPackage embed.FS

// writePackage copies the embedded yci package into dir/yci.
func writePackage(dir string) error {
	files, err := fs.ReadDir(yciPackage, "yci")
	if err != nil {
		return fmt.Errorf("listing the embedded yci package: %w", err)
	}
	if err := os.Mkdir(filepath.Join(dir, "yci"), 0o700); err != nil {
		return fmt.Errorf("writing the yci package: %w", err)
	}
	for _, f := range files {
		data, err := yciPackage.ReadFile("yci/" + f.Name())
		if err != nil {
			return fmt.Errorf("reading embedded yci/%s: %w", f.Name(), err)
		}
		if err := os.WriteFile(filepath.Join(dir, "yci", f.Name()), data, 0o600); err != nil {
			return fmt.Errorf("writing the yci package: %w", err)
		}
	}
	return nil
}

const (
	// maxPrinted bounds what is kept of the evaluation's stdout and stderr:
	// its first and last halves, enough for the prints before a failure.
	maxPrinted = 64 << 10
	// drainWait bounds the wait for the output pipe to close once python has
	// exited and its process group is killed; only a process that left the
	// group (setsid) can hold it open longer.
	drainWait = time.Second
	// stacksWait bounds the wait for python to dump its stacks before it
	// is killed for taking too long.
	stacksWait = time.Second
)

// pythonExit is how one run of the evaluator script ended.
type pythonExit struct {
	printed    string // what it wrote on stdout and stderr, bounded
	result     []byte // what it wrote on resultFD, at most maxResult bytes
	resultOver bool   // it wrote more than maxResult there
	stacks     []byte // what it wrote on stacksFD, at most maxStacks bytes
	timedOut   bool   // killed by the Evaluator's time limit
	err        error  // from exec.Cmd.Wait
}

// runPython runs python with args in dir, in its own session and process
// group (confined by the Evaluator's Sandbox, reading work and dir and
// writing nothing of the host), and kills the whole group when it exits,
// times out or ctx ends; on a timeout it first asks python to dump its
// stacks. Its output, result and stacks come back over pipes made here,
// each bounded and read until drainWait after the group is killed. The
// returned error is the worker's problem (python cannot start); how the
// script ended is in pythonExit.
func (e *Evaluator) runPython(parent context.Context, dir, work string, args []string) (pythonExit, error) {
	ctx, cancel := context.WithTimeout(parent, e.timeout())
	defer cancel()
	printed := &capture{half: maxPrinted / 2}
	result := &bounded{max: maxResult, all: true}
	stacks := &bounded{max: maxStacks}
	chans, ends, err := openChannels([]string{"output", "result", "stacks"},
		[]io.Writer{printed, result, stacks})
	if err != nil {
		return pythonExit{}, err
	}
	defer closeChannels(chans, nil)
	cmd := exec.CommandContext(ctx, e.python(), args...)
	cmd.Dir = dir
	cmd.Env = e.environ()
	cmd.Stdout, cmd.Stderr = ends[0], ends[0]
	cmd.ExtraFiles = ends[1:] // resultFD, stacksFD
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	ran := func() error { return nil }
	if e.Sandbox != nil {
		if ran, err = e.Sandbox.Confine(cmd, nil, []string{work, dir}); err != nil {
			closeChannels(nil, ends)
			return pythonExit{}, fmt.Errorf("confining the evaluation of %s: %w", ConfigFile, err)
		}
	}
	cmd.Cancel = func() error {
		if parent.Err() == nil {
			dumpStacks(cmd.Process.Pid, stacks)
		}
		return killGroup(cmd.Process.Pid)
	}
	err = start(e.Sandbox, cmd)
	closeChannels(nil, ends)
	if err != nil {
		return pythonExit{}, errors.Join(fmt.Errorf("starting %s to evaluate %s: %w", e.python(), ConfigFile, err), ran())
	}
	for _, c := range chans {
		c.start()
	}
	exit := pythonExit{err: cmd.Wait()}
	exit.timedOut = errors.Is(ctx.Err(), context.DeadlineExceeded)
	ranErr := ran()
	if err := killGroup(cmd.Process.Pid); err != nil {
		return pythonExit{}, fmt.Errorf("killing what evaluating %s left running: %w", ConfigFile, err)
	}
	deadline := time.Now().Add(drainWait)
	for _, c := range chans {
		cut, err := c.finish(deadline)
		if err != nil {
			return pythonExit{}, err
		}
		if cut {
			printed.note("[" + c.name + " cut: a process started by " + ConfigFile + " kept it open]\n")
		}
	}
	// Past a limit is the script's doing, not the worker's: it shows in
	// the output as the reason python stopped.
	var limit limitError
	if errors.As(ranErr, &limit) {
		printed.note("[" + limit.Error() + "]\n")
		ranErr = nil
	}
	exit.printed = printed.String()
	exit.result, exit.resultOver = result.snapshot()
	exit.stacks, _ = stacks.snapshot()
	if ranErr != nil && !exit.timedOut && parent.Err() == nil {
		return pythonExit{}, fmt.Errorf("evaluating %s: %w: %s", ConfigFile, ranErr, strings.TrimSpace(exit.printed))
	}
	return exit, nil
}

// dumpStacks sends python's process group SIGUSR1, on which faulthandler
// writes every thread's stack to stacksFD, and waits until nothing more
// arrives there, for at most stacksWait. The group, not the process: in a
// sandbox the process started is bubblewrap, which ignores the signal, and
// python is another member of its group. It is best effort: a python that
// dies of the signal, or never dumps, is killed all the same.
func dumpStacks(pgid int, stacks *bounded) {
	if err := syscall.Kill(-pgid, syscall.SIGUSR1); err != nil {
		return
	}
	var size int64
	for deadline := time.Now().Add(stacksWait); time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		n := stacks.size()
		if n > 0 && n == size {
			return
		}
		size = n
	}
}

// killGroup kills every process of the group led by pid; a group already
// gone is not an error.
func killGroup(pid int) error {
	if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("killing process group %d: %w", pid, err)
	}
	return nil
}

// capture is an io.Writer that keeps the first half bytes written to it and
// the last half, so its memory is bounded whatever the amount written.
type capture struct {
	half    int
	head    []byte
	tail    []byte
	dropped int64
	notes   string
}

func (c *capture) Write(p []byte) (int, error) {
	n := len(p)
	if room := c.half - len(c.head); room > 0 {
		k := min(room, len(p))
		c.head = append(c.head, p[:k]...)
		p = p[k:]
	}
	c.tail = append(c.tail, p...)
	if extra := len(c.tail) - c.half; extra > c.half {
		c.dropped += int64(extra)
		c.tail = append(c.tail[:0], c.tail[extra:]...)
	}
	return n, nil
}

// note adds a line after what was captured.
func (c *capture) note(line string) { c.notes += line }

// String returns what was kept, valid UTF-8, with a line saying how much was
// left out in the middle.
func (c *capture) String() string {
	tail, dropped := c.tail, c.dropped
	if extra := len(tail) - c.half; extra > 0 {
		tail, dropped = tail[extra:], dropped+int64(extra)
	}
	var b strings.Builder
	b.Write(c.head)
	if dropped > 0 {
		if len(c.head) > 0 && c.head[len(c.head)-1] != '\n' {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "[... %d bytes left out ...]\n", dropped)
	}
	b.Write(tail)
	if c.notes != "" && b.Len() > 0 && !strings.HasSuffix(b.String(), "\n") {
		b.WriteString("\n")
	}
	b.WriteString(c.notes)
	return strings.ToValidUTF8(b.String(), "\uFFFD")
}
