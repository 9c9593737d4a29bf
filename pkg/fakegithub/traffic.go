package fakegithub

import (
	"sync"
	"time"
)

// Traffic is what the stand-in measures and imposes on the requests it
// receives, apart from GitHub's data: the counts (Requests), the request
// log (RequestsSince), the delay before answers (SetAPIDelay) and the
// injected failures (FailNext). Tests hold GitHub's conditions here; the
// Server embeds it. It has its own lock, so a test reading the counts
// never waits for GitHub's state, and all methods are safe for
// concurrent use.
type Traffic struct {
	mu       sync.Mutex
	counts   Counts
	failures []*failure
	// requests logs every REST request, and apiDelay and writeDelay
	// hold answers back (delay.go).
	requests      []Request
	apiDelay      time.Duration
	writeDelay    time.Duration
	writeDelaySet bool
}

func newTraffic() *Traffic {
	return &Traffic{counts: Counts{ByRoute: map[string]int{}}}
}

// gitRequest counts one git smart-HTTP request.
func (t *Traffic) gitRequest() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.counts.Git++
}

// answered counts a REST answer: a 304 when notModified, one charged to
// a rate limit when charged.
func (t *Traffic) answered(notModified, charged bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if notModified {
		t.counts.NotModified++
	}
	if charged {
		t.counts.Counted++
	}
}
