package pause

import (
	"context"
	"errors"
	"testing"
	"time"
)

// never is longer than any test run: a pause of it that returns did so
// because its context ended, not because the time passed.
const never = time.Hour

func TestFor(t *testing.T) {
	t.Parallel()
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancelExpired := context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer cancelExpired()
	tests := []struct {
		name string
		ctx  context.Context
		d    time.Duration
		want error
	}{
		{"short_pause_on_a_live_context_passes", context.Background(), time.Millisecond, nil},
		{"zero_pause_on_a_live_context_passes", context.Background(), 0, nil},
		{"negative_pause_on_a_live_context_passes", context.Background(), -time.Second, nil},
		{"canceled_context_stops_a_long_pause", canceled, never, context.Canceled},
		{"canceled_context_wins_over_a_zero_pause", canceled, 0, context.Canceled},
		{"expired_deadline_stops_a_long_pause", expired, never, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := For(tt.ctx, tt.d); !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Errorf("For(ctx, %v) = %v, want %v", tt.d, err, tt.want)
			}
		})
	}
}

// TestForStopsWhenTheContextEndsMidway shows a pause already waiting
// returns as soon as its context is canceled, with the context's error.
func TestForStopsWhenTheContextEndsMidway(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	returned := make(chan error, 1)
	go func() { returned <- For(ctx, never) }()
	cancel()
	select {
	case err := <-returned:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("For after cancel = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("For did not return within 10s of its context being canceled")
	}
}

func TestUntil(t *testing.T) {
	t.Parallel()
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		at   time.Time
		want error
	}{
		{"time_in_the_past_passes_at_once", context.Background(), time.Now().Add(-time.Hour), nil},
		{"near_time_passes", context.Background(), time.Now().Add(time.Millisecond), nil},
		{"canceled_context_stops_a_far_time", canceled, time.Now().Add(never), context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := Until(tt.ctx, tt.at); !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Errorf("Until(ctx, %v) = %v, want %v", tt.at, err, tt.want)
			}
		})
	}
}

func TestPoll(t *testing.T) {
	t.Parallel()
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name      string
		ctx       context.Context
		trueAfter int // done returns true from this call on; 0: never
		want      error
		wantCalls int
	}{
		{"true_at_once_returns_without_waiting", context.Background(), 1, nil, 1},
		{"true_on_the_third_call", context.Background(), 3, nil, 3},
		{"never_true_stops_when_the_context_ends", canceled, 0, context.Canceled, 1},
		{"true_at_once_wins_over_an_ended_context", canceled, 1, nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			calls := 0
			err := Poll(tt.ctx, time.Millisecond, func() bool {
				calls++
				return tt.trueAfter > 0 && calls >= tt.trueAfter
			})
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Errorf("Poll = %v, want %v", err, tt.want)
			}
			if calls != tt.wantCalls {
				t.Errorf("done called %d times, want %d", calls, tt.wantCalls)
			}
		})
	}
}
