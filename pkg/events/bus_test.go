package events_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/yourci/yourci/pkg/events"
)

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		opts    events.Options
		wantErr []string
	}{
		{name: "zero_value_is_valid", opts: events.Options{}},
		{name: "max_deliver_below_3_is_refused", opts: events.Options{MaxDeliver: 2}, wantErr: []string{"MaxDeliver 2"}},
		{name: "election_wait_past_the_duplicate_window_is_refused", opts: events.Options{ElectionWait: events.DuplicateWindow}, wantErr: []string{"ElectionWait 2m0s", "duplicate window"}},
		{name: "negative_election_wait_is_refused", opts: events.Options{ElectionWait: -time.Second}, wantErr: []string{"ElectionWait -1s is negative"}},
		{
			name:    "every_problem_is_reported_at_once",
			opts:    events.Options{AckWait: -time.Second, Replicas: 7, Grace: -1},
			wantErr: []string{"AckWait", "Replicas 7", "Grace"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.opts.Validate()
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want errors mentioning %q", tt.wantErr)
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Validate() = %v, want it to mention %q", err, want)
				}
			}
		})
	}
}

func TestSetup(t *testing.T) {
	t.Parallel()
	eachServer(t, func(t *testing.T, srv testServer) {
		opts := fastOptions(t)
		// Several processes starting at once all succeed and agree.
		const n = 4
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				_, errs[i] = events.New(testContext(t), connect(t, srv.URL()), opts)
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("concurrent setup: %v", err)
		}
		// And one more later changes nothing.
		b := newBus(t, srv.URL(), opts)

		ctx := testContext(t)
		s, err := events.JetStreamOf(b).Stream(ctx, events.DefaultStream)
		if err != nil {
			t.Fatal(err)
		}
		cfg := s.CachedInfo().Config
		gotStream := []any{cfg.Retention, cfg.Subjects, cfg.Duplicates, cfg.Storage}
		wantStream := []any{jetstream.WorkQueuePolicy, []string{events.PullSubjects, events.TestSubjects, events.CommandSubjects}, events.DuplicateWindow, jetstream.MemoryStorage}
		if diff := cmp.Diff(wantStream, gotStream); diff != "" {
			t.Errorf("stream config (-want +got):\n%s", diff)
		}
		for name, filter := range map[string]string{events.PullConsumer: events.PullSubjects, events.CommandConsumer: events.CommandSubjects} {
			c, err := events.JetStreamOf(b).Consumer(ctx, events.DefaultStream, name)
			if err != nil {
				t.Fatalf("consumer %s: %v", name, err)
			}
			cc := c.CachedInfo().Config
			got := []any{cc.Durable, cc.FilterSubject, cc.AckPolicy, cc.AckWait, cc.MaxDeliver, cc.MaxAckPending}
			want := []any{name, filter, jetstream.AckExplicitPolicy, opts.AckWait, opts.MaxDeliver, events.DefaultMaxAckPending}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("consumer %s config (-want +got):\n%s", name, diff)
			}
		}
		if _, err := events.JetStreamOf(b).KeyValue(ctx, events.DefaultBucket); err != nil {
			t.Errorf("bucket %s: %v", events.DefaultBucket, err)
		}
	})
}

func TestPublishConsumeRoundTrip(t *testing.T) {
	t.Parallel()
	eachServer(t, func(t *testing.T, srv testServer) {
		b := newBus(t, srv.URL(), fastOptions(t))
		ctx := testContext(t)
		pull := samplePull(7, "abc123")
		job := sampleJob("foo-x", 1)
		job.Test.Timeout = time.Minute
		job.NotBefore = time.Now().Add(-time.Second).UTC()
		if err := b.Queue().PublishPull(ctx, pull); err != nil {
			t.Fatal(err)
		}
		if err := b.Queue().PublishTest(ctx, job); err != nil {
			t.Fatal(err)
		}

		slots := events.NewSlots(2)
		pulls := make(chan *events.Delivery[events.PullEvent], 1)
		tests := make(chan *events.Delivery[events.TestJob], 1)
		startPulls(t, b, slots, func(ctx context.Context, d *events.Delivery[events.PullEvent]) {
			if err := d.Ack(ctx); err != nil {
				t.Errorf("ack: %v", err)
			}
			if err := d.Nak(0); !errors.Is(err, events.ErrSettled) {
				t.Errorf("nak after ack = %v, want ErrSettled", err)
			}
			pulls <- d
		})
		startTests(t, b, slots, func(ctx context.Context, d *events.Delivery[events.TestJob]) {
			if err := d.Ack(ctx); err != nil {
				t.Errorf("ack: %v", err)
			}
			tests <- d
		})

		gotPull := receive(t, pulls, "pull event")
		gotJob := receive(t, tests, "test job")
		pull.Version, job.Version = events.Version, events.Version
		if diff := cmp.Diff(pull, gotPull.Payload); diff != "" {
			t.Errorf("pull event (-sent +received):\n%s", diff)
		}
		if diff := cmp.Diff(job, gotJob.Payload); diff != "" {
			t.Errorf("test job (-sent +received):\n%s", diff)
		}
		for _, d := range []interface {
			Settled() bool
			LastChance() bool
		}{gotPull, gotJob} {
			if !d.Settled() || d.LastChance() {
				t.Errorf("delivery settled=%v lastChance=%v, want true, false", d.Settled(), d.LastChance())
			}
		}
		if gotPull.NumDelivered != 1 || gotJob.NumDelivered != 1 {
			t.Errorf("NumDelivered = %d, %d, want 1, 1", gotPull.NumDelivered, gotJob.NumDelivered)
		}
		eventually(t, "acked messages leave the work queue", func() bool { return streamMsgs(t, b) == 0 })
	})
}

