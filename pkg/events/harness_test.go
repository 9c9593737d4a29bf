package events_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/natsserver"
	"github.com/yourci/yourci/pkg/natsserver/natstest"
	"github.com/yourci/yourci/pkg/pause"
)

// testServer is a running NATS server of either kind.
type testServer interface {
	URL() string
	Port() int
	Shutdown()
}

// serverKind starts one kind of server on storeDir and port (RandomPort
// for any); every behaviour is tested on each kind.
type serverKind struct {
	name  string
	start func(t testing.TB, storeDir string, port int) testServer
}

var serverKinds = []serverKind{
	{name: "embedded", start: func(t testing.TB, storeDir string, port int) testServer {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s, err := natsserver.Start(ctx, natsserver.Options{StoreDir: storeDir, Port: port})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Shutdown)
		return s
	}},
	{name: "nats-server_binary", start: func(t testing.TB, storeDir string, port int) testServer {
		t.Helper()
		return natstest.StartExternal(t, natsserver.Options{StoreDir: storeDir, Port: port})
	}},
}

// eachServer runs f as a parallel subtest per server kind, with a fresh
// server.
func eachServer(t *testing.T, f func(t *testing.T, srv testServer)) {
	t.Helper()
	for _, kind := range serverKinds {
		t.Run(kind.name, func(t *testing.T) {
			t.Parallel()
			f(t, kind.start(t, t.TempDir(), natsserver.RandomPort))
		})
	}
}

// eachKind is eachServer for tests that start (and restart) servers
// themselves.
func eachKind(t *testing.T, f func(t *testing.T, kind serverKind)) {
	t.Helper()
	for _, kind := range serverKinds {
		t.Run(kind.name, func(t *testing.T) {
			t.Parallel()
			f(t, kind)
		})
	}
}

// fastOptions shrink every wait so behaviour shows within a second.
func fastOptions(t testing.TB) events.Options {
	return events.Options{
		Memory:        true,
		AckWait:       time.Second,
		MaxDeliver:    5,
		HandBackDelay: 50 * time.Millisecond,
		PollWait:      100 * time.Millisecond,
		Timeout:       5 * time.Second,
		Logger:        testLogger(t),
	}
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// connect opens a connection that reconnects to a restarted server.
func connect(t testing.TB, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatalf("connecting to %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func newBus(t testing.TB, url string, opts events.Options) *events.Bus {
	t.Helper()
	b, err := events.New(testContext(t), connect(t, url), opts)
	if err != nil {
		t.Fatalf("setting up bus: %v", err)
	}
	return b
}

// testContext ends with the test, and after 60 seconds at most so that a
// hung test fails instead of stalling the suite.
func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// consumer runs one Consume call in the background until stopped.
type consumer struct {
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

// stop cancels the consumer and returns what Consume returned; it may be
// called more than once.
func (c *consumer) stop() error {
	c.once.Do(func() {
		c.cancel()
		c.err = <-c.done
	})
	return c.err
}

func startPulls(t testing.TB, b *events.Bus, slots *events.Slots, h events.Handler[events.PullEvent]) *consumer {
	return startConsumer(t, func(ctx context.Context) error { return b.Queue().ConsumePulls(ctx, slots, h) })
}

func startTests(t testing.TB, b *events.Bus, slots *events.Slots, h events.Handler[events.TestJob]) *consumer {
	return startConsumer(t, func(ctx context.Context) error { return b.Queue().ConsumeTests(ctx, slots, h) })
}

func startConsumer(t testing.TB, run func(context.Context) error) *consumer {
	t.Helper()
	ctx, cancel := context.WithCancel(testContext(t))
	c := &consumer{cancel: cancel, done: make(chan error, 1)}
	go func() { c.done <- run(ctx) }()
	t.Cleanup(func() {
		if err := c.stop(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			t.Errorf("consumer returned %v", err)
		}
	})
	return c
}

// receive waits for one value from ch, failing the test after 20 seconds.
func receive[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(20 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// eventually polls cond until it holds, failing after 20 seconds.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if pause.Poll(ctx, 20*time.Millisecond, cond) != nil {
		t.Fatalf("timed out waiting until %s", what)
	}
}

// streamMsgs is the number of messages stored in the bus's stream.
func streamMsgs(t testing.TB, b *events.Bus) uint64 {
	t.Helper()
	ctx := testContext(t)
	s, err := events.JetStreamOf(b).Stream(ctx, b.Options().Stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// ackPending is the number of delivered, unsettled messages of a consumer.
func ackPending(t testing.TB, b *events.Bus, consumer string) int {
	t.Helper()
	ctx := testContext(t)
	c, err := events.JetStreamOf(b).Consumer(ctx, b.Options().Stream, consumer)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.NumAckPending
}

// testAckPending is the number of delivered, unsettled test jobs, on
// every repository's consumer.
func testAckPending(t testing.TB, b *events.Bus) int {
	t.Helper()
	backlog, err := b.Board().Backlog(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	return backlog[1].AckPending
}

var sampleRepo = events.Repo{Owner: "my_org", Name: "web.app-1"}

func samplePull(n int, sha string) events.PullEvent {
	return events.PullEvent{Repo: sampleRepo, Number: n, HeadSHA: sha, Installation: 42, Delivery: "d-" + sha}
}

func sampleJob(name string, attempt int) events.TestJob {
	return events.TestJob{
		Repo: sampleRepo, Number: 7, HeadSHA: "abc123", Build: 1, Attempt: attempt,
		Test: events.TestSpec{Name: name, Command: "./test.sh", Env: map[string]string{"X": name}},
	}
}
