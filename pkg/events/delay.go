package events

import (
	"context"
	"time"
)

// deferTest deals with a TestJob delivered before its NotBefore and reports
// whether it did. Every delivery counts towards MaxDeliver, on every server
// version, and a delayed Nak is one more delivery; so a job takes delayed
// Naks only while at least two deliveries remain (one for the run, one
// spare), and is otherwise re-published as a fresh message (Requeues+1,
// its own message id) and the old one acked. A wait therefore never turns
// a job's run into its last chance. Waits longer than MaxNakDelay, clock
// skew between boxes and a server restart all cause such extra early
// deliveries.
func (q *Queue) deferTest(ctx context.Context, d *Delivery[TestJob]) bool {
	wait := time.Until(d.Payload.NotBefore)
	if d.Payload.NotBefore.IsZero() || wait <= 0 {
		return false
	}
	log := q.log.With(d.Payload.LogAttrs()...).With("num_delivered", d.NumDelivered, "wait", wait)
	if d.NumDelivered+1 < uint64(q.opts.MaxDeliver) {
		log.Debug("job not due; handing it back until it is")
		handBack(log, d, min(wait, q.opts.MaxNakDelay))
		return true
	}
	fresh := d.Payload
	fresh.Requeues++
	if err := q.PublishTest(ctx, fresh); err != nil {
		log.Error("re-publishing job that is not due; handing it back instead", "err", err)
		handBack(log, d, min(wait, q.opts.MaxNakDelay))
		return true
	}
	if err := d.Ack(ctx); err != nil {
		// The copy is queued; this one comes back after AckWait and is
		// re-published under the same message id, which the stream drops
		// within its duplicate window.
		log.Error("acking job re-published to wait for its time", "err", err)
		return true
	}
	log.Debug("job not due and near MaxDeliver; re-published it", "requeues", fresh.Requeues)
	return true
}
