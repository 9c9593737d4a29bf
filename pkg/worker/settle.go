package worker

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/yourci/yourci/pkg/artifacts"
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
// its handling. It is the one place a job's error is logged.
func settle[T any](ctx context.Context, log *slog.Logger, d *events.Delivery[T], err error) {
	var perm permanentError
	switch {
	case err == nil:
		// The work is done and reported: the ack must go out even when
		// the grace period after SIGTERM has just ended.
		if err := d.Ack(context.WithoutCancel(ctx)); err != nil {
			log.Error("acknowledging job", "err", err)
		}
	case ctx.Err() != nil:
		// Shutting down: hand the job back at once for another worker.
		log.Info("handing job back on shutdown", "err", err)
		if err := d.Nak(0); err != nil {
			log.Error("handing job back", "err", err)
		}
	case errors.As(err, &perm), errors.Is(err, status.ErrRejected), errors.Is(err, status.ErrInvalid),
		errors.Is(err, events.ErrInvalidEvent), errors.Is(err, artifacts.ErrInvalid):
		// Input the one rule refuses (an owner, a name, a commit id)
		// stays refused: it ends now, not after MaxDeliver hand-backs.
		log.Error("job can never succeed; terminating it", "err", err)
		if err := d.Term(err.Error()); err != nil {
			log.Error("terminating job", "err", err)
		}
	default:
		delay := handBackDelay(err, d.NumDelivered)
		log.Warn("job failed; handing it back", "err", err, "retry_in", delay)
		if err := d.Nak(delay); err != nil {
			log.Error("handing job back", "err", err)
		}
	}
}
