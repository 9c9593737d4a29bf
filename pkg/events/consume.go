package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/yourci/yourci/pkg/pause"
)

// Slots is a concurrency limit shared by every Consume call it is given
// to: a message is fetched only once a slot is free and holds it until its
// handler returns. A worker gives its tests -j slots and its pull events
// slots of their own, so preparing a new push never waits for a test.
// Safe for concurrent use.
type Slots struct {
	sem chan struct{}
}

// NewSlots returns n slots; n below 1 counts as 1.
func NewSlots(n int) *Slots {
	return &Slots{sem: make(chan struct{}, max(n, 1))}
}

// Cap is the number of slots.
func (s *Slots) Cap() int { return cap(s.sem) }

// InUse is the number of slots taken right now.
func (s *Slots) InUse() int { return len(s.sem) }

func (s *Slots) acquire(ctx context.Context) error {
	select {
	case s.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Slots) release() { <-s.sem }

// Handler handles one delivery and settles it (see Delivery). ctx is
// cancelled Options.Grace after the consume context is, and the handler
// should then stop and hand the message back.
type Handler[T any] func(ctx context.Context, d *Delivery[T])

// ConsumePulls runs h for PullEvents from handle_pull, one message per free
// slot, until ctx is cancelled; then it stops fetching, waits for running
// handlers (see Options.Grace), and returns nil. Messages that cannot be
// decoded or carry an unknown Version are terminated without reaching h.
// It returns an error only when the connection is closed for good.
func (b *Queue) ConsumePulls(ctx context.Context, slots *Slots, h Handler[PullEvent]) error {
	return consume(ctx, b, single{b, b.pulls}, PullConsumer, slots, h, nil)
}

// ConsumeTests is ConsumePulls for TestJobs, taken fairly across
// repositories: each repository's jobs have a durable consumer of their
// own (TestConsumerFor, created on demand), first in, first out, and a
// free slot takes a job of the repository that holds the fewest slots on
// the whole fleet per its weight, then of the one this worker served
// longest ago (FairOrder), skipping repositories at their cap
// (Options.RepoLimits, which every worker must be given alike). A job
// delivered before its NotBefore does not reach h: it is handed back with
// a delay until NotBefore (in steps of at most Options.MaxNakDelay), and
// re-published as a fresh message when its delivery count nears
// MaxDeliver, so that a long wait never makes a job's last chance; while
// it waits it holds no slot. A free slot asks the server only for its job:
// the slots held are counted from a watch, and with nothing deliverable
// the slot waits for a notification (a job published or handed back, a
// capped repository's slot given back) instead of polling (see
// fairTests).
func (b *Queue) ConsumeTests(ctx context.Context, slots *Slots, h Handler[TestJob]) error {
	if b.running == nil {
		return fmt.Errorf("consuming %s: %w", TestConsumer, errPublishOnly)
	}
	callCtx, cancel := b.callContext(ctx)
	book, stopBook, err := watchHolds(callCtx, b.running, b.log)
	cancel()
	if err != nil {
		return fmt.Errorf("consuming %s: %w", TestConsumer, err)
	}
	defer stopBook()
	src := newFairTests(b, b.opts.RepoLimits, book)
	stop, err := src.listen()
	if err != nil {
		return err
	}
	defer stop()
	return consume(ctx, b, src, TestConsumer, slots, h, b.deferTest)
}

// source gives the consume loop one message at a time. next returns a
// message and the func to call once its handler has returned (nil for
// none), or no message after waiting a while (up to PollWait for a single
// consumer, until a notification for fairTests); it is called from one
// goroutine only.
type source interface {
	next(ctx context.Context) (jetstream.Msg, func(), error)
}

// single is the source of one durable consumer, first in, first out.
type single struct {
	q    *Queue
	cons jetstream.Consumer
}

func (s single) next(context.Context) (jetstream.Msg, func(), error) {
	msg, err := s.q.fetchOne(s.cons)
	return msg, nil, err
}

var errPublishOnly = errors.New("the bus was set up to publish only")

// early decides, before the handler, whether a delivery is not due yet
// and has been dealt with.
type early[T any] func(ctx context.Context, d *Delivery[T]) bool

func consume[T any](ctx context.Context, b *Queue, src source, name string,
	slots *Slots, h Handler[T], notYet early[T]) error {
	if slots == nil || h == nil {
		return fmt.Errorf("consuming %s: slots and handler are required", name)
	}
	if s, ok := src.(single); ok && s.cons == nil {
		return fmt.Errorf("consuming %s: %w", name, errPublishOnly)
	}
	hctx, stopHandlers := handlerContext(ctx, b.opts.Grace)
	defer stopHandlers()
	var wg sync.WaitGroup
	defer wg.Wait()

	for {
		if err := slots.acquire(ctx); err != nil {
			return nil
		}
		if ctx.Err() != nil {
			slots.release()
			return nil
		}
		msg, done, err := src.next(ctx)
		if done == nil {
			done = func() {}
		}
		if msg == nil {
			slots.release()
			if b.nc.IsClosed() {
				return fmt.Errorf("consuming %s: %w", name, nats.ErrConnectionClosed)
			}
			if err != nil {
				b.log.Warn("fetching message", "consumer", name, "err", err)
				if pause.For(ctx, b.opts.PollWait) != nil {
					return nil // ctx ended: stopping is what was asked
				}
			}
			if ctx.Err() != nil {
				return nil
			}
			continue
		}
		if ctx.Err() != nil {
			// Fetched while stopping: hand it straight back.
			if err := msg.Nak(); err != nil {
				b.log.Warn("handing back message fetched during shutdown", "consumer", name, "err", err)
			} else {
				b.announceDue(msg.Subject(), 0)
			}
			done()
			slots.release()
			return nil
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer slots.release()
			defer done()
			dispatch(hctx, b, msg, h, notYet)
		}()
	}
}

// fetchOne waits up to PollWait for one message. It does not give up on
// cancellation: a message the server sends to a pull request nobody reads
// any more would sit unseen until AckWait, so the caller hands it back.
func (b *Queue) fetchOne(cons jetstream.Consumer) (jetstream.Msg, error) {
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(b.opts.PollWait))
	if err != nil {
		return nil, fmt.Errorf("requesting a message: %w", err)
	}
	var got jetstream.Msg
	for msg := range batch.Messages() {
		got = msg
	}
	if got != nil {
		return got, nil
	}
	if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
		return nil, fmt.Errorf("waiting for a message: %w", err)
	}
	return nil, nil
}

