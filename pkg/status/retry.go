package status

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-github/v88/github"
)

// ErrRejected is wrapped by Set's error when GitHub refused the status with
// an answer no retry can change (422 validation, 404 unknown repository or
// commit, 401/403 without a rate limit): the caller should record the
// failure, not requeue the status.
var ErrRejected = errors.New("github rejected the status")

// RetryLaterError means the status was not sent but may be later: GitHub
// asked for a wait longer than the Reporter sits out itself, or the
// Reporter's attempts or time ran out. After is the wait GitHub asked for or
// the next backoff; a queue consumer can hand its job back with
// NakWithDelay(After).
type RetryLaterError struct {
	After time.Duration
	Err   error
}

// Error says how long to wait and why.
func (e *RetryLaterError) Error() string {
	return fmt.Sprintf("retry after %s: %v", e.After, e.Err)
}

// Unwrap returns the last fault GitHub or the network answered.
func (e *RetryLaterError) Unwrap() error { return e.Err }

// secondaryLimitWait is how long GitHub asks clients to wait after a
// secondary rate limit that names no time of its own.
const secondaryLimitWait = time.Minute

// maxRetryAfter caps the waits read from headers: a day is already far
// beyond anything GitHub asks for.
const maxRetryAfter = 24 * time.Hour

// retryPolicy bounds the retries of one status.
type retryPolicy struct {
	maxAttempts    int
	maxElapsed     time.Duration
	maxWait        time.Duration
	firstDelay     time.Duration
	maxDelay       time.Duration
	attemptTimeout time.Duration
}

func defaultPolicy() retryPolicy {
	return retryPolicy{
		maxAttempts:    6,
		maxElapsed:     2 * time.Minute,
		maxWait:        time.Minute,
		firstDelay:     time.Second,
		maxDelay:       30 * time.Second,
		attemptTimeout: 30 * time.Second,
	}
}

// backoff is the jittered wait after the given failed attempt (from 1): the
// delay doubles each attempt up to maxDelay, and a random half of it is
// dropped so that workers hit by the same fault do not retry in step.
func (p retryPolicy) backoff(attempt int) time.Duration {
	d := p.firstDelay
	for i := 1; i < attempt && d < p.maxDelay; i++ {
		d *= 2
	}
	d = min(d, p.maxDelay)
	half := d / 2
	if half <= 0 {
		return d
	}
	return half + rand.N(half+1)
}

// verdict is what one failed attempt calls for.
type verdict struct {
	reject bool
	// wait, when set, is a wait GitHub dictated; otherwise back off.
	wait time.Duration
}

// send tries s until GitHub takes it or the policy's bounds are reached.
func (r *Reporter) send(ctx context.Context, log *slog.Logger, s Status) error {
	p := r.policy
	start := r.now()
	for attempt := 1; ; attempt++ {
		answer, err := r.attempt(ctx, s)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("attempt %d: %w", attempt, ctx.Err())
		}
		v := classify(err, answer, r.now())
		if v.reject {
			return fmt.Errorf("%w: %w", ErrRejected, err)
		}
		wait := p.backoff(attempt)
		if v.wait > 0 {
			if v.wait > p.maxWait {
				return &RetryLaterError{After: v.wait, Err: err}
			}
			// A little jitter spreads the workers GitHub told to come back
			// at the same moment.
			wait = v.wait + rand.N(v.wait/10+1)
		}
		if attempt >= p.maxAttempts {
			return &RetryLaterError{After: wait, Err: fmt.Errorf("all %d attempts failed: %w", attempt, err)}
		}
		if r.now().Sub(start)+wait > p.maxElapsed {
			return &RetryLaterError{After: wait, Err: fmt.Errorf("out of time after %d attempts: %w", attempt, err)}
		}
		log.Warn("status not sent; retrying", "attempt", attempt, "wait", wait, "err", err)
		if err := r.sleep(ctx, wait); err != nil {
			return fmt.Errorf("waiting to retry after attempt %d: %w", attempt, err)
		}
	}
}

// attempt makes one bounded call to GitHub and returns its answer, if one
// came, beside the error.
func (r *Reporter) attempt(ctx context.Context, s Status) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, r.policy.attemptTimeout)
	defer cancel()
	resp, err := r.writer.Write(ctx, s)
	var accepted *github.AcceptedError
	if errors.As(err, &accepted) {
		// 202: GitHub took the request and finishes it on its side.
		return nil, nil
	}
	if resp != nil && resp.Response != nil {
		return resp.Response, err
	}
	return answerIn(err), err
}

// answerIn digs GitHub's answer out of the error types go-github returns
// for one; nil means no answer came (network, timeout).
func answerIn(err error) *http.Response {
	var plain *github.ErrorResponse
	var twoFactor *github.TwoFactorAuthError
	var redirect *github.RedirectionError
	switch {
	case errors.As(err, &plain):
		return plain.Response
	case errors.As(err, &twoFactor):
		return twoFactor.Response
	case errors.As(err, &redirect):
		return redirect.Response
	}
	return nil
}

// classify decides whether a failed attempt is retried, after what, or
// given up; answer is GitHub's answer, nil when none came.
func classify(err error, answer *http.Response, now time.Time) verdict {
	var primary *github.RateLimitError
	if errors.As(err, &primary) {
		return verdict{wait: max(primary.Rate.Reset.Sub(now), time.Second)}
	}
	var secondary *github.AbuseRateLimitError
	if errors.As(err, &secondary) {
		if d := secondary.GetRetryAfter(); d > 0 {
			return verdict{wait: d}
		}
		if d, ok := retryAfter(secondary.Response, now); ok {
			return verdict{wait: d}
		}
		return verdict{wait: secondaryLimitWait}
	}
	if answer == nil {
		// No answer from GitHub at all: network, DNS, timeout, TLS.
		return verdict{}
	}
	code := answer.StatusCode
	if d, ok := retryAfter(answer, now); ok && (code == http.StatusForbidden || code == http.StatusTooManyRequests || code >= 500) {
		return verdict{wait: d}
	}
	switch {
	case code == http.StatusTooManyRequests:
		return verdict{wait: secondaryLimitWait}
	case code >= 500, code == http.StatusRequestTimeout:
		return verdict{}
	default:
		return verdict{reject: true}
	}
}

// retryAfter reads a Retry-After header given in seconds or as an HTTP date.
func retryAfter(resp *http.Response, now time.Time) (time.Duration, bool) {
	if resp == nil {
		return 0, false
	}
	v := strings.TrimSpace(resp.Header.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		// Clamped before multiplying so an absurd header cannot overflow.
		secs = min(max(secs, 1), int64(maxRetryAfter/time.Second))
		return time.Duration(secs) * time.Second, true
	}
	if at, err := http.ParseTime(v); err == nil {
		return min(max(at.Sub(now), time.Second), maxRetryAfter), true
	}
	return 0, false
}
