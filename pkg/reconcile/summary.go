package reconcile

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// ErrIncomplete is wrapped by the error of a sweep that could not sweep
// every repository (GitHub refused, NATS failed); the summary lists them.
var ErrIncomplete = errors.New("some repositories were not swept")

// Summary is what one sweep did, printed at its end.
type Summary struct {
	// ID names the sweep in logs, in the lock, and in other sweeps'
	// messages.
	ID                string
	Started, Finished time.Time
	// Repositories is how many were swept to the end.
	Repositories int
	// Pulls is the open pull requests seen.
	Pulls int
	// Queued is the head commits published for their first build;
	// AlreadyQueued those left alone because their event still waits in
	// the queue.
	Queued, AlreadyQueued int
	// Rebuilt is the head commits published again (Rebuild) because their
	// statuses were left pending with no job; Errored those whose pending
	// statuses were set to error instead, after too many rebuilds.
	Rebuilt, Errored int
	// Reshown is the parts of projected builds (tests and summaries) that
	// GitHub showed otherwise than their records, marked for the
	// projector to write again.
	Reshown int
	// Requests is what this sweep spent on GitHub and the rate limit it
	// left.
	Requests RequestStats
	// Failed lists the repositories that could not be swept.
	Failed []RepoError
	// Stopped, when set, is the rate limit the sweep stopped at; NotReached
	// lists the repositories it then did not sweep, as does an
	// interrupted sweep.
	Stopped    *RateLimitedError
	NotReached []string
	// Interrupted is set when the sweep was cancelled (SIGTERM) or lost its
	// lock before the end.
	Interrupted bool
	// LockTakenOverFrom names a crashed sweep whose expired lock this one
	// took; LockWaitedFor a live one it waited for.
	LockTakenOverFrom, LockWaitedFor string
}

// RepoError is a repository that could not be swept, and why.
type RepoError struct {
	Repo string
	Err  error
}

// Err is nil when every repository was swept, and otherwise joins the
// rate limit that stopped the sweep (a *RateLimitedError) and an error
// wrapping ErrIncomplete that names the failed repositories.
func (s Summary) Err() error {
	var errs []error
	if s.Stopped != nil {
		errs = append(errs, s.Stopped)
	}
	if len(s.Failed) > 0 || len(s.NotReached) > 0 {
		names := make([]string, 0, len(s.Failed))
		for _, f := range s.Failed {
			names = append(names, f.Repo)
		}
		errs = append(errs, fmt.Errorf("%w: %d failed (%s), %d not reached",
			ErrIncomplete, len(s.Failed), strings.Join(names, " "), len(s.NotReached)))
	}
	return errors.Join(errs...)
}

// WriteText prints the summary for people, one fact per line.
func (s Summary) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "reconcile sweep %s: %d repositories swept in %s\n",
		s.ID, s.Repositories, s.Finished.Sub(s.Started).Round(time.Millisecond))
	fmt.Fprintf(&b, "  pulls seen:      %d open\n", s.Pulls)
	fmt.Fprintf(&b, "  builds queued:   %d (%d already waiting in the queue)\n", s.Queued, s.AlreadyQueued)
	fmt.Fprintf(&b, "  repairs:         %d rebuilt, %d set to error, %d shown again\n", s.Rebuilt, s.Errored, s.Reshown)
	r := s.Requests
	fmt.Fprintf(&b, "  GitHub requests: %d sent, %d counted against the rate limit, %d answered 304\n",
		r.Total, r.Counted(), r.NotModified)
	if r.RateKnown {
		fmt.Fprintf(&b, "  rate limit:      %d of %d left, resets %s\n",
			r.RateRemaining, r.RateLimit, r.RateReset.UTC().Format(time.RFC3339))
	} else {
		fmt.Fprintf(&b, "  rate limit:      not reported\n")
	}
	if s.LockTakenOverFrom != "" {
		fmt.Fprintf(&b, "  lock:            took over the expired lock of %s\n", s.LockTakenOverFrom)
	}
	if s.LockWaitedFor != "" {
		fmt.Fprintf(&b, "  lock:            waited for %s\n", s.LockWaitedFor)
	}
	for _, f := range s.Failed {
		fmt.Fprintf(&b, "  FAILED:          %s: %v\n", f.Repo, f.Err)
	}
	if s.Stopped != nil {
		fmt.Fprintf(&b, "  STOPPED:         %v\n", s.Stopped)
	}
	if s.Interrupted {
		fmt.Fprintf(&b, "  INTERRUPTED\n")
	}
	if len(s.NotReached) > 0 {
		fmt.Fprintf(&b, "  not reached:     %s\n", strings.Join(s.NotReached, " "))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// LogAttrs are the summary's numbers for one structured log line, on a
// logger that already carries the sweep's ID (key "sweep").
func (s Summary) LogAttrs() []any {
	attrs := []any{
		"repositories", s.Repositories, "pulls", s.Pulls,
		"queued", s.Queued, "already_queued", s.AlreadyQueued,
		"rebuilt", s.Rebuilt, "errored", s.Errored, "reshown", s.Reshown,
		"requests", s.Requests.Total, "requests_counted", s.Requests.Counted(),
		"failed", len(s.Failed), "not_reached", len(s.NotReached),
		"duration", s.Finished.Sub(s.Started),
	}
	if s.Requests.RateKnown {
		attrs = append(attrs, "rate_remaining", s.Requests.RateRemaining, "rate_reset", s.Requests.RateReset)
	}
	if s.Stopped != nil {
		attrs = append(attrs, "stopped_at", s.Stopped.Repo, "stopped_until", s.Stopped.Until)
	}
	return attrs
}
