package reconcile_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/reconcile"
)

// eachServer runs f as a parallel subtest on each kind of NATS server.
func eachServer(t *testing.T, f func(t *testing.T, e *env)) {
	t.Helper()
	for _, kind := range serverKinds {
		t.Run(kind.name, func(t *testing.T) {
			t.Parallel()
			f(t, newEnvOn(t, kind.start(t)))
		})
	}
}

func release(t *testing.T, l *reconcile.Lock) {
	t.Helper()
	if err := l.Release(context.Background()); err != nil {
		t.Errorf("releasing the lock: %v", err)
	}
}

func TestTwoSweepsAtOnce(t *testing.T) {
	t.Parallel()
	r := repo("acme", "widgets")

	t.Run("the_second_gives_up_when_told_not_to_wait", func(t *testing.T) {
		eachServer(t, func(t *testing.T, e *env) {
			e.repoWithPulls(t, r.Owner, r.Name, 1)
			held, err := e.store.Acquire(testContext(t), reconcile.LockOptions{Holder: "first sweep"})
			if err != nil {
				t.Fatal(err)
			}
			defer release(t, held)
			s, _ := e.sweeper(t, []events.Repo{r}, nil)

			sum, err := s.Sweep(testContext(t))

			var locked *reconcile.LockedError
			if !errors.Is(err, reconcile.ErrLocked) || !errors.As(err, &locked) || locked.Holder != "first sweep" {
				t.Fatalf("error %v, want ErrLocked naming the first sweep", err)
			}
			if sum.Pulls != 0 || len(e.queued(t)) != 0 {
				t.Errorf("summary %+v and queue %v: the second sweep must not sweep", sum, heads(e.queued(t)))
			}
		})
	})
	t.Run("the_second_waits_for_the_first_to_release", func(t *testing.T) {
		eachServer(t, func(t *testing.T, e *env) {
			e.repoWithPulls(t, r.Owner, r.Name, 1)
			held, err := e.store.Acquire(testContext(t), reconcile.LockOptions{Holder: "first sweep"})
			if err != nil {
				t.Fatal(err)
			}
			waiting := &noticing{Handler: testLogger(t).Handler(), message: "waiting for the sweep lock", once: new(sync.Once), seen: make(chan struct{})}
			s, _ := e.sweeper(t, []events.Repo{r}, func(o *reconcile.Options, _ *reconcile.CacheOptions) {
				o.Lock = reconcile.LockOptions{Wait: 30 * time.Second, Poll: 20 * time.Millisecond}
				o.Logger = slog.New(waiting)
			})
			done := make(chan reconcile.Summary)
			go func() {
				sum, err := s.Sweep(testContext(t))
				if err != nil {
					t.Errorf("waiting sweep: %v", err)
				}
				done <- sum
			}()
			// Released once the second sweep has found it held.
			select {
			case <-waiting.seen:
			case <-time.After(30 * time.Second):
				t.Fatal("the second sweep never said it waits for the lock")
			}
			if err := held.Release(testContext(t)); err != nil {
				t.Fatal(err)
			}
			sum := <-done
			if sum.LockWaitedFor != "first sweep" || sum.Queued != 1 {
				t.Errorf("summary %+v: want a sweep that waited for the first and then queued the pull", sum)
			}
		})
	})
	t.Run("a_crashed_holders_lock_expires", func(t *testing.T) {
		eachServer(t, func(t *testing.T, e *env) {
			e.repoWithPulls(t, r.Owner, r.Name, 1)
			// A holder that dies stops renewing: its context ends and
			// it never releases.
			crashCtx, crash := context.WithCancel(testContext(t))
			if _, err := e.store.Acquire(crashCtx, reconcile.LockOptions{Holder: "crashed sweep", TTL: 300 * time.Millisecond}); err != nil {
				t.Fatal(err)
			}
			crash()
			s, _ := e.sweeper(t, []events.Repo{r}, func(o *reconcile.Options, _ *reconcile.CacheOptions) {
				o.Lock = reconcile.LockOptions{Wait: 30 * time.Second, Poll: 20 * time.Millisecond}
			})

			sum := sweep(t, s)

			if sum.LockTakenOverFrom != "crashed sweep" || sum.Queued != 1 {
				t.Errorf("summary %+v: want the crashed sweep's lock taken over and the pull queued", sum)
			}
		})
	})
}

// noticing is a slog handler that closes seen when it first handles a
// record whose message is message, whichever logger derived from it logs.
type noticing struct {
	slog.Handler
	message string
	once    *sync.Once
	seen    chan struct{}
}

// Enabled is true at every level: the record looked for may be below the
// level the wrapped handler prints.
func (h *noticing) Enabled(context.Context, slog.Level) bool { return true }

func (h *noticing) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == h.message {
		h.once.Do(func() { close(h.seen) })
	}
	if !h.Handler.Enabled(ctx, r.Level) {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func (h *noticing) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.Handler = h.Handler.WithAttrs(attrs)
	return &c
}

func (h *noticing) WithGroup(name string) slog.Handler {
	c := *h
	c.Handler = h.Handler.WithGroup(name)
	return &c
}

func TestLockIsRenewedWhileHeld(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testContext(t)
	held, err := e.store.Acquire(ctx, reconcile.LockOptions{Holder: "long sweep", TTL: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer release(t, held)
	// Several TTLs later the holder, which renews every TTL/3, still
	// holds it. Time passing is the behaviour under test.
	time.Sleep(5 * time.Second)
	_, err = e.store.Acquire(ctx, reconcile.LockOptions{Holder: "next sweep"})
	var locked *reconcile.LockedError
	if !errors.As(err, &locked) || locked.Holder != "long sweep" {
		t.Errorf("error %v, want the lock still held by the long sweep", err)
	}
	select {
	case <-held.Lost():
		t.Error("the holder lost its lock")
	default:
	}
}
