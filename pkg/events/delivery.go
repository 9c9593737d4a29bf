package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrSettled is returned when a delivery already acked, nak'ed or
// terminated is settled or marked in progress again.
var ErrSettled = errors.New("delivery already settled")

// Delivery is one delivery of a message to a handler: its decoded payload
// and the means to settle it. A handler settles it exactly once with Ack
// (done and reported), Nak (hand back, to be delivered again) or Term (can
// never succeed). A handler that returns without settling hands the
// message back as if it had called Nak(Options.HandBackDelay). Methods may
// be called from any goroutine.
type Delivery[T any] struct {
	// Payload is the decoded message, its Version already checked.
	Payload T
	// NumDelivered counts deliveries of this message, this one included.
	NumDelivered uint64
	// Published is when the message was stored in the stream.
	Published time.Time

	msg        jetstream.Msg
	maxDeliver int
	ackWait    time.Duration
	store      *store // for retry
	termReason bool
	log        *slog.Logger

	mu      sync.Mutex
	settled bool
	stops   []context.CancelFunc
}

func newDelivery[T any](s *store, msg jetstream.Msg, payload T, meta *jetstream.MsgMetadata) *Delivery[T] {
	return &Delivery[T]{
		Payload:      payload,
		NumDelivered: meta.NumDelivered,
		Published:    meta.Timestamp,
		msg:          msg,
		maxDeliver:   s.opts.MaxDeliver,
		ackWait:      s.opts.AckWait,
		store:        s,
		termReason:   serverAtLeast(s.nc.ConnectedServerVersion(), termReasonSince),
		log:          s.log,
	}
}

// LastChance reports whether this is the last delivery JetStream will make
// (NumDelivered has reached MaxDeliver): earlier deliveries crashed or were
// handed back. The handler should not try the work again, which may crash
// once more and lose the message for good, but report it as failed (an
// error status) and then Ack or Term.
func (d *Delivery[T]) LastChance() bool {
	return d.NumDelivered >= uint64(d.maxDeliver)
}

// MaxDeliver is how many deliveries JetStream makes of this message at
// most; the last of them is LastChance.
func (d *Delivery[T]) MaxDeliver() int { return d.maxDeliver }

// Settled reports whether Ack, Nak or Term has succeeded.
func (d *Delivery[T]) Settled() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.settled
}

// InProgress tells JetStream the work goes on, restarting the AckWait
// clock. KeepAlive calls it periodically.
func (d *Delivery[T]) InProgress() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.settled {
		return ErrSettled
	}
	if err := d.msg.InProgress(); err != nil {
		return fmt.Errorf("marking message in progress: %w", err)
	}
	return nil
}

// Ack marks the work done and waits (within ctx and Options.ElectionWait)
// for JetStream to confirm it, so that a nil return means the message will
// not be delivered again. While the consumer elects a leader the ack is
// sent again (see retry): acknowledging twice is harmless. Call it only
// once the result has been reported; a handler finishing after its own
// ctx ended may pass context.WithoutCancel(ctx). On error the delivery
// stays unsettled and Ack may be retried.
func (d *Delivery[T]) Ack(ctx context.Context) error {
	return d.settle(func() error { return d.store.retry(ctx, true, d.msg.DoubleAck) }, "acknowledging message")
}

// Nak hands the message back to be delivered again after delay (at once
// when delay is 0), to this or any other worker. Each Nak uses up one of
// MaxDeliver deliveries. A test job handed back is announced to every
// worker (announceDue), so an idle one takes it when it is due without
// asking the server in the meantime.
func (d *Delivery[T]) Nak(delay time.Duration) error {
	var err error
	if delay <= 0 {
		err = d.settle(d.msg.Nak, "handing message back")
	} else {
		err = d.settle(func() error { return d.msg.NakWithDelay(delay) }, "handing message back")
	}
	if err == nil {
		d.store.announceDue(d.msg.Subject(), max(delay, 0))
	}
	return err
}

// Term removes the message for good: it can never succeed. The reason is
// logged, and recorded in JetStream's advisory by servers that support it.
func (d *Delivery[T]) Term(reason string) error {
	err := d.settle(func() error { return term(d.msg, d.termReason, reason) }, "terminating message")
	if err == nil {
		d.log.Info("terminated message", "subject", d.msg.Subject(), "num_delivered", d.NumDelivered, "reason", reason)
	}
	return err
}

// term terminates msg, with the reason only where the server understands
// it: servers before 2.10.4 (Debian's 2.9.10) ignore "+TERM reason"
// entirely, so the message would stay pending and come back.
func term(msg jetstream.Msg, withReason bool, reason string) error {
	if withReason {
		return msg.TermWithReason(reason)
	}
	return msg.Term()
}

// termReasonSince is the first server version that accepts a reason with
// a Term.
var termReasonSince = [3]int{2, 10, 4}

// serverAtLeast reports whether a "major.minor.patch[-suffix]" version is
// at least want; an unparsable or empty version (not connected) is not.
func serverAtLeast(version string, want [3]int) bool {
	var got [3]int
	parts := strings.SplitN(version, ".", 3)
	if len(parts) != 3 {
		return false
	}
	for i, p := range parts {
		if i == 2 {
			p, _, _ = strings.Cut(p, "-")
		}
		n, err := strconv.Atoi(p)
		if err != nil {
			return false
		}
		got[i] = n
	}
	for i := range got {
		if got[i] != want[i] {
			return got[i] > want[i]
		}
	}
	return true
}

func (d *Delivery[T]) settle(op func() error, what string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.settled {
		return ErrSettled
	}
	if err := op(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	d.settled = true
	for _, stop := range d.stops {
		stop()
	}
	d.stops = nil
	return nil
}

// KeepAlive marks the delivery in progress every AckWait/3 until the
// returned stop is called, ctx is done, or the delivery is settled, so a
// handler running longer than AckWait keeps its message. A worker that
// dies stops sending, and the message goes to another worker after
// AckWait.
func (d *Delivery[T]) KeepAlive(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	d.mu.Lock()
	if d.settled {
		d.mu.Unlock()
		cancel()
		return cancel
	}
	d.stops = append(d.stops, cancel)
	d.mu.Unlock()

	go func() {
		t := time.NewTicker(d.ackWait / 3)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if err := d.InProgress(); errors.Is(err, ErrSettled) {
				return
			} else if err != nil {
				// The next tick tries again; AckWait allows two misses.
				d.log.Warn("keeping message alive", "err", err, "subject", d.msg.Subject())
			}
		}
	}()
	return cancel
}
