package events_test

import (
	"context"
	"testing"
	"time"

	"github.com/yourci/yourci/pkg/events"
)

// TestHandedBackJobDueLaterThanAnnouncedIsTaken plays a server busier than
// its workers: a test job handed back for a second is announced as due
// after 100 ms, so the look the announcement makes finds nothing. The job
// must still be taken soon after the server delivers it again, not one
// AckWait (a minute here) later, when the worker would read the stream
// again by itself.
func TestHandedBackJobDueLaterThanAnnouncedIsTaken(t *testing.T) {
	t.Parallel()
	eachServer(t, func(t *testing.T, srv testServer) {
		opts := fastOptions(t)
		opts.AckWait = time.Minute
		events.AnnounceDueEarly(&opts, 900*time.Millisecond)
		b := newBus(t, srv.URL(), opts)
		ctx := testContext(t)
		if err := b.Queue().PublishTest(ctx, sampleJob("unit", 1)); err != nil {
			t.Fatal(err)
		}
		arrivals := make(chan uint64, 4)
		startTests(t, b, events.NewSlots(1), func(ctx context.Context, d *events.Delivery[events.TestJob]) {
			if d.NumDelivered == 1 {
				if err := d.Nak(time.Second); err != nil {
					t.Errorf("handing back: %v", err)
				}
				return
			}
			if err := d.Ack(ctx); err != nil {
				t.Errorf("ack: %v", err)
			}
			arrivals <- d.NumDelivered
		})
		// receive's deadline (20 s) is a third of the AckWait: only the
		// looks after the missed one can bring the job back in time.
		if n := receive(t, arrivals, "the job handed back, due later than announced"); n != 2 {
			t.Errorf("job taken at delivery %d, want 2", n)
		}
	})
}
