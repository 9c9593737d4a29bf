package events

// This file sets up what a Bus uses on the server: its stream, consumers
// and buckets, each created or checked at Connect.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/yourci/yourci/pkg/pause"
)

// setupAttempts bounds retries of stream and consumer creation when another
// process creates the same objects at the same moment.
const setupAttempts = 5

// setup creates what the bus uses on the server, or checks what is
// there, in order: the job stream, the consumers, the bucket of build
// numbers, the bucket of build records and the bucket of running
// attempts. A publish-only bus consumes nothing and tracks no attempt: it
// sets up neither the consumers nor the running bucket.
func (b *Bus) setup(ctx context.Context) error {
	if err := b.setupStream(ctx); err != nil {
		return err
	}
	if !b.opts.PublishOnly {
		if err := b.setupConsumers(ctx); err != nil {
			return err
		}
	}
	if err := b.setupBuckets(ctx); err != nil || b.opts.PublishOnly {
		return err
	}
	return b.setupRunning(ctx)
}

// storage is where the bus's stream and buckets keep their data: memory
// when Options.Memory asks, files otherwise.
func (b *Bus) storage() jetstream.StorageType {
	if b.opts.Memory {
		return jetstream.MemoryStorage
	}
	return jetstream.FileStorage
}

// setupStream creates or updates the job stream, retrying when another
// process sets it up at the same moment.
func (b *Bus) setupStream(ctx context.Context) error {
	cfg := jetstream.StreamConfig{
		Name:        b.opts.Stream,
		Description: "YourCI jobs: pull request events and test attempts",
		Subjects:    []string{PullSubjects, TestSubjects, CommandSubjects},
		// Each message is handled once, then removed.
		Retention:  jetstream.WorkQueuePolicy,
		Storage:    b.storage(),
		Replicas:   b.opts.Replicas,
		Duplicates: DuplicateWindow,
		Discard:    jetstream.DiscardOld,
	}
	return b.retrySetup(ctx, "stream "+b.opts.Stream, func(ctx context.Context) error {
		return b.ensureStream(ctx, cfg)
	})
}

// setupConsumers creates the durable consumers of pull events and
// commands, and drops the catch-all test consumer of older versions
// (tests are consumed per repository).
func (b *Bus) setupConsumers(ctx context.Context) error {
	var err error
	if b.pulls, err = b.ensureConsumer(ctx, PullConsumer, PullSubjects); err != nil {
		return err
	}
	if err := b.dropCatchAllTests(ctx); err != nil {
		return err
	}
	b.commands, err = b.ensureConsumer(ctx, CommandConsumer, CommandSubjects)
	return err
}

// setupBuckets opens the buckets every bus needs, publish-only or not:
// build numbers, kept for good, and build records, which expire
// RecordTTL after their last change.
func (b *Bus) setupBuckets(ctx context.Context) error {
	var err error
	b.kv, err = b.KeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      b.opts.Bucket,
		Description: "YourCI build numbers per pull request and head commit",
		// One revision per key: the record is read-modify-written under
		// compare-and-set and its past is of no use.
		History:  1,
		Storage:  b.storage(),
		Replicas: b.opts.Replicas,
	})
	if err != nil {
		return err
	}
	b.records, err = b.KeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      b.opts.RecordBucket,
		Description: "YourCI build records: every test's state and attempts, for pages and the summary status",
		History:     1, // compare-and-set, as above
		TTL:         b.opts.RecordTTL,
		Storage:     b.storage(),
		Replicas:    b.opts.Replicas,
	})
	return err
}

// setupRunning opens the bucket of attempts running now, whose entries
// expire RunningTTL after their worker last refreshed them.
func (b *Bus) setupRunning(ctx context.Context) error {
	var err error
	b.running, err = b.KeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      b.opts.RunningBucket,
		Description: "YourCI test attempts running now, one entry per attempt, kept fresh by its worker",
		History:     1,
		// A crashed worker's entries go away by themselves.
		TTL:      RunningTTL,
		Storage:  b.storage(),
		Replicas: b.opts.Replicas,
	})
	return err
}

