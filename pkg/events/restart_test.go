package events_test

import (
	"context"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/yourci/yourci/pkg/events"
)

func TestServerRestartKeepsQueueAndBuildNumbers(t *testing.T) {
	t.Parallel()
	eachKind(t, func(t *testing.T, kind serverKind) {
		storeDir := t.TempDir()
		srv := kind.start(t, storeDir, -1)
		opts := fastOptions(t)
		opts.Memory = false
		b := newBus(t, srv.URL(), opts)
		ctx := testContext(t)

		for _, sha := range []string{"aaa", "bbb"} {
			if err := b.Queue().PublishPull(ctx, samplePull(7, sha)); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Queue().PublishTest(ctx, sampleJob("foo-x", 1)); err != nil {
			t.Fatal(err)
		}
		if _, _, err := b.Registry().ClaimBuild(ctx, sampleRepo, 7, "aaa", false); err != nil {
			t.Fatal(err)
		}

		srv.Shutdown()
		kind.start(t, storeDir, srv.Port())

		// The same Bus reconnects and finds everything where it was.
		var build int
		var fresh bool
		eventually(t, "key-value answers after the restart", func() bool {
			var err error
			build, fresh, err = b.Registry().ClaimBuild(ctx, sampleRepo, 7, "aaa", false)
			return err == nil
		})
		if build != 1 || fresh {
			t.Errorf("claim of a commit built before the restart = %d, %v; want 1, false", build, fresh)
		}
		if build, fresh, err := b.Registry().ClaimBuild(ctx, sampleRepo, 7, "bbb", false); err != nil || build != 2 || !fresh {
			t.Errorf("claim of a new commit after the restart = %d, %v, %v; want 2, true", build, fresh, err)
		}

		got := make(chan string, 3)
		slots := events.NewSlots(2)
		startPulls(t, b, slots, func(ctx context.Context, d *events.Delivery[events.PullEvent]) {
			if err := d.Ack(ctx); err != nil {
				t.Errorf("ack: %v", err)
			}
			got <- d.Payload.HeadSHA
		})
		startTests(t, b, slots, func(ctx context.Context, d *events.Delivery[events.TestJob]) {
			if err := d.Ack(ctx); err != nil {
				t.Errorf("ack: %v", err)
			}
			got <- d.Payload.Test.Name
		})
		var names []string
		for range 3 {
			names = append(names, receive(t, got, "a job queued before the restart"))
		}
		slices.Sort(names)
		if diff := cmp.Diff([]string{"aaa", "bbb", "foo-x"}, names); diff != "" {
			t.Errorf("jobs after the restart (-want +got):\n%s", diff)
		}
	})
}
