package pipeline

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/yourci/yourci/pkg/pause"
)

// NextRetry decides, as plain data, whether a test is tried again after
// its attempt number attempt (1-based) ended with o, and how long to wait
// first: after the k-th attempt, k ≤ t.Retries, it waits k × RetryIncrement.
// Nothing sleeps here: the caller, or the queue, carries the wait.
//
// Failed and TimedOut attempts are retried: flaky network failures often
// show up as hangs. Passed and Canceled never are. Errored never is either:
// it covers a test that cannot start, which another try on the same
// checkout will not fix, and a log that cannot be written, which Run
// reports with an ErrLog error; the worker ends such an attempt as an error
// status rather than spend the test's retries on a broken box.
func NextRetry(t Test, attempt int, o Outcome) (wait time.Duration, retry bool) {
	if o != Failed && o != TimedOut {
		return 0, false
	}
	if attempt < 1 || attempt > t.Retries {
		return 0, false
	}
	return time.Duration(attempt) * max(t.RetryIncrement, 0), true
}

// RunWithRetries runs attempts of a.Test one after another in this process,
// as local mode does, from attempt a.Number (1 when zero), each appended to
// the same log under its own header, waiting between them as NextRetry says
// with sleep (nil means a timer honouring ctx). It returns the last
// attempt's result, every attempt's result in order, and the error of the
// first attempt whose log failed, where it stops.
//
// When sleep fails (ctx ended during a wait) it stops with a Canceled
// result, which is not among the attempts, and notes it in the log.
func RunWithRetries(ctx context.Context, r *Runner, a Attempt, sleep func(context.Context, time.Duration) error) (Result, []Result, error) {
	if sleep == nil {
		sleep = pause.For
	}
	if a.Number < 1 {
		a.Number = 1
	}
	var results []Result
	for ; ; a.Number++ {
		res, err := r.Run(ctx, a)
		results = append(results, res)
		if err != nil {
			return res, results, err
		}
		wait, retry := NextRetry(a.Test, a.Number, res.Outcome)
		if !retry {
			return res, results, nil
		}
		if err := sleep(ctx, wait); err != nil {
			canceled := Result{Outcome: Canceled, ExitCode: -1, Reason: reason(fmt.Sprintf("canceled before attempt %d/%d", a.Number+1, attempts(a.Test)))}
			if err := appendNote(a.LogPath, canceled.Reason); err != nil {
				return canceled, results, fmt.Errorf("%w: %w", ErrLog, err)
			}
			return canceled, results, nil
		}
	}
}

// appendNote appends one runner line to the log at path.
func appendNote(path, note string) error {
	f, _, err := openLog(path)
	if err != nil {
		return err
	}
	_, err = io.WriteString(f, LogPrefix+note+"\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