func (b *store) ensureConsumer(ctx context.Context, name, filter string) (jetstream.Consumer, error) {
	cfg := jetstream.ConsumerConfig{
		Durable:       name,
		FilterSubject: filter,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       b.opts.AckWait,
		MaxDeliver:    b.opts.MaxDeliver,
		MaxAckPending: b.opts.MaxAckPending,
		// No BackOff: it would replace AckWait for redeliveries and make
		// a crashed worker's job wait longer each time, while the waits
		// that matter (retries) are chosen per job through NotBefore.
	}
	var cons jetstream.Consumer
	err := b.retrySetup(ctx, "consumer "+name, func(ctx context.Context) error {
		c, err := b.js.CreateOrUpdateConsumer(ctx, b.opts.Stream, cfg)
		cons = c
		return err
	})
	return cons, err
}

// dropCatchAllTests removes handle_test, the one consumer of every test
// job that earlier versions used: its filter overlaps the per-repository
// consumers', which a work-queue stream refuses. The jobs it held stay in
// the stream and go to the per-repository consumers; one an old worker is
// running when it goes is delivered again (its ack finds no consumer), so
// it may run twice, which costs time, never a wrong status.
func (b *Bus) dropCatchAllTests(ctx context.Context) error {
	return b.retrySetup(ctx, "removal of consumer "+TestConsumer, func(ctx context.Context) error {
		err := b.js.DeleteConsumer(ctx, b.opts.Stream, TestConsumer)
		if err == nil {
			b.log.Info("removed the catch-all test consumer of an earlier version", "consumer", TestConsumer)
		}
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			return nil
		}
		return err
	})
}

// retryableSetupError reports whether err, from one setup call made under
// ctx, is worth another try: an API error, or no answer within the call's
// own timeout while ctx itself is still live.
func retryableSetupError(ctx context.Context, err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return true
	}
	noAnswer := errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout)
	return noAnswer && ctx.Err() == nil
}

// ensureStream creates the stream cfg describes, or updates it when one of
// that name exists with another configuration (an upgrade). It creates
// first, where jetstream's CreateOrUpdateStream updates first: Debian's
// nats-server 2.9.10 crashes on an update that reaches a stream another
// process is still creating, while creating a stream that exists with the
// same configuration changes nothing on every version. So processes
// starting together on a fresh server never send an update.
func (b *Bus) ensureStream(ctx context.Context, cfg jetstream.StreamConfig) error {
	_, err := b.js.CreateStream(ctx, cfg)
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		_, err = b.js.UpdateStream(ctx, cfg)
	}
	return err
}

// ensureKeyValue is ensureStream for a key-value bucket.
func (b *Bus) ensureKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := b.js.CreateKeyValue(ctx, cfg)
	if errors.Is(err, jetstream.ErrBucketExists) {
		kv, err = b.js.UpdateKeyValue(ctx, cfg)
	}
	return kv, err
}

// retrySetup runs op until it succeeds, a few times at most. It retries
// JetStream API errors (two processes creating the same stream at once may
// see "already in use") and calls that got no answer in time: the embedded
// server has been seen to leave a creation racing others unanswered, about
// once in 600 concurrent starts, and every setup step is safe to repeat.
func (b *store) retrySetup(ctx context.Context, what string, op func(context.Context) error) error {
	var err error
	for attempt := 1; attempt <= setupAttempts; attempt++ {
		callCtx, cancel := context.WithTimeout(ctx, b.opts.Timeout)
		err = op(callCtx)
		cancel()
		if err == nil || !retryableSetupError(ctx, err) {
			break
		}
		b.log.Debug("setting up JetStream; trying again", "what", what, "attempt", attempt, "err", err)
		if err := pause.For(ctx, time.Duration(attempt)*50*time.Millisecond); err != nil {
			return fmt.Errorf("setting up %s: %w", what, err)
		}
	}
	if err != nil {
		return fmt.Errorf("setting up %s: %w", what, err)
	}
	return nil
}
