package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// errTimedOut is the cause of an attempt's context when its timeout ends it.
var errTimedOut = errors.New("attempt timed out")

// stopCause is why the runner ended a process group itself.
type stopCause int

const (
	notStopped stopCause = iota
	stoppedTimeout
	stoppedCancel
	stoppedLog
)

// process is one bash running a test's command in its own session and
// process group, its stdout and stderr one pipe, in order, read into output.
type process struct {
	command string
	sandbox Sandbox // nil runs bash unconfined
	dir     string
	env     []string
	timeout time.Duration
	grace   time.Duration
	output  io.Writer
	// failed is closed when the log cannot be written any more.
	failed <-chan struct{}
}

// run runs the process until its group is gone and its output read, and
// returns the result with any notes for the log.
func (p *process) run(ctx context.Context) (Result, []string) {
	r, w, err := os.Pipe()
	if err != nil {
		return erroredResult(fmt.Errorf("creating output pipe: %w", err)), nil
	}
	defer r.Close()
	cmd := exec.Command("bash", "-c", p.command)
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = p.dir, p.env, w, w
	// A session of its own is a process group of its own, and leaves the
	// test no controlling terminal to push input into (TIOCSTI).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	ran := func() error { return nil }
	if p.sandbox != nil {
		if ran, err = p.sandbox.Confine(cmd, []string{p.dir}, nil); err != nil {
			w.Close()
			return erroredResult(fmt.Errorf("confining the test: %w", err)), nil
		}
	}
	err = start(p.sandbox, cmd)
	// Only bash and its children may hold the write end, or reading would
	// never see the end of the output.
	w.Close()
	if err != nil {
		return erroredResult(errors.Join(fmt.Errorf("starting %s: %w", cmd.Args[0], err), ran())), nil
	}
	drained := make(chan error, 1)
	go func() { drained <- drain(r, p.output) }()

	ctx, cancel := context.WithTimeoutCause(ctx, p.timeout, errTimedOut)
	defer cancel()
	s := p.supervise(ctx, cmd)
	var notes []string
	if s.signalErr != nil {
		notes = append(notes, fmt.Sprintf("could not signal the process group: %v", s.signalErr))
	}
	if s.escalated {
		notes = append(notes, fmt.Sprintf("the process group outlived SIGTERM by %s; sent SIGKILL", p.grace))
	}
	if p.finishOutput(r, drained) {
		notes = append(notes, "a process outside the test's process group still holds its output; stopped reading")
	}
	ranErr := ran()
	// A command past a limit ends for that reason, unless it was canceled.
	var limit limitError
	if errors.As(ranErr, &limit) && s.cause != stoppedCancel {
		res := p.result(ctx, s, cmd.ProcessState)
		res.Outcome, res.Reason = Failed, reason(limit.Error())
		if limit.Errored() {
			res.Outcome = Errored
		}
		return res, append(notes, limit.Error())
	}
	// A sandbox that could not be set up is the worker's failure, not the
	// test's, unless the runner stopped it before the test could start.
	if err := ranErr; err != nil && s.cause == notStopped {
		return Result{Outcome: Errored, ExitCode: -1, Reason: reason(err.Error())}, notes
	}
	return p.result(ctx, s, cmd.ProcessState), notes
}

// supervision is how a process group came to its end.
type supervision struct {
	cause     stopCause
	escalated bool  // SIGKILL followed SIGTERM
	signalErr error // first failure to signal the group, other than "gone"
	waitErr   error
}

