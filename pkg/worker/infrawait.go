package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/status"
)

// An infrastructure error (see infra.go) is this box's fault, not the
// code's, and may last as long as it takes an operator to free a disk.
// Handed back with a delayed Nak, each wait would use one of the job's
// MaxDeliver deliveries, and ten of them (about eleven minutes of growing
// delays) would end the test as "lost". Instead the job is re-published
// to wait (TestJob.InfraSince, InfraRetries, NotBefore) and the delivery
// acked, as the Bus does for long NotBefore waits; the wait is bounded by
// time, Options.InfraGiveUp, after which the test ends as error naming
// the cause. Meanwhile its status and page say why it waits (infraFailed).

// DefaultInfraGiveUp is how long a test waits out infrastructure errors
// before it ends as error: long enough for an operator to answer a
// full-disk alert out of hours, short enough that a build does not stay
// pending for the day.
const DefaultInfraGiveUp = 3 * time.Hour

// DefaultInfraRetryDelay is the first wait after an infrastructure error;
// each further wait is as much longer, up to maxInfraDelay.
const DefaultInfraRetryDelay = 15 * time.Second

// maxInfraDelay caps the wait between two tries, so that work resumes
// within minutes of the box recovering.
const maxInfraDelay = 5 * time.Minute

// infraWait is the job to publish so that job's attempt, which met the
// infrastructure error err at now, is tried again later: its wait counted
// (InfraRetries, part of its message id), since when it waits kept
// (InfraSince), and its next try not before retry-th multiple of delay
// (capped). ok is false when err is no infrastructure error.
func infraWait(job events.TestJob, err error, now time.Time, delay time.Duration) (next events.TestJob, ok bool) {
	var infra infraError
	if !errors.As(err, &infra) {
		return job, false
	}
	next = job
	if next.InfraSince.IsZero() {
		next.InfraSince = now.UTC()
	}
	next.InfraRetries++
	next.Requeues = 0
	next.NotBefore = now.Add(min(time.Duration(next.InfraRetries)*delay, maxInfraDelay)).UTC()
	return next, true
}

// infraExpired reports whether job has waited out infrastructure errors
// for giveUp or longer at now.
func infraExpired(job events.TestJob, now time.Time, giveUp time.Duration) bool {
	return !job.InfraSince.IsZero() && now.Sub(job.InfraSince) >= giveUp
}

// infraKind is the kind of the infrastructure error err.
func infraKind(err error) string {
	var infra infraError
	if errors.As(err, &infra) {
		return infra.kind
	}
	return InfraDisk
}

// settleTest settles a test job's delivery as settle does, except that an
// infrastructure error re-publishes the job to wait (infraWait) and acks
// this delivery, so the wait uses none of MaxDeliver. When the job cannot
// be published, the delivery is handed back as any failure is.
func (h *testHandler) settleTest(ctx context.Context, log *slog.Logger, d *events.Delivery[events.TestJob], err error) {
	v := judgeError(ctx, err, d.NumDelivered)
	if v.Outcome != HandBack || ctx.Err() != nil {
		apply(ctx, log, d, v)
		return
	}
	next, ok := infraWait(d.Payload, err, time.Now(), h.infraRetryDelay)
	if !ok {
		apply(ctx, log, d, v)
		return
	}
	if perr := h.publish.PublishTest(ctx, next); perr != nil {
		v.Err = fmt.Errorf("%w (and queuing it to wait: %w)", err, perr)
		apply(ctx, log, d, v)
		return
	}
	log.Warn("infrastructure error; test queued to try again", "err", err, "retry_at", next.NotBefore,
		"infra_retries", next.InfraRetries, "waiting_since", next.InfraSince)
	// The copy is queued. Should this ack be lost, the delivery comes back
	// after AckWait and, failing the same way, publishes the same copy
	// again (same message id), which the stream drops within its
	// duplicate window.
	if aerr := d.Ack(context.WithoutCancel(ctx)); aerr != nil {
		log.Error("acknowledging job queued to wait", "err", aerr)
	}
}

// giveUpInfra ends job's test as error once it has waited out
// infrastructure errors for InfraGiveUp: err is the latest, and the
// status names its kind and cause. A nil return acks the delivery.
func (h *testHandler) giveUpInfra(ctx context.Context, st status.Status, job events.TestJob, err error) error {
	waited := time.Since(job.InfraSince).Round(time.Second)
	h.log.With(job.LogAttrs()...).Error("giving up on test after infrastructure errors", "err", err,
		"waited", waited, "infra_retries", job.InfraRetries)
	st.Started = false
	st.State = status.Error
	st.Description = infraGaveUp(waited, err)
	return h.rec.recordFinal(ctx, job, st, nil)
}

// infraGaveUp is the description of a test that waited out infrastructure
// errors for waited and gave up on err: its kind and cause, no path.
func infraGaveUp(waited time.Duration, err error) string {
	return status.Errored(fmt.Sprintf("gave up after %s: infrastructure (%s): %s", waited, infraKind(err), status.ErrorReason(err)))
}
