package events

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/yourci/yourci/pkg/natsserver"
)

// A test job stored without this worker ever being told, or stored after
// every look it was told to make, is still taken: by the next read of the
// stream, AckWait later, not only at the next notification (which may
// never come). Two ways a busy server gets there, each played out here
// on a source that does not listen, so that no notification reaches it
// but the ones the test makes.
func TestJobStoredUnseenIsTakenAtTheNextRead(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// before plays what happens before the job is stored, starting
		// from a source that has read the stream once (and found nothing).
		before func(ctx context.Context, t *testing.T, f *fairTests)
	}{
		// The job was published before the worker's subscription took
		// effect and stored after its first read answered.
		{name: "stored_after_the_first_read", before: func(context.Context, *testing.T, *fairTests) {}},
		// The worker heard the publication, and both of its looks came
		// before the stream stored the job.
		{name: "stored_after_the_looks_a_publication_made", before: func(ctx context.Context, t *testing.T, f *fairTests) {
			idle(ctx, t, f, f.q.opts.AckWait+f.q.opts.PollWait) // the first read's own second read, which finds nothing
			f.markReady(Repo{Owner: "acme", Name: "late"}, whyPublished)
			idle(ctx, t, f, 2*probeWait+f.q.opts.PollWait)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			f := unlistenedFairTests(ctx, t)
			idle(ctx, t, f, f.q.opts.PollWait) // the first read
			tt.before(ctx, t, f)
			job := TestJob{Repo: Repo{Owner: "acme", Name: "late"}, Number: 7, HeadSHA: "abc123", Build: 1, Attempt: 1,
				Test: TestSpec{Name: "unit", Command: "./test.sh"}}
			if err := f.q.PublishTest(ctx, job); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(10 * f.q.opts.AckWait)
			for time.Now().Before(deadline) {
				lookCtx, stop := context.WithDeadline(ctx, deadline)
				msg, done, err := f.next(lookCtx)
				stop()
				if err != nil {
					t.Fatal(err)
				}
				if msg != nil {
					done()
					return
				}
			}
			t.Fatalf("the job stored unseen was not taken within %s (AckWait %s)", 10*f.q.opts.AckWait, f.q.opts.AckWait)
		})
	}
}

// idle lets f look and wait for d, failing if it finds a job.
func idle(ctx context.Context, t *testing.T, f *fairTests, d time.Duration) {
	t.Helper()
	lookCtx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	for lookCtx.Err() == nil {
		msg, _, err := f.next(lookCtx)
		if err != nil {
			t.Fatal(err)
		}
		if msg != nil {
			t.Fatal("a job was taken before any was published")
		}
	}
}

// unlistenedFairTests is the test source of a bus on a fresh embedded
// server, with no subscription to notifications.
func unlistenedFairTests(ctx context.Context, t *testing.T) *fairTests {
	t.Helper()
	srv, err := natsserver.Start(ctx, natsserver.Options{StoreDir: t.TempDir(), Port: natsserver.RandomPort})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	b, err := New(ctx, nc, Options{Memory: true, AckWait: time.Second, MaxDeliver: 5, PollWait: 100 * time.Millisecond,
		Timeout: 5 * time.Second, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	q := b.Queue()
	book, stopBook, err := watchHolds(ctx, q.running, q.log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stopBook)
	return newFairTests(q, RepoLimits{}, book)
}
