package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"time"
	"unicode/utf8"
)

// Defaults a zero Runner uses.
const (
	DefaultLogLimit  int64 = 64 << 20
	DefaultTimeout         = time.Hour
	DefaultKillGrace       = 5 * time.Second
)

// maxReasonLen bounds Result.Reason so that a status description built from
// it stays within GitHub's 140 characters.
const maxReasonLen = 100

// ErrLog is wrapped by every error Run returns: the attempt's log could not
// be opened, written or closed (a full disk, a missing permission). The test
// itself is then not to blame, and no retry of it is spent: the Result is
// Errored with the reason, which the worker reports as the test's error
// status (nobody could read what a test without a log did).
var ErrLog = errors.New("writing test log")

// Outcome is what an attempt of a test came to. The zero Outcome is none of
// them: a Result that was never filled in reads as "unknown", not "passed".
type Outcome int

// The outcomes of an attempt.
const (
	// Passed: bash exited with status 0.
	Passed Outcome = iota + 1
	// Failed: bash exited with another status or was killed by a signal
	// the runner did not send.
	Failed
	// TimedOut: the attempt outlived its timeout and its process group was
	// killed.
	TimedOut
	// Canceled: the caller's context ended (a newer commit, a shutdown) and
	// the process group was killed.
	Canceled
	// Errored: the test could not be run or its log could not be written;
	// this says nothing about the code under test.
	Errored
)

// String returns the outcome as a lower-case word for logs and statuses.
func (o Outcome) String() string {
	switch o {
	case Passed:
		return "passed"
	case Failed:
		return "failed"
	case TimedOut:
		return "timed out"
	case Canceled:
		return "canceled"
	case Errored:
		return "errored"
	}
	return "unknown"
}

// Result is what one attempt of a test did.
type Result struct {
	Outcome Outcome
	// ExitCode is bash's exit status, 128+n when signal n killed it, and -1
	// when bash never ran.
	ExitCode int
	// Duration is the attempt's wall time, from before its header is
	// written to after its process group is gone.
	Duration time.Duration
	// Reason says why, in at most 100 bytes: "exit status 3", "no result
	// within 10m0s", "working directory is missing".
	Reason string
}

// String describes the result in one line fit for a commit status, such as
// "failed (exit status 1) after 2.5s".
func (r Result) String() string {
	return fmt.Sprintf("%s (%s) after %s", r.Outcome, r.Reason, r.Duration.Round(time.Millisecond))
}

// Attempt is one run of a test.
type Attempt struct {
	Test Test
	// Number counts attempts from 1.
	Number int
	// Dir is the working directory: the test's own checkout.
	Dir string
	// LogPath is the test's out.txt. It is created with its parents if
	// missing and always appended to, so attempts follow one another.
	LogPath string
	// Facts are YCI_* variables for the test, such as YCI_BUILD, YCI_PULL
	// and YCI_SHA. The runner adds YCI_TEST and YCI_ATTEMPT.
	Facts map[string]string
}

// Runner runs attempts of tests with bash, each in its own process group,
// streaming their output to their logs. A Runner's zero value is ready to
// use; Run may be called concurrently. Changing fields while attempts run is
// not allowed.
type Runner struct {
	// BaseEnv is the environment tests start from, before TestEnv withholds
	// credentials; nil means os.Environ().
	BaseEnv []string
	// LogLimit caps a log file's size in bytes: output past it is read and
	// dropped, and the test keeps running. The truncation line, footers and
	// later attempts' headers are still written, so a log may pass the cap
	// by a few hundred bytes per attempt. Zero means DefaultLogLimit.
	LogLimit int64
	// DefaultTimeout bounds an attempt whose test sets no timeout; zero
	// means DefaultTimeout.
	DefaultTimeout time.Duration
	// Secrets are masked in logs (see MaskingWriter), and so are the values
	// of BaseEnv's variables named like credentials (…TOKEN, …SECRET,
	// …PASSWORD and the like), in case a test finds them anyway.
	Secrets []string
	// SecretsFrom, when set, is asked at the start of every attempt for
	// more secrets to mask: credentials issued while the worker runs, such
	// as GitHub App installation tokens.
	SecretsFrom func() []string
	// Sandbox, when set, confines every attempt: its working directory is
	// the only place of the host it may write. Nil runs attempts as the
	// worker's user with everything the worker can reach.
	Sandbox Sandbox
	// KillGrace is how long a process group has between SIGTERM and
	// SIGKILL, and how long output is still read from processes that left
	// the group; zero means DefaultKillGrace.
	KillGrace time.Duration

	// now is the clock for headers, footers and durations; nil means
	// time.Now. Tests set it to make logs deterministic.
	now func() time.Time
}

// Run runs one attempt of a test to its end and appends its header, output
// and footer to a.LogPath, starting on a line of its own even when an
// earlier attempt's log ended abruptly. A Number below 1 counts as 1. It
// returns when the attempt's process group is gone and the log is closed.
//
// The Result says what the test did. A non-nil error, always wrapping
// ErrLog, means the log could not be opened, written or closed; the Result
// is then Errored with the reason too, and a test that was running is
// killed, since nobody could read what it does. Every other problem,
// including a test that cannot start, is reported in the Result alone.
func (r *Runner) Run(ctx context.Context, a Attempt) (Result, error) {
	a.Number = max(a.Number, 1)
	f, end, err := openLog(a.LogPath)
	if err != nil {
		return erroredResult(err), fmt.Errorf("%w: %w", ErrLog, err)
	}
	res, err := r.attempt(ctx, a, f, end)
	if cerr := f.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("%w: %w", ErrLog, cerr)
		res.Outcome, res.Reason = Errored, reason(cerr.Error())
	}
	return res, err
}

