package status_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/yourci/yourci/pkg/pause"
	"github.com/yourci/yourci/pkg/status"
	"github.com/yourci/yourci/pkg/status/statustest"
)

const (
	hold = 2 * time.Second
	gap  = 5 * time.Second
)

// budgeted is a Reporter writing to an in-memory fake through a Budget
// whose clock the test moves.
type budgeted struct {
	t      *testing.T
	fake   *statustest.Fake
	clock  *statustest.Clock
	budget *status.Budget
	rep    *status.Reporter
}

func newBudgeted(t *testing.T) *budgeted {
	t.Helper()
	fake := &statustest.Fake{}
	clock := statustest.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	b := status.NewBudget(status.BudgetOptions{Hold: hold, SummaryInterval: gap, Clock: clock, Logger: log})
	t.Cleanup(b.Close)
	rep := status.NewReporter(fake, status.WithClock(clock.Now, clock.Sleep), status.WithBudget(b), status.WithLogger(log))
	return &budgeted{t: t, fake: fake, clock: clock, budget: b, rep: rep}
}

func (b *budgeted) set(test string, state status.State, desc string, started bool) error {
	return b.rep.Set(b.t.Context(), status.Status{Owner: "o", Repo: "r", SHA: "abc", Test: test,
		State: state, Description: desc, Started: started})
}

func (b *budgeted) mustSet(test string, state status.State, desc string, started bool) {
	b.t.Helper()
	if err := b.set(test, state, desc, started); err != nil {
		b.t.Fatalf("Set(%s %s %q): %v", test, state, desc, err)
	}
}

// sent is "context state description" of every status GitHub took.
func (b *budgeted) sent() []string {
	var out []string
	for _, c := range b.fake.Calls() {
		if c.Err == nil {
			out = append(out, c.Context()+" "+c.Status.GetState()+" "+c.Status.GetDescription())
		}
	}
	return out
}

func (b *budgeted) check(want ...string) {
	b.t.Helper()
	if diff := cmp.Diff(want, b.sent()); diff != "" {
		b.t.Errorf("statuses sent (-want +got):\n%s", diff)
	}
}

func TestBudgetHoldsRunningStates(t *testing.T) {
	t.Parallel()
	t.Run("a running state overtaken within the hold is never sent", func(t *testing.T) {
		t.Parallel()
		b := newBudgeted(t)
		b.mustSet("a", status.Pending, "queued", false)
		b.mustSet("a", status.Pending, "running", true)
		b.clock.Advance(hold - time.Millisecond)
		b.mustSet("a", status.Success, "passed", false)
		b.clock.Advance(time.Hour)
		b.check("yci/a pending queued", "yci/a success passed")
		if got := b.budget.Stats(); got.Dropped != 1 || got.Sent != 2 {
			t.Errorf("stats %+v, want 1 dropped and 2 sent", got)
		}
	})
	t.Run("a running state still current after the hold is sent", func(t *testing.T) {
		t.Parallel()
		b := newBudgeted(t)
		b.mustSet("a", status.Pending, "queued", false)
		b.mustSet("a", status.Pending, "running", true)
		b.check("yci/a pending queued")
		b.clock.Advance(hold)
		b.mustSet("a", status.Failure, "failed", false)
		b.check("yci/a pending queued", "yci/a pending running", "yci/a failure failed")
	})
	t.Run("a retry's state is sent at once and drops the held running state", func(t *testing.T) {
		t.Parallel()
		b := newBudgeted(t)
		b.mustSet("a", status.Pending, "running (attempt 1/2)", true)
		b.mustSet("a", status.Pending, "failed; retrying", false)
		b.check("yci/a pending failed; retrying")
	})
	t.Run("tests are held apart", func(t *testing.T) {
		t.Parallel()
		b := newBudgeted(t)
		b.mustSet("a", status.Pending, "running", true)
		b.mustSet("b", status.Pending, "running", true)
		b.mustSet("a", status.Success, "passed", false)
		b.clock.Advance(hold)
		b.check("yci/a success passed", "yci/b pending running")
	})
	t.Run("Close drops what is held", func(t *testing.T) {
		t.Parallel()
		b := newBudgeted(t)
		b.mustSet("a", status.Pending, "running", true)
		b.budget.Close()
		b.clock.Advance(hold)
		b.check()
	})
}

