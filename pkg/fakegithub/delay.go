package fakegithub

import (
	"net/http"
	"strings"
	"time"
)

// maxRequestLog bounds the requests RequestsSince can return: the oldest
// are dropped first, so a long-running demo does not grow without end.
const maxRequestLog = 1 << 16

// Request is one REST request as the server received it.
type Request struct {
	// At is when the request arrived, before any delay.
	At time.Time
	// Method is the request's; Route is its key in Counts.ByRoute, such
	// as "GET /repos/{owner}/{repo}/pulls/{number}".
	Method, Route string
	// Write says the request asks to change something (any method but
	// GET and HEAD).
	Write bool
}

// SetAPIDelay makes the server answer every REST request d late, as
// GitHub's API answers in about 100 ms where the stand-in answers at once:
// a benchmark that counts on GitHub's speed shows it. Writes are delayed
// by d too unless SetWriteDelay says otherwise. Git smart-HTTP is not
// delayed. A request whose client gives up is dropped during the wait.
func (t *Traffic) SetAPIDelay(d time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.apiDelay = max(d, 0)
}

// SetWriteDelay delays writes (see Request.Write) by d instead of the API
// delay; a negative d makes writes follow SetAPIDelay again.
func (t *Traffic) SetWriteDelay(d time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.writeDelay, t.writeDelaySet = max(d, 0), d >= 0
}

// RequestsSince returns the REST requests that arrived at or after since,
// oldest first.
func (t *Traffic) RequestsSince(since time.Time) []Request {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []Request
	for _, r := range t.requests {
		if !r.At.Before(since) {
			out = append(out, r)
		}
	}
	return out
}

// received counts and logs r, a REST request for route, and returns how
// late it is to be answered.
func (t *Traffic) received(r *http.Request, route string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	write := r.Method != http.MethodGet && r.Method != http.MethodHead
	t.counts.Total++
	t.counts.ByRoute[route]++
	if write && strings.Contains(route, " /repos/") {
		t.counts.Writes++
	}
	if len(t.requests) >= maxRequestLog {
		t.requests = append(t.requests[:0], t.requests[len(t.requests)/2:]...)
	}
	t.requests = append(t.requests, Request{At: time.Now(), Method: r.Method, Route: route, Write: write})
	if write && t.writeDelaySet {
		return t.writeDelay
	}
	return t.apiDelay
}
