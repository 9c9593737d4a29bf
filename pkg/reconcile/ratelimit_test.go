package reconcile_test

import (
	"bytes"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/reconcile"
)

func TestRateLimitStopsTheSweepCleanly(t *testing.T) {
	t.Parallel()
	reset := time.Now().Add(time.Hour).Truncate(time.Second)
	primary := http.Header{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Limit": {"5000"},
		"X-Ratelimit-Reset": {strconv.FormatInt(reset.Unix(), 10)}}
	tests := []struct {
		name string
		// limit prepares the stand-in; it is run after the repositories
		// exist.
		limit         func(e *env)
		reserve       int
		wantRepo      string
		wantNot       []string
		wantRequests  int // sent to GitHub in all: none after the refusal
		wantSecondary bool
		wantUntil     time.Time // zero: not checked
	}{
		{
			name:     "primary_limit_answered_403",
			limit:    func(e *env) { e.gh.FailNext("GET", "/repos/acme/b/pulls", 1, http.StatusForbidden, primary) },
			wantRepo: "acme/b", wantNot: []string{"acme/c"}, wantRequests: 2, wantUntil: reset,
		},
		{
			name: "secondary_limit_with_retry_after",
			limit: func(e *env) {
				e.gh.FailNext("GET", "/repos/acme/b/pulls", 1, http.StatusForbidden, http.Header{"Retry-After": {"120"}})
			},
			wantRepo: "acme/b", wantNot: []string{"acme/c"}, wantRequests: 2, wantSecondary: true,
		},
		{
			name: "too_many_requests_with_retry_after",
			limit: func(e *env) {
				e.gh.FailNext("GET", "/repos/acme/b/pulls", 1, http.StatusTooManyRequests, http.Header{"Retry-After": {"30"}})
			},
			wantRepo: "acme/b", wantNot: []string{"acme/c"}, wantRequests: 2, wantSecondary: true,
		},
		{
			name:     "limit_spent_is_not_even_asked",
			limit:    func(e *env) { e.gh.SetRateLimit(2) },
			wantRepo: "acme/c", wantRequests: 2,
		},
		{
			name:     "reserve_left_for_the_workers",
			limit:    func(e *env) { e.gh.SetRateLimit(10) },
			reserve:  8,
			wantRepo: "acme/c", wantRequests: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			repos := []events.Repo{repo("acme", "a"), repo("acme", "b"), repo("acme", "c")}
			for _, r := range repos {
				e.repoWithPulls(t, r.Owner, r.Name, 1)
			}
			tt.limit(e)
			e.gh.ResetCounts()
			s, _ := e.sweeper(t, repos, func(_ *reconcile.Options, c *reconcile.CacheOptions) { c.Reserve = tt.reserve })

			sum, err := s.Sweep(testContext(t))

			var rl *reconcile.RateLimitedError
			if !errors.As(err, &rl) {
				t.Fatalf("error %v, want a *RateLimitedError", err)
			}
			if sum.Stopped == nil || sum.Stopped.Repo != tt.wantRepo || rl.Repo != tt.wantRepo {
				t.Fatalf("stopped %+v, want at %s", sum.Stopped, tt.wantRepo)
			}
			if diff := cmp.Diff(tt.wantNot, sum.NotReached, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("not reached (-want +got):\n%s", diff)
			}
			if got := e.gh.Requests().Total; got != tt.wantRequests {
				t.Errorf("GitHub saw %d requests, want %d: nothing after the refusal", got, tt.wantRequests)
			}
			if rl.Secondary != tt.wantSecondary || rl.Until.Before(time.Now()) {
				t.Errorf("limit %+v: want secondary %v and a time to come back in the future", rl, tt.wantSecondary)
			}
			if !tt.wantUntil.IsZero() && !rl.Until.Equal(tt.wantUntil) {
				t.Errorf("limit until %s, want GitHub's reset %s", rl.Until, tt.wantUntil)
			}
			var text bytes.Buffer
			if err := sum.WriteText(&text); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(text.String(), "STOPPED:") || !strings.Contains(text.String(), "at "+tt.wantRepo) {
				t.Errorf("summary text does not say where it stopped:\n%s", text.String())
			}
		})
	}
}
