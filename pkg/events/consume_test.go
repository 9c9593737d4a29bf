package events_test

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/yourci/yourci/pkg/events"
)

// delivered is what a handler saw of one delivery.
type delivered struct {
	Name         string
	NumDelivered uint64
	LastChance   bool
}

func TestCrashedWorkersMessageGoesToAnotherWorker(t *testing.T) {
	t.Parallel()
	eachServer(t, func(t *testing.T, srv testServer) {
		opts := fastOptions(t)
		crashing := newBus(t, srv.URL(), opts)
		healthy := newBus(t, srv.URL(), opts)
		if err := crashing.Queue().PublishTest(testContext(t), sampleJob("foo-x", 1)); err != nil {
			t.Fatal(err)
		}

		took := make(chan struct{})
		startTests(t, crashing, events.NewSlots(1), func(ctx context.Context, d *events.Delivery[events.TestJob]) {
			close(took)
			<-ctx.Done() // hangs, never settles: as good as dead
		})
		receive(t, took, "first worker to take the job")

		got := make(chan delivered, 1)
		startTests(t, healthy, events.NewSlots(1), func(ctx context.Context, d *events.Delivery[events.TestJob]) {
			if err := d.Ack(ctx); err != nil {
				t.Errorf("ack: %v", err)
			}
			got <- delivered{d.Payload.Test.Name, d.NumDelivered, d.LastChance()}
		})
		if diff := cmp.Diff(delivered{"foo-x", 2, false}, receive(t, got, "redelivery after AckWait")); diff != "" {
			t.Errorf("redelivery (-want +got):\n%s", diff)
		}
	})
}

func TestKeepAliveHoldsMessageBeyondAckWait(t *testing.T) {
	t.Parallel()
	eachServer(t, func(t *testing.T, srv testServer) {
		opts := fastOptions(t)
		// Long enough that a stall of the test process between two
		// keep-alives (a third of it apart) does not let it pass.
		opts.AckWait = 3 * time.Second
		worker := newBus(t, srv.URL(), opts)
		other := newBus(t, srv.URL(), opts)
		if err := worker.Queue().PublishTest(testContext(t), sampleJob("slow", 1)); err != nil {
			t.Fatal(err)
		}

		started := make(chan struct{})
		done := make(chan error, 1)
		startTests(t, worker, events.NewSlots(1), func(ctx context.Context, d *events.Delivery[events.TestJob]) {
			stop := d.KeepAlive(ctx)
			defer stop()
			close(started)
			time.Sleep(3 * opts.AckWait) // a long test
			done <- d.Ack(ctx)
		})
		receive(t, started, "long handler to start")
		var stolen atomic.Int32
		startTests(t, other, events.NewSlots(1), func(ctx context.Context, d *events.Delivery[events.TestJob]) {
			stolen.Add(1)
			if err := d.Ack(ctx); err != nil {
				t.Errorf("ack: %v", err)
			}
		})
		if err := receive(t, done, "long handler to finish"); err != nil {
			t.Fatalf("ack after a long run: %v", err)
		}
		if n := stolen.Load(); n != 0 {
			t.Errorf("another worker got the message %d times while it was kept alive", n)
		}
		eventually(t, "the acked message leaves the queue", func() bool { return streamMsgs(t, worker) == 0 })
	})
}

func TestMaxDeliverReachesHandlerAsLastChance(t *testing.T) {
	t.Parallel()
	eachServer(t, func(t *testing.T, srv testServer) {
		opts := fastOptions(t)
		opts.MaxDeliver = 3
		b := newBus(t, srv.URL(), opts)
		if err := b.Queue().PublishPull(testContext(t), samplePull(7, "abc")); err != nil {
			t.Fatal(err)
		}
		seen := make(chan delivered, 10)
		startPulls(t, b, events.NewSlots(1), func(ctx context.Context, d *events.Delivery[events.PullEvent]) {
			seen <- delivered{d.Payload.HeadSHA, d.NumDelivered, d.LastChance()}
			if !d.LastChance() {
				if err := d.Nak(0); err != nil {
					t.Errorf("nak: %v", err)
				}
				return
			}
			if err := d.Term("failed on every delivery"); err != nil {
				t.Errorf("term: %v", err)
			}
		})
		var got []delivered
		for range 3 {
			got = append(got, receive(t, seen, "delivery"))
		}
		want := []delivered{{"abc", 1, false}, {"abc", 2, false}, {"abc", 3, true}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("deliveries (-want +got):\n%s", diff)
		}
		eventually(t, "the terminated message leaves the queue", func() bool { return streamMsgs(t, b) == 0 })
		select {
		case d := <-seen:
			t.Errorf("delivered again after its last chance: %+v", d)
		default:
		}
	})
}

