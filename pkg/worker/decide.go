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

// Outcome is how one delivery of a job ends.
type Outcome int

const (
	// Done: the work is finished and reported (or there was none); the
	// message is acknowledged.
	Done Outcome = iota
	// HandBack: the work failed for now; the message is delivered again
	// after Verdict.Delay.
	HandBack
	// Terminate: the work can never succeed; the message is dropped.
	Terminate
)

// Verdict is what handling one delivery decided. Handlers decide, and
// apply alone turns a Verdict into ack, nak-with-delay or term, so the
// decisions can be tested without a queue.
type Verdict struct {
	Outcome Outcome
	// Delay is how long a HandBack waits before the next delivery.
	Delay time.Duration
	// Err is why the job was handed back or terminated; nil when Done.
	Err error
}

// judgeError classifies err, the outcome of handling a job's delivered-th
// delivery, as classifyError does, stopping when ctx ended.
func judgeError(ctx context.Context, err error, delivered uint64) Verdict {
	return classifyError(err, ctx.Err() != nil, delivered)
}

// classifyError classifies err, the outcome of handling a job's
// delivered-th delivery: nil is Done; a job whose input no retry can fix
// (a permanent error, or input the one rule refuses: an owner, a name, a
// commit id) is Terminated now, not after MaxDeliver hand-backs; anything
// else is handed back, at once when the worker is stopping (shutting
// down, so another worker takes it) and otherwise after handBackDelay.
// It is pure.
func classifyError(err error, stopping bool, delivered uint64) Verdict {
	var perm permanentError
	switch {
	case err == nil:
		return Verdict{Outcome: Done}
	case stopping:
		return Verdict{Outcome: HandBack, Err: err}
	case errors.As(err, &perm), errors.Is(err, status.ErrRejected), errors.Is(err, status.ErrInvalid),
		errors.Is(err, events.ErrInvalidEvent), errors.Is(err, artifacts.ErrInvalid):
		return Verdict{Outcome: Terminate, Err: err}
	default:
		return Verdict{Outcome: HandBack, Delay: handBackDelay(err, delivered), Err: err}
	}
}

// apply settles d as v decided. It is the one place a job's error is
// logged.
func apply[T any](ctx context.Context, log *slog.Logger, d *events.Delivery[T], v Verdict) {
	switch v.Outcome {
	case Done:
		// The work is done and reported: the ack must go out even when
		// the grace period after SIGTERM has just ended.
		if err := d.Ack(context.WithoutCancel(ctx)); err != nil {
			log.Error("acknowledging job", "err", err)
		}
	case Terminate:
		log.Error("job can never succeed; terminating it", "err", v.Err)
		if err := d.Term(v.Err.Error()); err != nil {
			log.Error("terminating job", "err", err)
		}
	default:
		if v.Delay == 0 {
			log.Info("handing job back on shutdown", "err", v.Err)
		} else {
			log.Warn("job failed; handing it back", "err", v.Err, "retry_in", v.Delay)
		}
		if err := d.Nak(v.Delay); err != nil {
			log.Error("handing job back", "err", err)
		}
	}
}
