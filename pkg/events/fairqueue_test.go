package events_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/yourci/yourci/pkg/events"
)

var (
	busyRepo  = events.Repo{Owner: "acme", Name: "mono.repo"}
	quietRepo = events.Repo{Owner: "team_b", Name: "tool"}
)

func repoJob(r events.Repo, name string) events.TestJob {
	j := sampleJob(name, 1)
	j.Repo = r
	return j
}

func TestAnotherRepositoryIsServedBeforeABacklog(t *testing.T) {
	t.Parallel()
	eachServer(t, func(t *testing.T, srv testServer) {
		b := newBus(t, srv.URL(), fastOptions(t))
		ctx := testContext(t)
		var want []string
		for i := range 20 {
			name := fmt.Sprintf("busy-%02d", i)
			want = append(want, name)
			if err := b.Queue().PublishTest(ctx, repoJob(busyRepo, name)); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Queue().PublishTest(ctx, repoJob(quietRepo, "quiet")); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var order []string
		done := make(chan struct{}, 21)
		startTests(t, b, events.NewSlots(1), func(ctx context.Context, d *events.Delivery[events.TestJob]) {
			mu.Lock()
			order = append(order, d.Payload.Test.Name)
			mu.Unlock()
			if err := d.Ack(ctx); err != nil {
				t.Errorf("ack: %v", err)
			}
			done <- struct{}{}
		})
		for range 21 {
			receive(t, done, "every job handled")
		}
		mu.Lock()
		defer mu.Unlock()
		quiet := slices.Index(order, "quiet")
		// The busy repository's first job may be taken first (a tie is
		// broken by name); the quiet one's job goes next, not last.
		if quiet < 0 || quiet > 1 {
			t.Errorf("the quiet repository's job ran %dth of %d: %v", quiet+1, len(order), order)
		}
		busy := slices.DeleteFunc(slices.Clone(order), func(s string) bool { return s == "quiet" })
		if diff := cmp.Diff(want, busy); diff != "" {
			t.Errorf("the busy repository's jobs out of order (-want +got):\n%s", diff)
		}
	})
}

// A repository at its cap holds no slot beyond the cap: with two of its
// jobs running (and held there) on two workers, the other repository's
// jobs, queued after, all run, and no third of its jobs starts.
func TestRepositoryCapHoldsAcrossWorkers(t *testing.T) {
	t.Parallel()
	eachServer(t, func(t *testing.T, srv testServer) {
		opts := fastOptions(t)
		opts.RepoLimits = events.RepoLimits{PerRepo: map[events.Repo]events.RepoLimit{busyRepo: {MaxRunning: 2}}}
		first, second := newBus(t, srv.URL(), opts), newBus(t, srv.URL(), opts)
		ctx := testContext(t)
		const busyJobs, quietJobs = 12, 6
		for i := range busyJobs {
			if err := first.Queue().PublishTest(ctx, repoJob(busyRepo, fmt.Sprintf("busy-%02d", i))); err != nil {
				t.Fatal(err)
			}
		}
		var busyNow, busyMax, quietWhileBusyCapped atomic.Int32
		capped, release := make(chan struct{}), make(chan struct{})
		var reachCap sync.Once
		done := make(chan struct{}, busyJobs+quietJobs)
		handle := func(ctx context.Context, d *events.Delivery[events.TestJob]) {
			if d.Payload.Repo == busyRepo {
				n := busyNow.Add(1)
				busyMax.Store(max(busyMax.Load(), n))
				if n == 2 {
					reachCap.Do(func() { close(capped) })
				}
				// Held running until the other repository's jobs are done.
				select {
				case <-release:
				case <-ctx.Done():
				}
				busyNow.Add(-1)
			} else if busyNow.Load() == 2 {
				quietWhileBusyCapped.Add(1)
			}
			if err := d.Ack(ctx); err != nil {
				t.Errorf("ack: %v", err)
			}
			done <- struct{}{}
		}
		// Six slots in all, three per worker: room for more than the cap.
		startTests(t, first, events.NewSlots(3), handle)
		startTests(t, second, events.NewSlots(3), handle)
		receive(t, capped, "the capped repository reaching its cap")
		for i := range quietJobs {
			if err := first.Queue().PublishTest(ctx, repoJob(quietRepo, fmt.Sprintf("quiet-%02d", i))); err != nil {
				t.Fatal(err)
			}
		}
		for range quietJobs {
			receive(t, done, "the other repository's jobs handled while the capped one holds its cap")
		}
		close(release)
		for range busyJobs {
			receive(t, done, "the capped repository's jobs handled")
		}
		if got := busyMax.Load(); got != 2 {
			t.Errorf("at most %d of the capped repository's jobs ran at once, want 2", got)
		}
		if got := quietWhileBusyCapped.Load(); got != quietJobs {
			t.Errorf("%d of the other repository's %d jobs ran while the capped one was at its cap, want all", got, quietJobs)
		}
	})
}

func TestUpgradeFromCatchAllConsumerKeepsQueuedJobs(t *testing.T) {
	t.Parallel()
	eachServer(t, func(t *testing.T, srv testServer) {
		opts := fastOptions(t)
		old := newBus(t, srv.URL(), opts)
		ctx := testContext(t)
		js := events.JetStreamOf(old)
		// An earlier version's one consumer of every test job, with an
		// old worker in the middle of one of them.
		catchAll, err := js.CreateOrUpdateConsumer(ctx, events.DefaultStream, jetstream.ConsumerConfig{
			Durable: events.TestConsumer, FilterSubject: events.TestSubjects, AckPolicy: jetstream.AckExplicitPolicy,
			AckWait: opts.AckWait, MaxDeliver: opts.MaxDeliver,
		})
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"one", "three", "two"}
		for _, name := range want {
			if err := old.Queue().PublishTest(ctx, repoJob(busyRepo, name)); err != nil {
				t.Fatal(err)
			}
		}
		batch, err := catchAll.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for range batch.Messages() { // taken, never acked
		}

		upgraded := newBus(t, srv.URL(), opts)
		if _, err := js.Consumer(ctx, events.DefaultStream, events.TestConsumer); err == nil {
			t.Error("the catch-all consumer is still there after the upgrade")
		}
		var mu sync.Mutex
		var got []string
		done := make(chan struct{}, len(want))
		startTests(t, upgraded, events.NewSlots(2), func(ctx context.Context, d *events.Delivery[events.TestJob]) {
			mu.Lock()
			got = append(got, d.Payload.Test.Name)
			mu.Unlock()
			if err := d.Ack(ctx); err != nil {
				t.Errorf("ack: %v", err)
			}
			done <- struct{}{}
		})
		for range want {
			receive(t, done, "every job queued before the upgrade")
		}
		eventually(t, "the stream is empty", func() bool { return streamMsgs(t, upgraded) == 0 })
		mu.Lock()
		defer mu.Unlock()
		slices.Sort(got)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("jobs handled after the upgrade (-want +got):\n%s", diff)
		}
	})
}

