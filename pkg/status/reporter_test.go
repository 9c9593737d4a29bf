package status_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-github/v88/github"

	"github.com/yourci/yourci/pkg/status"
	"github.com/yourci/yourci/pkg/status/statustest"
)

// secondaryLimitBody is GitHub's body for a secondary rate limit.
const secondaryLimitBody = `{"message":"You have exceeded a secondary rate limit. Please wait a few minutes before you try again.","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"}`

// answer is one scripted HTTP answer of the stand-in.
type answer struct {
	code   int
	header map[string]string
	body   string
}

// statusServer stands in for GitHub's commit status endpoint: it answers
// its script in order, then 201 with the created status, as GitHub does.
type statusServer struct {
	*httptest.Server
	mu       sync.Mutex
	script   []answer
	always   *answer // answered once the script is used up, instead of 201
	received []github.RepoStatus
	paths    []string
}

func newStatusServer(t *testing.T, script ...answer) *statusServer {
	t.Helper()
	s := &statusServer{script: script}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /repos/{owner}/{repo}/statuses/{sha}", s.create)
	s.Server = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

func (s *statusServer) create(w http.ResponseWriter, r *http.Request) {
	var st github.RepoStatus
	if err := json.NewDecoder(r.Body).Decode(&st); err != nil {
		http.Error(w, `{"message":"Problems parsing JSON"}`, http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.received = append(s.received, st)
	s.paths = append(s.paths, r.URL.Path)
	var a *answer
	switch {
	case len(s.script) > 0:
		a, s.script = &s.script[0], s.script[1:]
	case s.always != nil:
		a = s.always
	}
	n := len(s.received)
	s.mu.Unlock()

	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if a != nil {
		for k, v := range a.header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(a.code)
		fmt.Fprint(w, a.body)
		return
	}
	st.ID = github.Ptr(int64(n))
	st.URL = github.Ptr(s.URL + r.URL.Path)
	w.WriteHeader(http.StatusCreated)
	if err := json.NewEncoder(w).Encode(st); err != nil {
		panic(fmt.Sprintf("encoding answer: %v", err))
	}
}

func (s *statusServer) requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.received)
}

func (s *statusServer) last() github.RepoStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.received[len(s.received)-1]
}

// client points go-github at srv. Its own rate-limit memory runs on the real
// clock, so tests driving waits with a test clock turn it off; the Reporter
// decides every wait either way.
func client(t *testing.T, srv *statusServer, rateLimitMemory bool) *github.Client {
	t.Helper()
	base := srv.URL + "/"
	opts := []github.ClientOptionsFunc{github.WithURLs(&base, nil), github.WithTimeout(10 * time.Second)}
	if !rateLimitMemory {
		opts = append(opts, github.WithDisableRateLimitCheck())
	}
	c, err := github.NewClient(opts...)
	if err != nil {
		t.Fatalf("building client: %v", err)
	}
	return c
}

// newReporter builds a Reporter whose retries are logged to the test.
func newReporter(t *testing.T, c status.StatusCreator, opts ...status.Option) *status.Reporter {
	t.Helper()
	return status.NewReporter(c, append([]status.Option{status.WithLogger(testLogger(t))}, opts...)...)
}

// testLogger writes to the test's log, shown with -v or on failure.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), nil))
}

func sample() status.Status {
	return status.Status{
		Owner: "octo", Repo: "hello.world", SHA: "0123456789abcdef0123456789abcdef01234567",
		Test: "foo-x", State: status.Pending, Description: status.Queued(),
		TargetURL: "https://ci.example.com/octo/hello.world/pulls/7/1/foo-x/out.txt",
	}
}

// span is an inclusive range a jittered wait must fall in.
type span struct{ lo, hi time.Duration }

