package statustest_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-github/v88/github"

	"github.com/yourci/yourci/pkg/status"
	"github.com/yourci/yourci/pkg/status/statustest"
)

func quiet(t *testing.T) status.Option {
	return status.WithLogger(slog.New(slog.NewTextHandler(t.Output(), nil)))
}

func TestFakeShowsTheLatestStatusOfEachContext(t *testing.T) {
	t.Parallel()
	fake := &statustest.Fake{}
	r, _ := statustest.NewReporter(fake, quiet(t))
	set := func(sha, test string, state status.State, desc string) {
		t.Helper()
		err := r.Set(t.Context(), status.Status{Owner: "o", Repo: "r", SHA: sha, Test: test, State: state, Description: desc})
		if err != nil {
			t.Fatalf("Set: %v", err)
		}
	}
	set("a1", "foo", status.Pending, status.Queued())
	set("a1", "bar", status.Pending, status.Queued())
	set("a1", "foo", status.Success, "passed")
	set("b2", "foo", status.Failure, "failed")

	got := map[string]string{}
	for ctx, st := range fake.Latest("o", "r", "a1") {
		got[ctx] = st.GetState() + " " + st.GetDescription()
	}
	want := map[string]string{"yci/foo": "success passed", "yci/bar": "pending queued"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Latest (-want +got):\n%s", diff)
	}
	if n := len(fake.Calls()); n != 4 {
		t.Errorf("recorded %d calls, want 4", n)
	}
}

func TestFakeFailsOnDemand(t *testing.T) {
	t.Parallel()
	t.Run("FailNext errors are used in order then calls succeed", func(t *testing.T) {
		t.Parallel()
		fake := &statustest.Fake{}
		r, clock := statustest.NewReporter(fake, quiet(t))
		fake.FailNext(statustest.Answer(http.StatusBadGateway, nil, ""), errors.New("connection reset"))

		if err := r.Set(t.Context(), status.Status{Owner: "o", Repo: "r", SHA: "s", State: status.Pending}); err != nil {
			t.Fatalf("Set() = %v, want success on the third call", err)
		}
		calls := fake.Calls()
		if len(calls) != 3 || calls[0].Err == nil || calls[1].Err == nil || calls[2].Err != nil {
			t.Errorf("calls = %+v, want two failures then a success", calls)
		}
		if n := len(clock.Sleeps()); n != 2 {
			t.Errorf("slept %d times, want 2", n)
		}
	})
	t.Run("FailWhen rejects chosen statuses", func(t *testing.T) {
		t.Parallel()
		fake := &statustest.Fake{}
		r, _ := statustest.NewReporter(fake, quiet(t))
		fake.FailWhen(func(c statustest.Call) error {
			if c.Context() == "yci/bad" {
				return statustest.Answer(http.StatusUnprocessableEntity, nil, `{"message":"Validation Failed"}`)
			}
			return nil
		})
		bad := r.Set(t.Context(), status.Status{Owner: "o", Repo: "r", SHA: "s", Test: "bad", State: status.Error})
		good := r.Set(t.Context(), status.Status{Owner: "o", Repo: "r", SHA: "s", Test: "good", State: status.Success})
		if !errors.Is(bad, status.ErrRejected) || good != nil {
			t.Errorf("Set(bad) = %v, Set(good) = %v; want ErrRejected and nil", bad, good)
		}
	})
	t.Run("a cancelled context is refused like a real client", func(t *testing.T) {
		t.Parallel()
		fake := &statustest.Fake{}
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, _, err := fake.CreateStatus(ctx, "o", "r", "s", github.RepoStatus{}); !errors.Is(err, context.Canceled) {
			t.Errorf("CreateStatus() = %v, want context.Canceled", err)
		}
	})
}

func TestAnswerIsShapedLikeGoGithub(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		err   error
		check func(error) bool
	}{
		{"remaining 0 is a primary limit", statustest.Answer(403, http.Header{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {"1900000000"}}, `{"message":"API rate limit exceeded"}`),
			func(err error) bool {
				var e *github.RateLimitError
				return errors.As(err, &e) && e.Rate.Reset.Unix() == 1900000000
			}},
		{"a secondary limit body with Retry-After", statustest.Answer(403, http.Header{"Retry-After": {"7"}}, `{"message":"x","documentation_url":"https://docs.github.com/rest#secondary-rate-limits"}`),
			func(err error) bool {
				var e *github.AbuseRateLimitError
				return errors.As(err, &e) && e.GetRetryAfter() == 7*time.Second
			}},
		{"other answers are error responses", statustest.Answer(500, nil, "oops"),
			func(err error) bool {
				var e *github.ErrorResponse
				return errors.As(err, &e) && e.Response.StatusCode == 500
			}},
		{"2xx is no error", statustest.Answer(201, nil, "{}"), func(err error) bool { return err == nil }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if !tc.check(tc.err) {
				t.Errorf("Answer gave %T %v", tc.err, tc.err)
			}
		})
	}
}

func TestClockRecordsSleepsAndMovesOn(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := statustest.NewClock(start)
	for _, d := range []time.Duration{time.Second, time.Minute} {
		if err := c.Sleep(t.Context(), d); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := c.Now(), start.Add(time.Minute+time.Second); !got.Equal(want) {
		t.Errorf("Now() = %v, want %v", got, want)
	}
	if diff := cmp.Diff([]time.Duration{time.Second, time.Minute}, c.Sleeps()); diff != "" {
		t.Errorf("Sleeps (-want +got):\n%s", diff)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := c.Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("Sleep on a cancelled context = %v, want context.Canceled", err)
	}
}

func TestReporterIsSafeForConcurrentUse(t *testing.T) {
	t.Parallel()
	fake := &statustest.Fake{}
	fake.FailWhen(func(c statustest.Call) error {
		if len(fake.Calls())%3 == 0 {
			return statustest.Answer(http.StatusServiceUnavailable, nil, "")
		}
		return nil
	})
	r, _ := statustest.NewReporter(fake, quiet(t))
	tests := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	errs := make(chan error, len(tests))
	for _, name := range tests {
		go func() {
			errs <- r.Set(t.Context(), status.Status{Owner: "o", Repo: "r", SHA: "s", Test: name, State: status.Success})
		}()
	}
	for range tests {
		if err := <-errs; err != nil {
			t.Errorf("Set: %v", err)
		}
	}
	if got := len(fake.Latest("o", "r", "s")); got != len(tests) {
		t.Errorf("GitHub shows %d contexts, want %d", got, len(tests))
	}
}
