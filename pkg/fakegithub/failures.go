package fakegithub

import (
	"net/http"
	"strings"
)

// failure answers the next n requests matching method and path prefix.
type failure struct {
	method string
	prefix string
	left   int
	status int
	header http.Header
}

// FailNext makes the server answer the next n requests whose method is
// method ("" for any) and whose path starts with pathPrefix (as seen at the
// API root, such as "/repos/acme/widgets/statuses/", or a git path such as
// "/acme/widgets.git/") with status and the given extra headers, instead of
// serving them. Bodies are GitHub's: a 403 or 429 carrying
// "X-RateLimit-Remaining: 0" is a primary rate limit, any other 403 or 429
// a secondary rate limit ("You have exceeded a secondary rate limit", add
// Retry-After yourself); 5xx answers are GitHub's "Server Error".
//
// Rules are consulted in the order they were added; a request consumes one
// answer of the first matching rule. Injected answers are not charged to a
// rate limit and count in Requests().Injected.
func (t *Traffic) FailNext(method, pathPrefix string, n int, status int, header http.Header) {
	if n <= 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.failures = append(t.failures, &failure{
		method: strings.ToUpper(method),
		prefix: pathPrefix,
		left:   n,
		status: status,
		header: header.Clone(),
	})
}

// takeFailure consumes one injected answer for the request, or returns nil.
func (t *Traffic) takeFailure(method, path string) *failure {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, f := range t.failures {
		if (f.method != "" && f.method != method) || !strings.HasPrefix(path, f.prefix) {
			continue
		}
		f.left--
		if f.left == 0 {
			t.failures = append(t.failures[:i:i], t.failures[i+1:]...)
		}
		t.counts.Injected++
		return f
	}
	return nil
}

// reply is the REST answer for the failure.
func (f *failure) reply() reply {
	var rep reply
	switch {
	case (f.status == http.StatusForbidden || f.status == http.StatusTooManyRequests) &&
		f.header.Get("X-RateLimit-Remaining") == "0":
		rep = fail(f.status, "API rate limit exceeded.", docPrimary)
	case f.status == http.StatusForbidden || f.status == http.StatusTooManyRequests:
		rep = fail(f.status, "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. "+
			"If you reach out to GitHub Support for help, please include the request ID "+randomToken(12)+".", docAbuse)
	case f.status >= 500:
		rep = fail(f.status, "Server Error", docRoot)
	default:
		rep = fail(f.status, http.StatusText(f.status), docRoot)
	}
	rep.header = f.header
	return rep
}

// ClearFailures drops every injected answer not yet given (FailNext), as
// GitHub coming back after an outage: requests are served again.
func (t *Traffic) ClearFailures() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.failures = nil
}
