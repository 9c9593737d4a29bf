package events_test

import (
	"context"
	"testing"
	"time"

	"github.com/yourci/yourci/pkg/events"
)

func TestPublishOnlyBusLeavesConsumersToWorkers(t *testing.T) {
	eachServer(t, func(t *testing.T, srv testServer) {
		ctx := testContext(t)
		workerOpts := fastOptions(t)
		workerOpts.AckWait = 7 * time.Second
		newBus(t, srv.URL(), workerOpts)

		publisherOpts := fastOptions(t) // AckWait 1s: must not reach the consumers
		publisherOpts.PublishOnly = true
		pub := newBus(t, srv.URL(), publisherOpts)
		if err := pub.Queue().PublishPull(ctx, samplePull(1, "0123456789abcdef0123456789abcdef01234567")); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{events.PullConsumer, events.CommandConsumer} {
			cons, err := events.JetStreamOf(pub).Consumer(ctx, events.DefaultStream, name)
			if err != nil {
				t.Fatal(err)
			}
			if got := cons.CachedInfo().Config.AckWait; got != 7*time.Second {
				t.Errorf("%s AckWait = %s after a publish-only setup, want the worker's 7s", name, got)
			}
		}
		if err := pub.Queue().ConsumePulls(ctx, events.NewSlots(1), func(context.Context, *events.Delivery[events.PullEvent]) {}); err == nil {
			t.Error("a publish-only bus consumed")
		}
	})
}
