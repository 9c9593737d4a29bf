package events_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/yourci/yourci/pkg/events"
)

// state is an Entry reduced to what a listing shows of it.
type state struct {
	State   events.JobState
	Test    string
	Attempt int
	Worker  string
}

func states(snap events.Snapshot) []state {
	var out []state
	for _, e := range snap.Entries {
		out = append(out, state{e.State, e.Test, e.Attempt, e.Worker})
	}
	return out
}

func TestBoardListsQueuedAndRunningWork(t *testing.T) {
	t.Parallel()
	eachServer(t, func(t *testing.T, srv testServer) {
		ctx := testContext(t)
		b := newBus(t, srv.URL(), fastOptions(t))
		board := b.Board()

		empty, err := board.Snapshot(ctx, 100)
		if err != nil || len(empty.Entries) != 0 {
			t.Fatalf("empty queue: %v, %+v", err, empty)
		}
		if err := b.Queue().PublishPull(ctx, samplePull(7, "aaa")); err != nil {
			t.Fatal(err)
		}
		later := sampleJob("later", 2)
		later.NotBefore = time.Now().Add(time.Hour)
		for _, job := range []events.TestJob{sampleJob("queued", 1), later, sampleJob("runs", 1)} {
			if err := b.Queue().PublishTest(ctx, job); err != nil {
				t.Fatal(err)
			}
		}
		done, err := b.Attempts().MarkRunning(ctx, events.RunningAttemptOf(sampleJob("runs", 1), "box-a", time.Now()))
		if err != nil {
			t.Fatal(err)
		}
		// A pull event a worker is handling.
		handling, release := make(chan struct{}), make(chan struct{})
		startPulls(t, b, events.NewSlots(1), func(ctx context.Context, d *events.Delivery[events.PullEvent]) {
			close(handling)
			<-release
			d.Ack(ctx)
		})
		receive(t, handling, "the pull event")

		snap, err := board.Snapshot(ctx, 100)
		if err != nil {
			t.Fatal(err)
		}
		want := []state{
			{State: events.Preparing},
			{State: events.RetryWait, Test: "later", Attempt: 2},
			{State: events.Queued, Test: "queued", Attempt: 1},
			{State: events.Running, Test: "runs", Attempt: 1, Worker: "box-a"},
		}
		if diff := cmp.Diff(want, states(snap)); diff != "" {
			t.Errorf("snapshot (-want +got):\n%s", diff)
		}
		for _, e := range snap.Entries {
			if e.Repo != sampleRepo || e.Number != 7 || e.Since.IsZero() || e.Since.After(snap.Taken) {
				t.Errorf("entry %+v: want %s#7 with a time before %s", e, sampleRepo.FullName(), snap.Taken)
			}
		}

		wantBacklog := []events.ConsumerBacklog{
			{Consumer: events.PullConsumer, Pending: 0, AckPending: 1},
			{Consumer: events.TestConsumer, Pending: 3},
		}
		// A consumer counts new messages a moment after they are stored
		// (the server signals its consumers asynchronously).
		var diff string
		eventually(t, "the backlog counts the new messages", func() bool {
			backlog, err := board.Backlog(ctx)
			if err != nil {
				t.Fatal(err)
			}
			diff = cmp.Diff(wantBacklog, backlog)
			return diff == ""
		})
		if diff != "" {
			t.Errorf("backlog (-want +got):\n%s", diff)
		}

		close(release)
		done()
		eventually(t, "the pull event is acked", func() bool { return ackPending(t, b, events.PullConsumer) == 0 })
		snap, err = board.Snapshot(ctx, 100)
		if err != nil {
			t.Fatal(err)
		}
		want = []state{
			{State: events.RetryWait, Test: "later", Attempt: 2},
			{State: events.Queued, Test: "queued", Attempt: 1},
			{State: events.Queued, Test: "runs", Attempt: 1},
		}
		if diff := cmp.Diff(want, states(snap)); diff != "" {
			t.Errorf("after the attempt ended (-want +got):\n%s", diff)
		}

		short, err := board.Snapshot(ctx, 2)
		if err != nil || len(short.Entries) != 2 || !short.Truncated {
			t.Errorf("limit 2: %v, %d entries, truncated %v; want 2 and truncated", err, len(short.Entries), short.Truncated)
		}
	})
}

func TestBoardOnAServerNoWorkerSetUp(t *testing.T) {
	t.Parallel()
	srv := serverKinds[0].start(t, t.TempDir(), -1)
	board, err := events.NewBoard(connect(t, srv.URL()), events.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testContext(t)
	snap, err := board.Snapshot(ctx, 10)
	if err != nil || len(snap.Entries) != 0 {
		t.Errorf("snapshot: %v, %+v; want empty", err, snap)
	}
	backlog, err := board.Backlog(ctx)
	if err != nil || len(backlog) != 2 || backlog[0].Pending != 0 || backlog[1].Pending != 0 {
		t.Errorf("backlog: %v, %+v; want two empty consumers", err, backlog)
	}
}