// handlerContext keeps ctx's values and is cancelled grace after ctx is.
func handlerContext(ctx context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	hctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() {
		if grace <= 0 {
			cancel()
			return
		}
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-t.C:
			cancel()
		case <-hctx.Done():
		}
	})
	return hctx, func() {
		stop()
		cancel()
	}
}

// raceWait is how long a compare-and-set that lost its attempt-th race
// waits before reading again: a random part of attempt milliseconds, so
// that racing writers spread out.
func raceWait(attempt int) time.Duration {
	return time.Duration(rand.Int64N(int64(attempt) * int64(time.Millisecond)))
}

// dispatch decodes msg and runs h, recovering a panic into a hand-back.
func dispatch[T any](ctx context.Context, b *Queue, msg jetstream.Msg, h Handler[T], notYet early[T]) {
	log := b.log.With("subject", msg.Subject())
	meta, err := msg.Metadata()
	if err != nil {
		// Not a JetStream delivery at all; nothing to settle.
		log.Error("reading message metadata", "err", err)
		return
	}
	log = log.With("stream_seq", meta.Sequence.Stream, "num_delivered", meta.NumDelivered)
	payload, err := decode[T](msg.Data())
	if err != nil {
		log.Warn("terminating undecodable message", "err", err)
		if err := term(msg, serverAtLeast(b.nc.ConnectedServerVersion(), termReasonSince), err.Error()); err != nil {
			log.Error("terminating undecodable message", "err", err)
		}
		return
	}
	d := newDelivery(b.store, msg, payload, meta)
	if notYet != nil && notYet(ctx, d) {
		return
	}
	defer func() {
		if r := recover(); r != nil {
			log.Error("handler panicked; handing message back", "panic", r, "stack", string(debug.Stack()))
			handBack(log, d, b.opts.HandBackDelay)
			return
		}
		if !d.Settled() {
			log.Warn("handler returned without settling; handing message back")
			handBack(log, d, b.opts.HandBackDelay)
		}
	}()
	h(ctx, d)
}

func handBack[T any](log *slog.Logger, d *Delivery[T], delay time.Duration) {
	if err := d.Nak(delay); err != nil && !errors.Is(err, ErrSettled) {
		log.Error("handing message back", "err", err)
	}
}

// versioned is implemented by every payload type.
type versioned interface{ version() int }

func (e PullEvent) version() int { return e.Version }
func (j TestJob) version() int   { return j.Version }

// decode unmarshals a payload and checks its Version.
func decode[T any](data []byte) (T, error) {
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		return v, fmt.Errorf("decoding %T: %w", v, err)
	}
	if vv, ok := any(v).(versioned); ok && !knownVersion(vv.version()) {
		return v, fmt.Errorf("%T has version %d, this program knows %d to %d", v, vv.version(), Version, GroupVersion)
	}
	return v, nil
}
