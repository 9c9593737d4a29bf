package worker

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/status"
)

// permanentError marks a job that can never succeed: it is terminated
// rather than delivered again.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

func permanent(err error) error { return permanentError{err} }

// handBackDelay is how long a transient failure waits before the message
// is delivered again: growing with each delivery, so a GitHub or git outage
// is not hammered, and capped so work resumes soon after it ends.
func handBackDelay(err error, delivered uint64) time.Duration {
	var later *status.RetryLaterError
	if errors.As(err, &later) && later.After > 0 {
		return later.After
	}
	d := time.Duration(delivered) * 15 * time.Second
	return min(d, 5*time.Minute)
}

// settle acks, hands back or terminates d according to err, the outcome of
// its handling, as judgeError classifies it.
func settle[T any](ctx context.Context, log *slog.Logger, d *events.Delivery[T], err error) {
	apply(ctx, log, d, judgeError(ctx, err, d.NumDelivered))
}