func TestBoardSharesShowEachRepositorysPlace(t *testing.T) {
	t.Parallel()
	eachServer(t, func(t *testing.T, srv testServer) {
		b := newBus(t, srv.URL(), fastOptions(t))
		ctx := testContext(t)
		for i := range 3 {
			if err := b.Queue().PublishTest(ctx, repoJob(busyRepo, fmt.Sprint("busy-", i))); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Queue().PublishTest(ctx, repoJob(quietRepo, "quiet")); err != nil {
			t.Fatal(err)
		}
		// One of the busy repository's jobs runs.
		running, release := make(chan struct{}), make(chan struct{})
		var once sync.Once
		startTests(t, b, events.NewSlots(1), func(ctx context.Context, d *events.Delivery[events.TestJob]) {
			once.Do(func() { close(running) })
			<-release
			d.Nak(time.Minute)
		})
		receive(t, running, "the first job")
		defer close(release)
		limits := events.RepoLimits{PerRepo: map[events.Repo]events.RepoLimit{busyRepo: {MaxRunning: 1}}}
		// The consumer does not cap the busy repository, and an uncapped
		// repository's slot is recorded while its job starts, not before
		// (Queue.hold): the handler can run before the board sees it.
		var shares []events.RepoShare
		eventually(t, "the running job's slot is on the board", func() bool {
			var err error
			if shares, err = b.Board().Shares(ctx, limits); err != nil {
				t.Fatal(err)
			}
			i := slices.IndexFunc(shares, func(sh events.RepoShare) bool { return sh.Repo == busyRepo })
			return i >= 0 && shares[i].Held > 0
		})
		want := []events.RepoShare{
			{Repo: quietRepo, Stored: 1, Place: 1},
			{Repo: busyRepo, Stored: 3, Held: 1, Limit: events.RepoLimit{MaxRunning: 1}},
		}
		if diff := cmp.Diff(want, shares); diff != "" {
			t.Errorf("shares (-want +got):\n%s", diff)
		}
	})
}

func TestDeletedRepositoryConsumerIsCreatedAgain(t *testing.T) {
	t.Parallel()
	eachServer(t, func(t *testing.T, srv testServer) {
		b := newBus(t, srv.URL(), fastOptions(t))
		ctx := testContext(t)
		got := make(chan string, 2)
		startTests(t, b, events.NewSlots(1), func(ctx context.Context, d *events.Delivery[events.TestJob]) {
			if err := d.Ack(ctx); err != nil {
				t.Errorf("ack: %v", err)
			}
			got <- d.Payload.Test.Name
		})
		if err := b.Queue().PublishTest(ctx, repoJob(busyRepo, "before")); err != nil {
			t.Fatal(err)
		}
		receive(t, got, "the job before the deletion")
		// An operator removes the repository's consumer by hand.
		if err := events.JetStreamOf(b).DeleteConsumer(ctx, events.DefaultStream, events.TestConsumerFor(busyRepo)); err != nil {
			t.Fatal(err)
		}
		if err := b.Queue().PublishTest(ctx, repoJob(busyRepo, "after")); err != nil {
			t.Fatal(err)
		}
		if name := receive(t, got, "the job after the deletion"); name != "after" {
			t.Errorf("got %q, want the job published after the deletion", name)
		}
	})
}

// An idle worker asks the server nothing while it waits, so a job handed
// back with a delay reaches it through the hand-back's announcement: the
// stream is read again only every AckWait, here far longer than the wait.
func TestJobHandedBackWithDelayReachesAnIdleWorkerWhenDue(t *testing.T) {
	t.Parallel()
	eachServer(t, func(t *testing.T, srv testServer) {
		opts := fastOptions(t)
		opts.AckWait = time.Minute
		b := newBus(t, srv.URL(), opts)
		ctx := testContext(t)
		got := make(chan uint64, 2)
		startTests(t, b, events.NewSlots(1), func(ctx context.Context, d *events.Delivery[events.TestJob]) {
			var err error
			if d.NumDelivered == 1 {
				err = d.Nak(300 * time.Millisecond)
			} else {
				err = d.Ack(ctx)
			}
			if err != nil {
				t.Errorf("settling delivery %d: %v", d.NumDelivered, err)
			}
			got <- d.NumDelivered
		})
		if err := b.Queue().PublishTest(ctx, repoJob(busyRepo, "flaky")); err != nil {
			t.Fatal(err)
		}
		receive(t, got, "the first delivery")
		if n := receive(t, got, "the job handed back, once due"); n != 2 {
			t.Errorf("delivery %d, want 2", n)
		}
	})
}

// Fairness is fleet-wide: a worker that never served either repository
// gives its free slot to the one holding fewer slots on other workers,
// where by name alone the busy one would go first.
func TestFreeSlotGoesToTheRepositoryHoldingFewestSlotsFleetWide(t *testing.T) {
	t.Parallel()
	eachServer(t, func(t *testing.T, srv testServer) {
		opts := fastOptions(t)
		first, second := newBus(t, srv.URL(), opts), newBus(t, srv.URL(), opts)
		ctx := testContext(t)
		if err := first.Queue().PublishTest(ctx, repoJob(busyRepo, "busy-running")); err != nil {
			t.Fatal(err)
		}
		running, release := make(chan struct{}), make(chan struct{})
		startTests(t, first, events.NewSlots(1), func(ctx context.Context, d *events.Delivery[events.TestJob]) {
			if d.Payload.Test.Name == "busy-running" {
				close(running)
				<-release // the test is over: the job is left to expire
			}
		})
		receive(t, running, "the busy repository's first job")
		defer close(release)
		eventually(t, "the running job's slot is recorded", func() bool {
			shares, err := first.Board().Shares(ctx, events.RepoLimits{})
			return err == nil && len(shares) == 1 && shares[0].Held == 1
		})
		for _, j := range []events.TestJob{repoJob(busyRepo, "busy-queued"), repoJob(quietRepo, "quiet")} {
			if err := first.Queue().PublishTest(ctx, j); err != nil {
				t.Fatal(err)
			}
		}
		got := make(chan string, 2)
		startTests(t, second, events.NewSlots(1), func(ctx context.Context, d *events.Delivery[events.TestJob]) {
			if err := d.Ack(ctx); err != nil {
				t.Errorf("ack: %v", err)
			}
			got <- d.Payload.Test.Name
		})
		if name := receive(t, got, "the second worker's first job"); name != "quiet" {
			t.Errorf("the second worker took %q first, want the quiet repository's job", name)
		}
	})
}
