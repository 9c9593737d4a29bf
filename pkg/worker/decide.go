package worker

import (
	"context"
	"errors"
	"fmt"
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
// delivery: nil is Done; a job whose input no retry can fix (a permanent
// error, or input the one rule refuses: an owner, a name, a commit id) is
// Terminated now, not after MaxDeliver hand-backs; anything else is
// handed back, at once when ctx ended (shutting down, so another worker
// takes it) and otherwise after handBackDelay.
func judgeError(ctx context.Context, err error, delivered uint64) Verdict {
	var perm permanentError
	switch {
	case err == nil:
		return Verdict{Outcome: Done}
	case ctx.Err() != nil:
		return Verdict{Outcome: HandBack, Err: err}
	case errors.As(err, &perm), errors.Is(err, status.ErrRejected), errors.Is(err, status.ErrInvalid),
		errors.Is(err, events.ErrInvalidEvent), errors.Is(err, artifacts.ErrInvalid):
		return Verdict{Outcome: Terminate, Err: err}
	default:
		return Verdict{Outcome: HandBack, Delay: handBackDelay(err, delivered), Err: err}
	}
}

// decidePull handles one delivery of a pull event: on the last delivery
// it gives up with an error status linking to the head's preparation log
// instead of trying again (an attempt that crashed every worker before
// would crash this one too), and otherwise builds the head commit. An
// attempt that fails (other than by shutdown) is written to the
// preparation log and, when it is handed back, shown at once as the
// pending yci summary with its reason. Its Verdict says how the delivery
// ends.
//
// Each attempt has PrepareTimeout: past it, it is stopped and handed back
// like any failure ("preparing this commit took more than 10m0s;
// stopped"), so a commit that keeps hanging ends, on its last delivery,
// as an error status, and its slot is freed even when the attempt
// ignores being stopped (see guard).
func (w *Worker) decidePull(ctx context.Context, log *slog.Logger, ev events.PullEvent, a prepAttempt) Verdict {
	job := fmt.Sprintf("%s#%d at %s", ev.Repo.FullName(), ev.Number, ev.HeadSHA)
	limit := w.opts.PrepareTimeout
	if a.last() {
		err := w.guard(ctx, "pull", job, "giving up on this commit", limit, w.grace, func(ctx context.Context) error {
			return w.abandonPull(ctx, log, ev, a)
		})
		w.opts.Metrics.pullHandled(err)
		return judgeError(ctx, err, a.delivered)
	}
	p := &prepLog{since: a.published}
	err := w.guard(ctx, "pull", job, "preparing this commit", limit, w.grace, func(ctx context.Context) error {
		return w.handlePull(ctx, log, ev, p)
	})
	if errors.Is(err, ErrStuck) {
		// The attempt still runs and may still write its steps.
		p = &prepLog{steps: []string{"(the stuck attempt's steps are not known)"}}
	}
	w.opts.Metrics.pullHandled(err)
	w.opts.Metrics.countInfra(err)
	v := judgeError(ctx, err, a.delivered)
	if v.Outcome != Done && ctx.Err() == nil {
		// Telling of the failure is bounded too: GitHub may be what hangs.
		rctx, cancel := context.WithTimeout(ctx, limit)
		w.recordPrepFailure(rctx, log, ev, a, p, v)
		cancel()
	}
	return v
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