func TestReporterRetries(t *testing.T) {
	t.Parallel()
	epoch := time.Now().Add(time.Hour).Truncate(time.Second)
	reset := strconv.FormatInt(epoch.Add(30*time.Second).Unix(), 10)
	tests := []struct {
		name     string
		script   []answer
		wantErr  error // nil, status.ErrRejected
		requests int
		sleeps   []span
	}{
		{
			name:     "500 twice then 201 is sent on the third attempt with growing backoff",
			script:   []answer{{code: 500, body: `{"message":"Server Error"}`}, {code: 500, body: `{"message":"Server Error"}`}},
			requests: 3,
			sleeps:   []span{{500 * time.Millisecond, time.Second}, {time.Second, 2 * time.Second}},
		},
		{
			name:     "502 with an HTML body from a proxy is retried",
			script:   []answer{{code: 502, body: "<html>Bad Gateway</html>"}},
			requests: 2,
			sleeps:   []span{{500 * time.Millisecond, time.Second}},
		},
		{
			name:     "secondary limit 403 with Retry-After 1 waits a second",
			script:   []answer{{code: 403, header: map[string]string{"Retry-After": "1"}, body: secondaryLimitBody}},
			requests: 2,
			sleeps:   []span{{time.Second, 1100 * time.Millisecond}},
		},
		{
			name:     "403 with Retry-After but no documentation link is a limit too",
			script:   []answer{{code: 403, header: map[string]string{"Retry-After": "2"}, body: `{"message":"slow down"}`}},
			requests: 2,
			sleeps:   []span{{2 * time.Second, 2200 * time.Millisecond}},
		},
		{
			name:     "429 with Retry-After waits as told",
			script:   []answer{{code: 429, header: map[string]string{"Retry-After": "3"}, body: `{"message":"Too Many Requests"}`}},
			requests: 2,
			sleeps:   []span{{3 * time.Second, 3300 * time.Millisecond}},
		},
		{
			name:     "429 naming no time waits the minute GitHub asks for",
			script:   []answer{{code: 429, body: `{"message":"Too Many Requests"}`}},
			requests: 2,
			sleeps:   []span{{time.Minute, 66 * time.Second}},
		},
		{
			name: "primary limit waits until X-RateLimit-Reset",
			script: []answer{{code: 403, body: `{"message":"API rate limit exceeded"}`, header: map[string]string{
				"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset,
			}}},
			requests: 2,
			sleeps:   []span{{30 * time.Second, 33 * time.Second}},
		},
		{
			name:     "422 is rejected without a retry",
			script:   []answer{{code: 422, body: `{"message":"Validation Failed","errors":[{"resource":"Status","code":"custom","field":"description","message":"description is too long (maximum is 140 characters)"}]}`}},
			wantErr:  status.ErrRejected,
			requests: 1,
		},
		{
			name:     "404 unknown commit is rejected without a retry",
			script:   []answer{{code: 404, body: `{"message":"Not Found"}`}},
			wantErr:  status.ErrRejected,
			requests: 1,
		},
		{
			name:     "401 asking for a one-time password is rejected without a retry",
			script:   []answer{{code: 401, header: map[string]string{"X-GitHub-OTP": "required; app"}, body: `{"message":"Must specify two-factor authentication OTP code."}`}},
			wantErr:  status.ErrRejected,
			requests: 1,
		},
		{
			name:     "403 without any rate limit sign is rejected",
			script:   []answer{{code: 403, body: `{"message":"Resource not accessible by integration"}`}},
			wantErr:  status.ErrRejected,
			requests: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newStatusServer(t, tc.script...)
			clock := statustest.NewClock(epoch)
			r := newReporter(t, client(t, srv, false).Repositories, status.WithClock(clock.Now, clock.Sleep))

			err := r.Set(t.Context(), sample())
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("Set() = %v, want %v", err, tc.wantErr)
			}
			if got := srv.requests(); got != tc.requests {
				t.Errorf("GitHub got %d requests, want %d", got, tc.requests)
			}
			checkSleeps(t, clock.Sleeps(), tc.sleeps)
		})
	}
}

func checkSleeps(t *testing.T, got []time.Duration, want []span) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("slept %v, want %d waits in %v", got, len(want), want)
	}
	for i, d := range got {
		if d < want[i].lo || d > want[i].hi {
			t.Errorf("wait %d = %v, want within [%v, %v]", i+1, d, want[i].lo, want[i].hi)
		}
	}
}

func TestReporterGivesBackWhatItCannotSend(t *testing.T) {
	t.Parallel()
	serverError := answer{code: 500, body: `{"message":"Server Error"}`}
	tests := []struct {
		name      string
		script    []answer
		always    *answer
		opts      []status.Option
		requests  int
		wantAfter span
	}{
		{
			name:      "secondary limit longer than the max wait is handed back at once",
			script:    []answer{{code: 403, header: map[string]string{"Retry-After": "600"}, body: secondaryLimitBody}},
			requests:  1,
			wantAfter: span{10 * time.Minute, 10 * time.Minute},
		},
		{
			name:      "429 beyond a short max wait is handed back at once",
			script:    []answer{{code: 429, header: map[string]string{"Retry-After": "90"}}},
			opts:      []status.Option{status.WithMaxWait(time.Minute)},
			requests:  1,
			wantAfter: span{90 * time.Second, 90 * time.Second},
		},
		{
			name:      "server errors past the attempt bound are handed back with the next backoff",
			always:    &serverError,
			opts:      []status.Option{status.WithMaxAttempts(3), status.WithBackoff(time.Second, time.Minute)},
			requests:  3,
			wantAfter: span{2 * time.Second, 4 * time.Second},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newStatusServer(t, tc.script...)
			srv.always = tc.always
			clock := statustest.NewClock(time.Now())
			opts := append([]status.Option{status.WithClock(clock.Now, clock.Sleep)}, tc.opts...)
			r := newReporter(t, client(t, srv, false).Repositories, opts...)

			err := r.Set(t.Context(), sample())
			var later *status.RetryLaterError
			if !errors.As(err, &later) {
				t.Fatalf("Set() = %v, want a *RetryLaterError", err)
			}
			if later.After < tc.wantAfter.lo || later.After > tc.wantAfter.hi {
				t.Errorf("After = %v, want within [%v, %v]", later.After, tc.wantAfter.lo, tc.wantAfter.hi)
			}
			if got := srv.requests(); got != tc.requests {
				t.Errorf("GitHub got %d requests, want %d", got, tc.requests)
			}
		})
	}
}

