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
