package events_test

import (
	"context"
	"testing"
	"time"

	"github.com/yourci/yourci/pkg/events"
)

// arrival is what the handler saw of a job and when.
type arrival struct {
	job          events.TestJob
	at           time.Time
	numDelivered uint64
	lastChance   bool
}

func TestNotBeforeDelaysJobThroughTheQueue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		maxNakDelay time.Duration
		wait        time.Duration
		// wantRequeued: the wait took more deliveries than MaxDeliver
		// allows, so the job must have been re-published to survive.
		wantRequeued bool
	}{
		{name: "one_delayed_nak", wait: 700 * time.Millisecond},
		{name: "wait_longer_than_max_deliver_steps_is_requeued_not_lost", maxNakDelay: 150 * time.Millisecond, wait: 1500 * time.Millisecond, wantRequeued: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			eachServer(t, func(t *testing.T, srv testServer) {
				opts := fastOptions(t)
				opts.MaxDeliver = 3
				opts.MaxNakDelay = tt.maxNakDelay
				// Deliveries here come from the waits' hand-backs alone: a
				// box too busy to settle a delivery within a short ack wait
				// would add redeliveries of its own and use up MaxDeliver.
				opts.AckWait = 30 * time.Second
				b := newBus(t, srv.URL(), opts)
				ctx := testContext(t)

				later := sampleJob("retry", 2)
				later.NotBefore = time.Now().Add(tt.wait).Round(0) // wall clock, as on the wire
				now := sampleJob("first", 1)
				// The delayed job is queued first and must still run last.
				for _, job := range []events.TestJob{later, now} {
					if err := b.Queue().PublishTest(ctx, job); err != nil {
						t.Fatal(err)
					}
				}
				arrivals := make(chan arrival, 10)
				startTests(t, b, events.NewSlots(2), func(ctx context.Context, d *events.Delivery[events.TestJob]) {
					a := arrival{d.Payload, time.Now(), d.NumDelivered, d.LastChance()}
					// Acknowledged before it is reported: the test ends
					// once it has both arrivals, and its end cancels ctx.
					if err := d.Ack(ctx); err != nil {
						t.Errorf("ack: %v", err)
					}
					arrivals <- a
				})

				first := receive(t, arrivals, "the job without NotBefore")
				second := receive(t, arrivals, "the delayed job")
				if first.job.Test.Name != "first" || second.job.Test.Name != "retry" {
					t.Fatalf("ran %q then %q, want first then retry", first.job.Test.Name, second.job.Test.Name)
				}
				if second.at.Before(later.NotBefore) {
					t.Errorf("delayed job ran at %s, before its NotBefore %s", second.at, later.NotBefore)
				}
				if second.lastChance || second.numDelivered >= uint64(opts.MaxDeliver) {
					t.Errorf("delayed job reached the handler at delivery %d of %d: waiting used up its deliveries", second.numDelivered, opts.MaxDeliver)
				}
				if requeued := second.job.Requeues > 0; requeued != tt.wantRequeued {
					t.Errorf("delayed job re-published %d times, want re-published=%v", second.job.Requeues, tt.wantRequeued)
				}
				eventually(t, "the queue is empty", func() bool { return streamMsgs(t, b) == 0 })
				select {
				case a := <-arrivals:
					t.Errorf("job %q ran twice", a.job.Test.Name)
				default:
				}
			})
		})
	}
}