func TestPublishDeduplicates(t *testing.T) {
	t.Parallel()
	eachServer(t, func(t *testing.T, srv testServer) {
		b := newBus(t, srv.URL(), fastOptions(t))
		ctx := testContext(t)
		redelivered := samplePull(7, "abc123")
		otherDelivery := redelivered
		otherDelivery.Delivery = "reconcile"
		job := sampleJob("foo-x", 1)
		retry := sampleJob("foo-x", 2)
		for _, publish := range []func() error{
			func() error { return b.Queue().PublishPull(ctx, redelivered) },
			func() error { return b.Queue().PublishPull(ctx, redelivered) },
			func() error { return b.Queue().PublishPull(ctx, otherDelivery) },
			func() error { return b.Queue().PublishTest(ctx, job) },
			func() error { return b.Queue().PublishTest(ctx, job) },
			func() error { return b.Queue().PublishTest(ctx, retry) },
		} {
			if err := publish(); err != nil {
				t.Fatal(err)
			}
		}
		if got := streamMsgs(t, b); got != 4 {
			t.Errorf("stream holds %d messages, want 4 (two copies dropped as duplicates)", got)
		}
	})
}

func TestPublishRefusesIncompleteEvents(t *testing.T) {
	t.Parallel()
	eachServer(t, func(t *testing.T, srv testServer) {
		b := newBus(t, srv.URL(), fastOptions(t))
		ctx := testContext(t)
		noSHA := samplePull(7, "")
		noBuild := sampleJob("foo-x", 1)
		noBuild.Build = 0
		if err := b.Queue().PublishPull(ctx, noSHA); !errors.Is(err, events.ErrInvalidEvent) {
			t.Errorf("PublishPull without sha = %v, want ErrInvalidEvent", err)
		}
		if err := b.Queue().PublishTest(ctx, noBuild); !errors.Is(err, events.ErrInvalidEvent) {
			t.Errorf("PublishTest without build = %v, want ErrInvalidEvent", err)
		}
		if got := streamMsgs(t, b); got != 0 {
			t.Errorf("stream holds %d messages, want 0", got)
		}
	})
}

// TestAckWaitChangeUpdatesConsumers starts a Bus with one ack wait and then
// another with a shorter one, as an upgrade does: the durable consumers an
// older release created must take the new value in place, on the oldest
// server as on the newest.
// TestConfigurationChangeUpdatesBuckets starts a Bus with one record TTL
// and then another with a longer one, as an upgrade or a changed flag does:
// the bucket an earlier start created takes the new TTL, and keeps its
// records.
func TestConfigurationChangeUpdatesBuckets(t *testing.T) {
	t.Parallel()
	eachServer(t, func(t *testing.T, srv testServer) {
		ctx := testContext(t)
		opts := fastOptions(t)
		opts.RecordTTL = time.Hour
		first := newBus(t, srv.URL(), opts)
		key := events.BuildKey{Repo: sampleRepo, Pull: 7, Build: 1}
		if _, err := first.Records().UpdateBuild(ctx, key, func(r *events.BuildRecord) error { r.Title = "kept"; return nil }); err != nil {
			t.Fatal(err)
		}
		opts.RecordTTL = 2 * time.Hour
		b := newBus(t, srv.URL(), opts)
		kv, err := events.JetStreamOf(b).KeyValue(ctx, events.DefaultRecordBucket)
		if err != nil {
			t.Fatal(err)
		}
		status, err := kv.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := status.TTL(); got != opts.RecordTTL {
			t.Errorf("record bucket TTL %s after the update, want %s", got, opts.RecordTTL)
		}
		if rec, err := b.Records().BuildRecord(ctx, key); err != nil || rec.Title != "kept" {
			t.Errorf("record after the update = %+v, %v; want it kept", rec, err)
		}
	})
}

func TestAckWaitChangeUpdatesConsumers(t *testing.T) {
	t.Parallel()
	eachServer(t, func(t *testing.T, srv testServer) {
		ctx := testContext(t)
		opts := fastOptions(t)
		opts.AckWait = time.Minute
		newBus(t, srv.URL(), opts)
		opts.AckWait = 20 * time.Second
		b := newBus(t, srv.URL(), opts)
		for _, name := range []string{events.PullConsumer, events.CommandConsumer} {
			c, err := events.JetStreamOf(b).Consumer(ctx, events.DefaultStream, name)
			if err != nil {
				t.Fatalf("consumer %s: %v", name, err)
			}
			info, err := c.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if got := info.Config.AckWait; got != opts.AckWait {
				t.Errorf("consumer %s: AckWait %s after the update, want %s", name, got, opts.AckWait)
			}
		}
	})
}
