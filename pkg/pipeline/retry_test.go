package pipeline

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestNextRetry(t *testing.T) {
	t.Parallel()
	flaky := Test{Retries: 3, RetryIncrement: 10 * time.Minute}
	tests := []struct {
		name      string
		test      Test
		attempt   int
		outcome   Outcome
		wantWait  time.Duration
		wantRetry bool
	}{
		{"first_failure_waits_one_increment", flaky, 1, Failed, 10 * time.Minute, true},
		{"second_failure_waits_two_increments", flaky, 2, Failed, 20 * time.Minute, true},
		{"last_retry_waits_three_increments", flaky, 3, Failed, 30 * time.Minute, true},
		{"no_retry_after_the_last", flaky, 4, Failed, 0, false},
		{"timeouts_are_retried", flaky, 1, TimedOut, 10 * time.Minute, true},
		{"passed_is_final", flaky, 1, Passed, 0, false},
		{"canceled_is_final", flaky, 1, Canceled, 0, false},
		{"errored_is_final", flaky, 1, Errored, 0, false},
		{"no_retries_configured", Test{}, 1, Failed, 0, false},
		{"zero_increment_retries_at_once", Test{Retries: 1}, 1, Failed, 0, true},
		{"attempt_numbers_start_at_one", flaky, 0, Failed, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			wait, retry := NextRetry(tt.test, tt.attempt, tt.outcome)
			if wait != tt.wantWait || retry != tt.wantRetry {
				t.Errorf("NextRetry = %s, %v; want %s, %v", wait, retry, tt.wantWait, tt.wantRetry)
			}
		})
	}
}

// recordSleeps returns a sleep that records its waits without waiting.
func recordSleeps(waits *[]time.Duration) func(context.Context, time.Duration) error {
	return func(ctx context.Context, d time.Duration) error {
		*waits = append(*waits, d)
		return ctx.Err()
	}
}

// failUntil is a command that fails until its n-th run in the same
// directory, counting runs in a file.
func failUntil(n int) string {
	return `n=$(( $(cat runs 2>/dev/null || echo 0) + 1 )); echo $n > runs; echo "run $n"; [ $n -ge ` + strconv.Itoa(n) + ` ]`
}

func TestRunWithRetries(t *testing.T) {
	t.Parallel()
	const inc = 10 * time.Minute
	tests := []struct {
		name         string
		passOnRun    int
		wantOutcomes []Outcome
		wantWaits    []time.Duration
	}{
		{"passing_test_runs_once", 1, []Outcome{Passed}, nil},
		{"flaky_test_passes_on_its_third_attempt", 3, []Outcome{Failed, Failed, Passed}, []time.Duration{inc, 2 * inc}},
		{"failing_test_uses_every_retry", 9, []Outcome{Failed, Failed, Failed, Failed}, []time.Duration{inc, 2 * inc, 3 * inc}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := attemptIn(t, failUntil(tt.passOnRun))
			a.Test.Name, a.Test.Retries, a.Test.RetryIncrement = "flaky", 3, inc
			var waits []time.Duration
			r := &Runner{now: fakeClock()}
			last, results, err := RunWithRetries(t.Context(), r, a, recordSleeps(&waits))
			if err != nil {
				t.Fatal(err)
			}
			var outcomes []Outcome
			for _, res := range results {
				outcomes = append(outcomes, res.Outcome)
			}
			if diff := cmp.Diff(tt.wantOutcomes, outcomes); diff != "" {
				t.Errorf("outcomes (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantWaits, waits); diff != "" {
				t.Errorf("waits (-want +got):\n%s", diff)
			}
			if last != results[len(results)-1] {
				t.Errorf("last result %v is not the last attempt's %v", last, results[len(results)-1])
			}
			log := readLog(t, a.LogPath)
			assertRunGolden(t, "run_retries_"+tt.name, log)
		})
	}
}

func TestRunWithRetriesCanceledWhileWaiting(t *testing.T) {
	t.Parallel()
	a := attemptIn(t, "exit 1")
	a.Test.Retries, a.Test.RetryIncrement = 2, time.Hour
	ctx, cancel := context.WithCancel(t.Context())
	sleep := func(context.Context, time.Duration) error {
		cancel()
		return errors.New("canceled while waiting")
	}
	last, results, err := RunWithRetries(ctx, &Runner{}, a, sleep)
	if err != nil {
		t.Fatal(err)
	}
	if last.Outcome != Canceled || len(results) != 1 || results[0].Outcome != Failed {
		t.Errorf("got %v after %v, want canceled after one failed attempt", last, results)
	}
	if log := readLog(t, a.LogPath); !strings.HasSuffix(log, LogPrefix+"canceled before attempt 2/3\n") {
		t.Errorf("log does not end with the cancellation:\n%s", log)
	}
}

func TestRunWithRetriesDefaultSleepHonoursContext(t *testing.T) {
	t.Parallel()
	a := attemptIn(t, "exit 1")
	a.Test.Retries, a.Test.RetryIncrement = 1, time.Hour
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		waitForLog(t, a.LogPath, "retry: attempt 2/2 in 1h0m0s")
		cancel()
	}()
	last, _, err := RunWithRetries(ctx, &Runner{}, a, nil)
	if err != nil || last.Outcome != Canceled {
		t.Errorf("RunWithRetries = %v, %v; want canceled during the hour's wait", last, err)
	}
}