// attempt runs a with its log written to w, which ends as end says.
func (r *Runner) attempt(ctx context.Context, a Attempt, w io.Writer, end logEnd) (Result, error) {
	base := r.BaseEnv
	if base == nil {
		base = os.Environ()
	}
	secrets := append(credentialValues(base), r.Secrets...)
	if r.SecretsFrom != nil {
		secrets = append(secrets, r.SecretsFrom()...)
	}
	now := r.clock()
	start := now()
	log := newLogWriter(w, end.last)
	notes := NewMaskingWriter(log, secrets)
	header := renderHeader(a, start, r.TimeoutOf(a.Test))
	if end.last != '\n' {
		header = "\n" + header
	}
	if err := writeNotes(notes, header); err != nil {
		return erroredResult(err), fmt.Errorf("%w: %w", ErrLog, err)
	}
	// Control sequences are neutralised before masking, so the masker
	// decides on the bytes the log keeps.
	output := NewTermWriter(NewMaskingWriter(&capWriter{log: log, limit: r.logLimit(), left: max(0, r.logLimit()-end.size-log.n)}, secrets))
	res, extra := r.execute(ctx, a, base, output, log.failed)
	res.Duration = now().Sub(start)
	if log.err != nil {
		res.Outcome, res.Reason = Errored, reason(log.err.Error())
		return res, fmt.Errorf("%w: %w", ErrLog, log.err)
	}
	wait, retry := NextRetry(a.Test, a.Number, res.Outcome)
	footer := renderFooter(a, res, extra, retry, wait)
	if log.last != '\n' {
		footer = "\n" + footer
	}
	if err := writeNotes(notes, footer); err != nil {
		res.Outcome, res.Reason = Errored, reason(err.Error())
		return res, fmt.Errorf("%w: %w", ErrLog, err)
	}
	return res, nil
}

// execute starts bash for a with the environment made from base and waits
// for its process group to be gone and its output flushed to output;
// failed is closed when the log cannot be written. It returns the runner's
// notes about the end of the process group.
func (r *Runner) execute(ctx context.Context, a Attempt, base []string, output *TermWriter, failed <-chan struct{}) (Result, []string) {
	if fi, err := os.Stat(a.Dir); err != nil || !fi.IsDir() {
		return Result{Outcome: Errored, ExitCode: -1, Reason: "working directory is missing"}, nil
	}
	if ctx.Err() != nil {
		return Result{Outcome: Canceled, ExitCode: -1, Reason: reason(cancelReason(ctx))}, nil
	}
	facts := maps.Clone(a.Facts)
	if facts == nil {
		facts = make(map[string]string, 2)
	}
	facts["YCI_TEST"] = a.Test.Name
	facts["YCI_ATTEMPT"] = strconv.Itoa(a.Number)
	p := process{
		command: a.Test.Command,
		sandbox: r.Sandbox,
		dir:     a.Dir,
		env:     TestEnv(base, facts, a.Test.Env),
		timeout: r.TimeoutOf(a.Test),
		grace:   r.grace(),
		output:  output,
		failed:  failed,
	}
	res, notes := p.run(ctx)
	if err := output.Flush(); err != nil {
		// The same failure is in the log writer, which the attempt reports.
		return erroredResult(err), notes
	}
	return res, notes
}

func (r *Runner) logLimit() int64 {
	if r.LogLimit > 0 {
		return r.LogLimit
	}
	return DefaultLogLimit
}

// TimeoutOf is the time limit of one attempt of t: its own, else the
// runner's default.
func (r *Runner) TimeoutOf(t Test) time.Duration {
	switch {
	case t.Timeout > 0:
		return t.Timeout
	case r.DefaultTimeout > 0:
		return r.DefaultTimeout
	}
	return DefaultTimeout
}

func (r *Runner) grace() time.Duration {
	if r.KillGrace > 0 {
		return r.KillGrace
	}
	return DefaultKillGrace
}

func (r *Runner) clock() func() time.Time {
	if r.now != nil {
		return r.now
	}
	return time.Now
}

// logEnd describes a log as an attempt finds it.
type logEnd struct {
	size int64
	last byte // '\n' for an empty log
}

// openLog opens path for appending, creating it and its parents, and says
// how it ends.
func openLog(path string) (*os.File, logEnd, error) {
	end := logEnd{last: '\n'}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, end, fmt.Errorf("creating log directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, end, err
	}
	fi, err := f.Stat()
	if err == nil && fi.Mode().IsRegular() && fi.Size() > 0 {
		end.size = fi.Size()
		last := []byte{0}
		_, err = f.ReadAt(last, end.size-1)
		end.last = last[0]
	}
	if err != nil {
		return nil, end, errors.Join(fmt.Errorf("reading log: %w", err), f.Close())
	}
	return f, end, nil
}

func erroredResult(err error) Result {
	return Result{Outcome: Errored, ExitCode: -1, Reason: reason(err.Error())}
}

// reason bounds s to maxReasonLen bytes without splitting a character.
func reason(s string) string {
	if len(s) <= maxReasonLen {
		return s
	}
	cut := maxReasonLen - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