func TestBudgetPacesTheSummary(t *testing.T) {
	t.Parallel()
	b := newBudgeted(t)
	b.mustSet("", status.Pending, "0/4 done", false)
	b.mustSet("", status.Pending, "0/4 done", false) // unchanged
	b.clock.Advance(time.Second)
	b.mustSet("", status.Pending, "1/4 done", false) // too soon: waits for the interval's end
	b.check("yci pending 0/4 done")
	b.clock.WaitTimers(1)
	b.clock.Advance(gap - time.Second)
	b.waitSent("yci pending 0/4 done", "yci pending 1/4 done")

	// A newer pending summary overtakes one still waiting, which is never
	// sent.
	b.clock.Advance(time.Second)
	b.mustSet("", status.Pending, "2/4 done", false)
	b.mustSet("", status.Pending, "3/4 done", false)
	b.clock.WaitTimers(2)

	// A final summary overtakes them too, and goes at once: the clock
	// does not move before it is sent.
	b.mustSet("", status.Success, "4/4 passed", false)
	b.check("yci pending 0/4 done", "yci pending 1/4 done", "yci success 4/4 passed")

	// Pending again (a re-run) after the interval: sent at once.
	b.clock.Advance(gap)
	b.mustSet("", status.Pending, "re-running 1 test", false)
	b.check("yci pending 0/4 done", "yci pending 1/4 done", "yci success 4/4 passed", "yci pending re-running 1 test")
	b.budget.Close() // waits for the overtaken summaries to be dropped
	if got := b.budget.Stats(); got.Unchanged != 1 || got.Dropped != 2 {
		t.Errorf("stats %+v, want 1 unchanged and 2 dropped", got)
	}
}

// waitSent waits for the statuses sent to be want: a summary sent at the
// end of its interval goes from a goroutine of the Budget's.
func (b *budgeted) waitSent(want ...string) {
	b.t.Helper()
	// Stats count a send once the budget has noted its time, which it
	// does after the fake has recorded the status.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if pause.Poll(ctx, 10*time.Millisecond, func() bool {
		return cmp.Equal(want, b.sent()) && b.budget.Stats().Sent == len(want)
	}) != nil {
		b.check(want...)
	}
}

func TestBudgetWaitsOutRateLimitsFinalStatesFirst(t *testing.T) {
	t.Parallel()
	b := newBudgeted(t)
	limited := statustest.Answer(http.StatusTooManyRequests, http.Header{"Retry-After": {"30"}}, secondaryLimitBody)
	b.fake.FailNext(limited)

	var wg sync.WaitGroup
	errs := make([]error, 2)
	wg.Add(1)
	go func() { defer wg.Done(); errs[0] = b.set("a", status.Pending, "failed; retrying", false) }()
	b.clock.WaitTimers(1) // a met the limit and waits
	wg.Add(1)
	go func() { defer wg.Done(); errs[1] = b.set("b", status.Success, "passed", false) }()
	b.clock.WaitTimers(2) // b waits too, though it never met the limit
	if n := len(b.fake.Calls()); n != 1 {
		t.Fatalf("%d calls during the pause, want only the limited one", n)
	}
	b.clock.Advance(30 * time.Second)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	b.check("yci/b success passed", "yci/a pending failed; retrying")
	if got := b.budget.Stats(); got.Paused != 1 {
		t.Errorf("stats %+v, want one pause", got)
	}
}