func TestReporterStaysWithinItsTimeBudget(t *testing.T) {
	t.Parallel()
	srv := newStatusServer(t)
	srv.always = &answer{code: 503, body: `{"message":"Service Unavailable"}`}
	clock := statustest.NewClock(time.Now())
	budget := 20 * time.Second
	r := newReporter(t, client(t, srv, false).Repositories,
		status.WithClock(clock.Now, clock.Sleep), status.WithMaxAttempts(100),
		status.WithMaxElapsed(budget), status.WithBackoff(time.Second, time.Minute))

	err := r.Set(t.Context(), sample())
	var later *status.RetryLaterError
	if !errors.As(err, &later) {
		t.Fatalf("Set() = %v, want a *RetryLaterError", err)
	}
	var total time.Duration
	for _, d := range clock.Sleeps() {
		total += d
	}
	if total > budget {
		t.Errorf("waited %v in all, over the %v budget", total, budget)
	}
	if got := srv.requests(); got != len(clock.Sleeps())+1 || got < 2 {
		t.Errorf("GitHub got %d requests for %d waits, want one more request than waits and at least 2", got, len(clock.Sleeps()))
	}
}

func TestReporterCancellation(t *testing.T) {
	t.Parallel()
	t.Run("cancel during the wait stops the retries", func(t *testing.T) {
		t.Parallel()
		srv := newStatusServer(t)
		srv.always = &answer{code: 500, body: `{"message":"Server Error"}`}
		ctx, cancel := context.WithCancel(t.Context())
		clock := statustest.NewClock(time.Now())
		clock.OnSleep = func(time.Duration) { cancel() }
		r := newReporter(t, client(t, srv, false).Repositories, status.WithClock(clock.Now, clock.Sleep))

		err := r.Set(ctx, sample())
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Set() = %v, want context.Canceled", err)
		}
		if got := srv.requests(); got != 1 {
			t.Errorf("GitHub got %d requests after the cancel, want 1", got)
		}
	})
	t.Run("a hung GitHub is abandoned after the attempt timeout", func(t *testing.T) {
		t.Parallel()
		release := make(chan struct{})
		hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-release:
			}
		}))
		t.Cleanup(hung.Close)
		t.Cleanup(func() { close(release) })
		base := hung.URL + "/"
		c, err := github.NewClient(github.WithURLs(&base, nil))
		if err != nil {
			t.Fatal(err)
		}
		clock := statustest.NewClock(time.Now())
		r := newReporter(t, c.Repositories, status.WithClock(clock.Now, clock.Sleep),
			status.WithAttemptTimeout(20*time.Millisecond), status.WithMaxAttempts(2))

		err = r.Set(t.Context(), sample())
		var later *status.RetryLaterError
		if !errors.As(err, &later) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Set() = %v, want a *RetryLaterError over a deadline", err)
		}
	})
}

func TestReporterRetriesWhenGitHubCannotBeReached(t *testing.T) {
	t.Parallel()
	gone := httptest.NewServer(http.NotFoundHandler())
	base := gone.URL + "/"
	gone.Close()
	c, err := github.NewClient(github.WithURLs(&base, nil), github.WithTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	clock := statustest.NewClock(time.Now())
	r := newReporter(t, c.Repositories, status.WithClock(clock.Now, clock.Sleep), status.WithMaxAttempts(3))

	err = r.Set(t.Context(), sample())
	var later *status.RetryLaterError
	if !errors.As(err, &later) {
		t.Fatalf("Set() = %v, want a *RetryLaterError", err)
	}
	if n := len(clock.Sleeps()); n != 2 {
		t.Errorf("waited %d times, want 2 (between 3 attempts)", n)
	}
}

// TestReporterWithRateLimitMemory uses go-github as production does, with its
// memory of limits: once GitHub names a long secondary limit, further
// statuses wait without sending anything, so no storm reaches GitHub.
func TestReporterWithRateLimitMemory(t *testing.T) {
	t.Parallel()
	srv := newStatusServer(t, answer{code: 403, header: map[string]string{"Retry-After": "120"}, body: secondaryLimitBody})
	r := newReporter(t, client(t, srv, true).Repositories, status.WithMaxWait(10*time.Second))

	for i := range 3 {
		err := r.Set(t.Context(), sample())
		var later *status.RetryLaterError
		if !errors.As(err, &later) || later.After < 100*time.Second || later.After > 120*time.Second {
			t.Fatalf("Set() #%d = %v, want a *RetryLaterError of about 2 minutes", i+1, err)
		}
	}
	if got := srv.requests(); got != 1 {
		t.Errorf("GitHub got %d requests, want 1", got)
	}
}
