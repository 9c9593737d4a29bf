package events

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// TestRetrySetup drives retrySetup with calls that fail in each way a
// server can fail them, and counts the calls it makes.
func TestRetrySetup(t *testing.T) {
	t.Parallel()
	// unanswered waits for its call's own timeout, as a lost reply does.
	unanswered := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
	apiError := func(context.Context) error {
		return &jetstream.APIError{Code: 400, Description: "stream name already in use"}
	}
	tests := []struct {
		name string
		// fail is how the first failures calls fail; later calls succeed.
		fail      func(context.Context) error
		failures  int
		wantCalls int
		wantErr   bool
	}{
		{name: "success_is_one_call", failures: 0, wantCalls: 1},
		{name: "a_lost_reply_is_asked_again", fail: unanswered, failures: 2, wantCalls: 3},
		{name: "an_api_error_is_asked_again", fail: apiError, failures: 1, wantCalls: 2},
		{name: "a_persistent_api_error_gives_up", fail: apiError, failures: 100, wantCalls: setupAttempts, wantErr: true},
		{name: "another_error_is_final", fail: func(context.Context) error { return errors.New("nats: connection closed") }, failures: 100, wantCalls: 1, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := &Bus{store: &store{opts: Options{Timeout: 20 * time.Millisecond}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}}
			calls := 0
			err := b.retrySetup(context.Background(), "stream X", func(ctx context.Context) error {
				calls++
				if calls <= tt.failures {
					return tt.fail(ctx)
				}
				return nil
			})
			if (err != nil) != tt.wantErr || calls != tt.wantCalls {
				t.Errorf("retrySetup = %v after %d calls; want error %v after %d", err, calls, tt.wantErr, tt.wantCalls)
			}
		})
	}
	t.Run("a_cancelled_caller_is_not_retried", func(t *testing.T) {
		t.Parallel()
		b := &Bus{store: &store{opts: Options{Timeout: time.Minute}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		calls := 0
		err := b.retrySetup(ctx, "stream X", func(ctx context.Context) error { calls++; return unanswered(ctx) })
		if !errors.Is(err, context.DeadlineExceeded) || calls != 1 {
			t.Errorf("retrySetup = %v after %d calls; want the caller's deadline after 1", err, calls)
		}
	})
}
