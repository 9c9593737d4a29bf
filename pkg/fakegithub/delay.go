package fakegithub

import (
	"net/http"
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
func (s *Server) SetAPIDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apiDelay = max(d, 0)
}

// SetWriteDelay delays writes (see Request.Write) by d instead of the API
// delay; a negative d makes writes follow SetAPIDelay again.
func (s *Server) SetWriteDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writeDelay, s.writeDelaySet = max(d, 0), d >= 0
}

// RequestsSince returns the REST requests that arrived at or after since,
// oldest first.
func (s *Server) RequestsSince(since time.Time) []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Request
	for _, r := range s.requests {
		if !r.At.Before(since) {
			out = append(out, r)
		}
	}
	return out
}

// received logs r and returns how late it is to be answered; s.mu is held.
func (s *Server) receivedLocked(r *http.Request, route string) time.Duration {
	write := r.Method != http.MethodGet && r.Method != http.MethodHead
	if len(s.requests) >= maxRequestLog {
		s.requests = append(s.requests[:0], s.requests[len(s.requests)/2:]...)
	}
	s.requests = append(s.requests, Request{At: time.Now(), Method: r.Method, Route: route, Write: write})
	if write && s.writeDelaySet {
		return s.writeDelay
	}
	return s.apiDelay
}
