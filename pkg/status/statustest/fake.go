// Package statustest provides doubles for code that sets commit statuses:
// Fake, an in-memory StatusCreator that records every call and fails on
// demand; Answer, which builds the errors go-github returns for a given
// HTTP answer; and Clock, a clock whose sleeps return at once. Use them for
// logic tests; the Reporter's own tests speak HTTP to an httptest server.
package statustest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/google/go-github/v88/github"

	"github.com/yourci/yourci/pkg/status"
)

// Call is one CreateStatus call the Fake received.
type Call struct {
	Owner, Repo, SHA string
	Status           github.RepoStatus
	// Err is what the Fake answered; nil when the status was stored.
	Err error
}

// Context is the call's status context ("" when none was sent).
func (c Call) Context() string { return c.Status.GetContext() }

// Fake is an in-memory commit status store with GitHub's semantics: the
// latest status of a context on a commit wins. It is safe for concurrent use.
// The zero value is ready.
type Fake struct {
	mu    sync.Mutex
	calls []Call
	fails []error
	fail  func(Call) error
}

var _ status.StatusCreator = (*Fake)(nil)

// CreateStatus records the call and, unless a failure is due, stores it.
func (f *Fake) CreateStatus(ctx context.Context, owner, repo, ref string, st github.RepoStatus) (*github.RepoStatus, *github.Response, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	c := Call{Owner: owner, Repo: repo, SHA: ref, Status: st}
	f.mu.Lock()
	fail := f.fail
	if len(f.fails) > 0 {
		c.Err, f.fails, fail = f.fails[0], f.fails[1:], nil
	}
	f.mu.Unlock()
	if fail != nil {
		// Called without the lock so fail may inspect the Fake.
		c.Err = fail(c)
	}
	f.mu.Lock()
	f.calls = append(f.calls, c)
	id := len(f.calls)
	f.mu.Unlock()
	if c.Err != nil {
		return nil, nil, c.Err
	}
	stored := st
	stored.ID = github.Ptr(int64(id))
	return &stored, &github.Response{Response: &http.Response{StatusCode: http.StatusCreated}}, nil
}

// FailNext makes the next len(errs) calls fail with errs, in order. Use
// Answer to build errors shaped like go-github's.
func (f *Fake) FailNext(errs ...error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fails = append(f.fails, errs...)
}

// FailWhen makes every call for which fail returns an error fail with it
// (after any FailNext errors are used up); nil stops it. fail runs without
// the Fake's lock, so it may look at Calls or Latest.
func (f *Fake) FailWhen(fail func(Call) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = fail
}

// Calls returns every call so far, failed ones included, in order.
func (f *Fake) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Call(nil), f.calls...)
}

// Latest returns what GitHub would show for each context on a commit: the
// last stored status of each, by context.
func (f *Fake) Latest(owner, repo, sha string) map[string]github.RepoStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	latest := make(map[string]github.RepoStatus)
	for _, c := range f.calls {
		if c.Err == nil && c.Owner == owner && c.Repo == repo && c.SHA == sha {
			latest[c.Context()] = c.Status
		}
	}
	return latest
}

// Answer returns the error go-github gives for an HTTP answer with this
// code, headers and JSON body, by running go-github's own response check:
// a 403 with X-RateLimit-Remaining "0" becomes a *github.RateLimitError,
// one whose body names the secondary limits an *github.AbuseRateLimitError,
// anything else an *github.ErrorResponse. It returns nil for a 2xx code.
func Answer(code int, header http.Header, body string) error {
	if header == nil {
		header = http.Header{}
	}
	req := &http.Request{Method: http.MethodPost, URL: &url.URL{Scheme: "https", Host: "api.github.invalid", Path: "/repos/o/r/statuses/sha"}}
	resp := &http.Response{
		StatusCode: code,
		Status:     fmt.Sprintf("%d %s", code, http.StatusText(code)),
		Header:     header,
		Body:       io.NopCloser(strings.NewReader(body)),
		Request:    req,
	}
	if code == http.StatusAccepted {
		return nil
	}
	return github.CheckResponse(resp)
}

// NewReporter returns a Reporter writing to f whose waits between retries
// are recorded on the returned Clock instead of slept; opts are applied
// after the clock.
func NewReporter(f *Fake, opts ...status.Option) (*status.Reporter, *Clock) {
	clock := NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	all := append([]status.Option{status.WithClock(clock.Now, clock.Sleep)}, opts...)
	return status.NewReporter(f, all...), clock
}