// supervise waits for bash to exit, ending its process group with SIGTERM
// and, after the grace period, SIGKILL when ctx ends or the log fails. Once
// bash has exited, whatever is left of its group is killed before bash is
// reaped, so the group id cannot have been reused by then.
func (p *process) supervise(ctx context.Context, cmd *exec.Cmd) supervision {
	pgid := cmd.Process.Pid
	exited := make(chan struct{})
	go func() {
		waitExited(pgid)
		close(exited)
	}()
	var (
		s        supervision
		escalate *time.Timer
		expired  <-chan time.Time
	)
	signal := func(sig syscall.Signal) {
		if err := signalGroup(pgid, sig); err != nil && s.signalErr == nil {
			s.signalErr = err
		}
	}
	stop := func(c stopCause) {
		if s.cause != notStopped {
			return
		}
		s.cause = c
		signal(syscall.SIGTERM)
		signal(syscall.SIGCONT) // a stopped process acts on SIGTERM only once continued
		escalate = time.NewTimer(p.grace)
		expired = escalate.C
	}
	done, failed := ctx.Done(), p.failed
	for {
		select {
		case <-exited:
			if escalate != nil {
				escalate.Stop()
			}
			signal(syscall.SIGKILL)
			s.waitErr = cmd.Wait()
			return s
		case <-done:
			done = nil
			if errors.Is(context.Cause(ctx), errTimedOut) {
				stop(stoppedTimeout)
			} else {
				stop(stoppedCancel)
			}
		case <-failed:
			failed = nil
			stop(stoppedLog)
		case <-expired:
			expired, s.escalated = nil, true
			signal(syscall.SIGKILL)
		}
	}
}

// finishOutput waits for the output to be read to its end, for at most the
// grace period since the group is dead already, and reports whether it gave
// up on a writer that escaped the group.
func (p *process) finishOutput(r *os.File, drained <-chan error) bool {
	timer := time.NewTimer(p.grace)
	defer timer.Stop()
	select {
	case <-drained:
		return false
	case <-timer.C:
	}
	if err := r.SetReadDeadline(time.Now()); err != nil {
		// Not pollable, which os.Pipe always is on Linux: closing is the
		// only other way to end the read.
		r.Close()
	}
	<-drained
	return true
}

// result turns how the process ended into a Result.
func (p *process) result(ctx context.Context, s supervision, state *os.ProcessState) Result {
	code := -1
	if state != nil {
		code = exitCode(state)
	}
	switch s.cause {
	case stoppedTimeout:
		return Result{Outcome: TimedOut, ExitCode: code, Reason: fmt.Sprintf("no result within %s", p.timeout)}
	case stoppedCancel:
		return Result{Outcome: Canceled, ExitCode: code, Reason: reason(cancelReason(ctx))}
	case stoppedLog:
		return Result{Outcome: Errored, ExitCode: code, Reason: "the log could not be written"}
	}
	if state == nil {
		return erroredResult(fmt.Errorf("waiting for bash: %w", s.waitErr))
	}
	ws, ok := state.Sys().(syscall.WaitStatus)
	switch {
	case state.Success():
		return Result{Outcome: Passed, ExitCode: 0, Reason: "exit status 0"}
	case ok && ws.Signaled():
		return Result{Outcome: Failed, ExitCode: code, Reason: "killed by " + unix.SignalName(ws.Signal())}
	}
	return Result{Outcome: Failed, ExitCode: code, Reason: fmt.Sprintf("exit status %d", code)}
}

// exitCode is the process's exit status, or 128+n when signal n killed it,
// as a shell reports it.
func exitCode(state *os.ProcessState) int {
	if ws, ok := state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return state.ExitCode()
}

// cancelReason says why the caller's context ended, using its cause when
// the caller gave one ("superseded by a newer commit").
func cancelReason(ctx context.Context) string {
	cause := context.Cause(ctx)
	switch {
	case cause == nil || cause == context.Canceled:
		return "canceled"
	case cause == context.DeadlineExceeded:
		return "canceled: the job's deadline passed"
	}
	return "canceled: " + cause.Error()
}

// drain copies the process's output to w until every writer closed the
// pipe or reading fails. After w fails it keeps reading and drops what it
// reads, so the test never blocks on a full pipe while it is being killed;
// the failure itself is recorded by the log writer.
func drain(r io.Reader, w io.Writer) error {
	buf := make([]byte, 64<<10)
	var werr error
	for {
		n, err := r.Read(buf)
		if n > 0 && werr == nil {
			_, werr = w.Write(buf[:n])
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// waitExited blocks until the process pid has exited, without reaping it.
func waitExited(pid int) {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			return
		}
	}
}

// signalGroup sends sig to every process of the group. A group already
// gone is not an error.
func signalGroup(pgid int, sig syscall.Signal) error {
	if err := syscall.Kill(-pgid, sig); err != nil && err != syscall.ESRCH {
		return fmt.Errorf("sending %s to group %d: %w", unix.SignalName(sig), pgid, err)
	}
	return nil
}