func TestHandlerThatDoesNotSettleHandsMessageBack(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		first func(d *events.Delivery[events.PullEvent])
	}{
		{name: "panic", first: func(*events.Delivery[events.PullEvent]) { panic("handler bug") }},
		{name: "return_unsettled", first: func(*events.Delivery[events.PullEvent]) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			eachServer(t, func(t *testing.T, srv testServer) {
				opts := fastOptions(t)
				// Longer than the test waits: only a hand-back redelivers.
				opts.AckWait = time.Minute
				b := newBus(t, srv.URL(), opts)
				if err := b.Queue().PublishPull(testContext(t), samplePull(7, "abc")); err != nil {
					t.Fatal(err)
				}
				again := make(chan uint64, 1)
				startPulls(t, b, events.NewSlots(1), func(ctx context.Context, d *events.Delivery[events.PullEvent]) {
					if d.NumDelivered == 1 {
						tt.first(d)
						return
					}
					if err := d.Ack(ctx); err != nil {
						t.Errorf("ack: %v", err)
					}
					again <- d.NumDelivered
				})
				if n := receive(t, again, "redelivery"); n != 2 {
					t.Errorf("redelivered with NumDelivered %d, want 2", n)
				}
			})
		})
	}
}

func TestUndecodableMessagesAreTerminated(t *testing.T) {
	t.Parallel()
	valid, err := json.Marshal(events.TestJob{Version: events.Version, Repo: sampleRepo, Number: 1, HeadSHA: "a", Build: 1, Attempt: 1, Test: events.TestSpec{Name: "ok"}})
	if err != nil {
		t.Fatal(err)
	}
	bodies := []struct{ name, body string }{
		{"not_json", "not json at all"},
		{"truncated_json", `{"v":1,"repo":{"owner":"a"`},
		{"unknown_version", `{"v":99,"repo":{"owner":"a","name":"b"},"number":1,"head_sha":"a","build":1,"attempt":1,"test":{"name":"future"}}`},
		{"missing_version", `{"repo":{"owner":"a","name":"b"},"number":1,"head_sha":"a","build":1,"attempt":1,"test":{"name":"past"}}`},
		{"wrong_field_type", `{"v":1,"number":"seven"}`},
	}
	eachServer(t, func(t *testing.T, srv testServer) {
		b := newBus(t, srv.URL(), fastOptions(t))
		ctx := testContext(t)
		subject := events.TestSubject(sampleRepo)
		for _, m := range bodies {
			if _, err := events.JetStreamOf(b).Publish(ctx, subject, []byte(m.body)); err != nil {
				t.Fatalf("publishing %s: %v", m.name, err)
			}
		}
		if _, err := events.JetStreamOf(b).Publish(ctx, subject, valid); err != nil {
			t.Fatal(err)
		}
		handled := make(chan string, len(bodies)+1)
		startTests(t, b, events.NewSlots(2), func(ctx context.Context, d *events.Delivery[events.TestJob]) {
			if err := d.Ack(ctx); err != nil {
				t.Errorf("ack: %v", err)
			}
			handled <- d.Payload.Test.Name
		})
		if got := receive(t, handled, "the valid job"); got != "ok" {
			t.Errorf("handler got %q, want only the valid job", got)
		}
		eventually(t, "every bad message is terminated", func() bool { return streamMsgs(t, b) == 0 })
		select {
		case got := <-handled:
			t.Errorf("handler got a bad message: %q", got)
		default:
		}
	})
}