func TestBudgetHandsBackAFinalStateWhenThePauseIsLong(t *testing.T) {
	t.Parallel()
	b := newBudgeted(t)
	b.fake.FailNext(statustest.Answer(http.StatusForbidden, http.Header{"Retry-After": {"3600"}}, secondaryLimitBody))
	err := b.set("a", status.Success, "passed", false)
	var later *status.RetryLaterError
	if !errors.As(err, &later) || later.After < time.Hour {
		t.Fatalf("Set = %v, want a RetryLaterError of an hour", err)
	}
	// The account stays paused: the next write is handed back unsent.
	err = b.set("b", status.Failure, "failed", false)
	if !errors.As(err, &later) {
		t.Fatalf("second Set = %v, want a RetryLaterError", err)
	}
	if n := len(b.fake.Calls()); n != 1 {
		t.Errorf("%d calls, want 1: a paused account is not written to", n)
	}
}

// Another box may send the final summary while this one's pending summary
// waits for its interval: the late one is made again as the summary
// stands when it goes, so it cannot bring back an older state.
func TestBudgetSendsALateSummaryAsItStandsThen(t *testing.T) {
	t.Parallel()
	b := newBudgeted(t)
	b.mustSet("", status.Pending, "0/2 done", false)
	b.clock.Advance(time.Second)
	final := status.Status{Owner: "o", Repo: "r", SHA: "abc", State: status.Success, Description: "2/2 passed"}
	late := status.Status{Owner: "o", Repo: "r", SHA: "abc", State: status.Pending, Description: "1/2 done",
		Latest: func(context.Context) (status.Status, error) { return final, nil }}
	if err := b.rep.Set(t.Context(), late); err != nil {
		t.Fatal(err)
	}
	b.check("yci pending 0/2 done")
	b.clock.WaitTimers(1)
	b.clock.Advance(gap)
	b.waitSent("yci pending 0/2 done", "yci success 2/2 passed")
}

// A test's handler sets the summary while it holds a worker slot, before
// its test runs and before its message is acked: a pending summary within
// the interval must not keep it waiting (re-runs once started on the
// interval's grid), and the final one that overtakes it goes at once, so
// Close finds nothing to send.
func TestBudgetSummaryNeverBlocksItsCaller(t *testing.T) {
	t.Parallel()
	b := newBudgeted(t)
	b.mustSet("", status.Failure, "1/2 failed", false)
	b.mustSet("", status.Pending, "re-running 1 test", false) // pending after final, too soon
	b.clock.WaitTimers(1)
	b.check("yci failure 1/2 failed")
	b.mustSet("", status.Success, "2/2 passed", false) // final after pending, too soon
	b.check("yci failure 1/2 failed", "yci success 2/2 passed")
	b.budget.Close()
	b.check("yci failure 1/2 failed", "yci success 2/2 passed")
}

// The final summary is what branch protection waits for (issue 15): it is
// not paced, whatever the interval left, and a head whose tests are quick
// still costs two summary writes, its first pending one and its final one.
func TestBudgetSendsTheFinalSummaryAtOnce(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		after time.Duration // between the pending summaries and the final one
	}{
		{"right_after_the_first_pending", 0},
		{"within_the_interval", gap - time.Millisecond},
		{"after_the_interval", gap},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := newBudgeted(t)
			b.mustSet("", status.Pending, "0/3 done", false)
			if tc.after < gap {
				// Within the interval these wait for its end, or for
				// the final summary to overtake them.
				b.mustSet("", status.Pending, "1/3 done", false)
				b.mustSet("", status.Pending, "2/3 done", false)
			}
			b.clock.Advance(tc.after)
			b.mustSet("", status.Success, "3/3 passed", false)
			// Sent before Set returned, with the clock where it was.
			b.check("yci pending 0/3 done", "yci success 3/3 passed")
			b.budget.Close()
			b.check("yci pending 0/3 done", "yci success 3/3 passed")
		})
	}
}
