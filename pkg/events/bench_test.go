package events_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/natsserver"
)

// benchBus is a Bus on an embedded server with file storage, as in
// production without NATS_URL.
func benchBus(b *testing.B) *events.Bus {
	b.Helper()
	srv := serverKinds[0].start(b, b.TempDir(), natsserver.RandomPort)
	opts := fastOptions(b)
	opts.Memory = false
	return newBus(b, srv.URL(), opts)
}

// BenchmarkPublishPull is one webhook's publish: encode, store on file,
// wait for the PubAck.
func BenchmarkPublishPull(b *testing.B) {
	bus := benchBus(b)
	ctx := context.Background()
	ev := samplePull(7, "")
	i := 0
	for b.Loop() {
		ev.HeadSHA = fmt.Sprintf("%040d", i)
		i++
		if err := bus.Queue().PublishPull(ctx, ev); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkClaimBuild is handle_pull's claim of a build number for a new
// head commit: read, compare-and-set, over 1000 pull requests.
func BenchmarkClaimBuild(b *testing.B) {
	bus := benchBus(b)
	ctx := context.Background()
	i := 0
	for b.Loop() {
		if _, _, err := bus.Registry().ClaimBuild(ctx, sampleRepo, i%1000+1, fmt.Sprintf("%040d", i), false); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkConsume is one job's trip through a worker: fetch when a slot is
// free, decode, hand to the handler, ack with confirmation.
func BenchmarkConsume(b *testing.B) {
	bus := benchBus(b)
	ctx := context.Background()
	for i := range b.N {
		if err := bus.Queue().PublishTest(ctx, sampleJob(fmt.Sprint(i), 1)); err != nil {
			b.Fatal(err)
		}
	}
	done := make(chan struct{}, b.N)
	b.ResetTimer()
	c := startTests(b, bus, events.NewSlots(4), func(ctx context.Context, d *events.Delivery[events.TestJob]) {
		if err := d.Ack(ctx); err != nil {
			b.Error(err)
		}
		done <- struct{}{}
	})
	for range b.N {
		<-done
	}
	b.StopTimer()
	if err := c.stop(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkApprovalOf is the read every handle_pull of a trusted policy
// adds: one key-value get of the pull request's approval record.
func BenchmarkApprovalOf(b *testing.B) {
	bus := benchBus(b)
	ctx := context.Background()
	if err := bus.Registry().Approve(ctx, sampleRepo, 7, fmt.Sprintf("%040d", 1), "maintainer"); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := bus.Registry().ApprovalOf(ctx, sampleRepo, 7); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRepoValidate is the one name rule every edge applies.
func BenchmarkRepoValidate(b *testing.B) {
	repo := events.Repo{Owner: "my_org", Name: "socket.io.client"}
	for b.Loop() {
		if err := repo.Validate(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIdleTestConsumer counts what an idle worker's test consumer
// (ConsumeTests with two free slots and the production PollWait) sends to
// the server per second, once settled: with nothing queued, and with one
// job waiting out a retry's delay. Reported as idle-requests/s: every
// message the connection sends (API requests, pull requests, key-value
// reads and writes).
func BenchmarkIdleTestConsumer(b *testing.B) {
	for _, bc := range []struct {
		name    string
		waiting bool
	}{{"nothing-queued", false}, {"retry-waiting", true}} {
		b.Run(bc.name, func(b *testing.B) {
			srv := serverKinds[0].start(b, b.TempDir(), natsserver.RandomPort)
			opts := fastOptions(b)
			// The production defaults of what sets a worker's pace.
			opts.PollWait, opts.AckWait, opts.MaxDeliver, opts.HandBackDelay = 0, 0, 0, 0
			nc := connect(b, srv.URL())
			bus, err := events.New(testContext(b), nc, opts)
			if err != nil {
				b.Fatal(err)
			}
			if bc.waiting {
				job := sampleJob("later", 2)
				job.NotBefore = time.Now().Add(time.Hour)
				if err := bus.Queue().PublishTest(testContext(b), job); err != nil {
					b.Fatal(err)
				}
			}
			startTests(b, bus, events.NewSlots(2), func(ctx context.Context, d *events.Delivery[events.TestJob]) {
				b.Errorf("handled %s, which is not due", d.Payload.Test.Name)
				d.Nak(time.Hour)
			})
			const window = 3 * time.Second
			settle(b, nc)
			var sent uint64
			var took time.Duration
			for b.Loop() {
				before, start := nc.Stats().OutMsgs, time.Now()
				time.Sleep(window)
				sent, took = sent+nc.Stats().OutMsgs-before, took+time.Since(start)
			}
			b.ReportMetric(float64(sent)/took.Seconds(), "idle-requests/s")
		})
	}
}

// settle waits until the connection has sent nothing for a second (the
// consumers are made, a waiting job deferred), or 30 s have passed: what
// it sends after that is the idle rate.
func settle(b *testing.B, nc *nats.Conn) {
	b.Helper()
	const quiet, deadline = time.Second, 30 * time.Second
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	last, since, end := nc.Stats().OutMsgs, time.Now(), time.Now().Add(deadline)
	for now := range tick.C {
		if sent := nc.Stats().OutMsgs; sent != last {
			last, since = sent, now
		}
		if now.Sub(since) >= quiet || now.After(end) {
			return
		}
	}
}
