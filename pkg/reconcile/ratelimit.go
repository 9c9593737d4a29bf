package reconcile

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/google/go-github/v88/github"
)

// RateLimitedError is returned when GitHub's rate limits stop a sweep: a
// primary limit spent (403 or 429 with X-RateLimit-Remaining: 0, or the
// remaining requests down to the configured reserve), or a secondary limit
// (403 or 429 with Retry-After). The sweep stops at once rather than
// retrying, and the next cron run after Until picks up where it stopped.
type RateLimitedError struct {
	// Repo is the repository being swept when the limit was met, or empty
	// while listing repositories.
	Repo string
	// Remaining and Limit are the primary limit's counters as last seen;
	// Limit is 0 when unknown.
	Remaining, Limit int
	// Until is when GitHub allows requests again: the primary limit's
	// reset, or now plus Retry-After.
	Until time.Time
	// Secondary is true for a secondary ("abuse") limit.
	Secondary bool
	// Reserve is true when the sweep stopped itself to leave Remaining
	// requests to the workers' statuses.
	Reserve bool
}

func (e *RateLimitedError) Error() string {
	what := "GitHub's rate limit"
	switch {
	case e.Secondary:
		what = "GitHub's secondary rate limit"
	case e.Reserve:
		what = fmt.Sprintf("the reserve of GitHub requests (%d left)", e.Remaining)
	}
	where := ""
	if e.Repo != "" {
		where = " at " + e.Repo
	}
	until := "an unknown time"
	if !e.Until.IsZero() {
		until = e.Until.UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("stopped%s by %s until %s", where, what, until)
}

// rateLimited recognises a rate-limit answer in err, whichever layer
// reported it: this package's transport, go-github's primary or secondary
// limit errors (also those it returns without calling GitHub, having seen
// the limit spent), or a bare 429.
func rateLimited(err error, now time.Time) (*RateLimitedError, bool) {
	var own *RateLimitedError
	if errors.As(err, &own) {
		cp := *own
		return &cp, true
	}
	var primary *github.RateLimitError
	if errors.As(err, &primary) {
		return &RateLimitedError{Remaining: primary.Rate.Remaining, Limit: primary.Rate.Limit,
			Until: primary.Rate.Reset.Time}, true
	}
	var secondary *github.AbuseRateLimitError
	if errors.As(err, &secondary) {
		e := &RateLimitedError{Secondary: true, Limit: 0}
		if d := secondary.GetRetryAfter(); d > 0 {
			e.Until = now.Add(d)
		} else if secondary.Response != nil {
			e.Until = retryAfter(secondary.Response.Header, now)
		}
		return e, true
	}
	var resp *github.ErrorResponse
	if errors.As(err, &resp) && resp.Response != nil && resp.Response.StatusCode == http.StatusTooManyRequests {
		return &RateLimitedError{Secondary: true, Until: retryAfter(resp.Response.Header, now)}, true
	}
	return nil, false
}

// retryAfter reads a Retry-After header given in seconds or as a date;
// zero when absent or unreadable.
func retryAfter(h http.Header, now time.Time) time.Time {
	v := h.Get("Retry-After")
	if v == "" {
		return time.Time{}
	}
	if secs, err := strconv.Atoi(v); err == nil && secs >= 0 {
		return now.Add(time.Duration(secs) * time.Second)
	}
	if t, err := http.ParseTime(v); err == nil {
		return t
	}
	return time.Time{}
}

// rateOf reads GitHub's X-RateLimit-* headers; ok is false without them.
func rateOf(h http.Header) (limit, remaining int, reset time.Time, ok bool) {
	rem, err := strconv.Atoi(h.Get("X-RateLimit-Remaining"))
	if err != nil {
		return 0, 0, time.Time{}, false
	}
	limit, err = strconv.Atoi(h.Get("X-RateLimit-Limit"))
	if err != nil {
		limit = 0
	}
	if secs, err := strconv.ParseInt(h.Get("X-RateLimit-Reset"), 10, 64); err == nil {
		reset = time.Unix(secs, 0)
	}
	return limit, rem, reset, true
}