func TestSlotsLimitWorkAcrossKindsWithoutPrefetch(t *testing.T) {
	t.Parallel()
	eachServer(t, func(t *testing.T, srv testServer) {
		b := newBus(t, srv.URL(), fastOptions(t))
		ctx := testContext(t)
		for i, sha := range []string{"a", "b", "c"} {
			if err := b.Queue().PublishPull(ctx, samplePull(7, sha)); err != nil {
				t.Fatal(err)
			}
			if err := b.Queue().PublishTest(ctx, sampleJob(sha, i+1)); err != nil {
				t.Fatal(err)
			}
		}
		var running, maxRunning atomic.Int32
		var mu sync.Mutex
		var pendingSeen []int
		done := make(chan struct{}, 6)
		work := func(ctx context.Context, ack func(context.Context) error) {
			maxRunning.Store(max(maxRunning.Load(), running.Add(1)))
			// Everything delivered and unsettled, on both consumers: only
			// the message this slot holds, none waiting prefetched.
			pending := ackPending(t, b, events.PullConsumer) + testAckPending(t, b)
			mu.Lock()
			pendingSeen = append(pendingSeen, pending)
			mu.Unlock()
			running.Add(-1)
			if err := ack(ctx); err != nil {
				t.Errorf("ack: %v", err)
			}
			done <- struct{}{}
		}
		slots := events.NewSlots(1)
		startPulls(t, b, slots, func(ctx context.Context, d *events.Delivery[events.PullEvent]) { work(ctx, d.Ack) })
		startTests(t, b, slots, func(ctx context.Context, d *events.Delivery[events.TestJob]) { work(ctx, d.Ack) })
		for range 6 {
			receive(t, done, "every message handled")
		}
		if got := maxRunning.Load(); got != 1 {
			t.Errorf("%d handlers ran at once with one slot", got)
		}
		mu.Lock()
		defer mu.Unlock()
		if diff := cmp.Diff([]int{1, 1, 1, 1, 1, 1}, pendingSeen); diff != "" {
			t.Errorf("messages delivered while a handler ran (-want +got):\n%s", diff)
		}
	})
}

func TestShutdown(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		grace     time.Duration
		wantAcked bool
	}{
		{name: "without_grace_handler_hands_message_back", grace: 0, wantAcked: false},
		{name: "grace_lets_running_handler_finish", grace: 10 * time.Second, wantAcked: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			eachServer(t, func(t *testing.T, srv testServer) {
				opts := fastOptions(t)
				opts.Grace = tt.grace
				// Longer than the test waits: only a hand-back redelivers.
				opts.AckWait = time.Minute
				b := newBus(t, srv.URL(), opts)
				if err := b.Queue().PublishPull(testContext(t), samplePull(7, "abc")); err != nil {
					t.Fatal(err)
				}
				started := make(chan struct{})
				finish := make(chan struct{})
				c := startPulls(t, b, events.NewSlots(1), func(ctx context.Context, d *events.Delivery[events.PullEvent]) {
					close(started)
					select {
					case <-ctx.Done():
						if err := d.Nak(0); err != nil {
							t.Errorf("nak: %v", err)
						}
					case <-finish:
						if err := d.Ack(ctx); err != nil {
							t.Errorf("ack: %v", err)
						}
					}
				})
				receive(t, started, "handler start")
				stopped := make(chan error, 1)
				go func() { stopped <- c.stop() }()
				if tt.grace > 0 {
					// Stopping waits for the handler, which finishes.
					select {
					case err := <-stopped:
						t.Fatalf("consumer returned %v before its handler finished", err)
					case <-time.After(200 * time.Millisecond):
					}
					close(finish)
				}
				if err := receive(t, stopped, "consumer to return"); err != nil {
					t.Fatalf("consumer returned %v", err)
				}
				if tt.wantAcked {
					eventually(t, "the acked message leaves the queue", func() bool { return streamMsgs(t, b) == 0 })
					return
				}
				// Handed back: the next worker gets it at once.
				again := make(chan uint64, 1)
				startPulls(t, newBus(t, srv.URL(), opts), events.NewSlots(1), func(ctx context.Context, d *events.Delivery[events.PullEvent]) {
					if err := d.Ack(ctx); err != nil {
						t.Errorf("ack: %v", err)
					}
					again <- d.NumDelivered
				})
				if n := receive(t, again, "handed-back message"); n != 2 {
					t.Errorf("handed-back message delivered with NumDelivered %d, want 2", n)
				}
			})
		})
	}
}
