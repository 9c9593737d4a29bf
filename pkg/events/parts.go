package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// store is what the parts of a Bus share: the connection, the stream's
// consumers and the key-value buckets, all set up by New. Its methods are
// unexported helpers, so embedding it adds nothing to a part's API.
type store struct {
	opts     Options
	nc       *nats.Conn
	js       jetstream.JetStream
	pulls    jetstream.Consumer
	commands jetstream.Consumer // handle_command: comment commands
	kv       jetstream.KeyValue // build numbers, approvals, re-runs
	records  jetstream.KeyValue // build records, expiring
	running  jetstream.KeyValue // nil when PublishOnly
	log      *slog.Logger
}

// Queue is the work queue on the stream: it publishes pull events, test
// jobs and comment commands, and consumes each kind through worker slots,
// deferring jobs whose NotBefore lies ahead. Get it with Bus.Queue; all
// methods may be called concurrently.
type Queue struct{ *store }

// Registry keeps, per pull request, what must never be decided twice: the
// build number of each head commit and who claimed it, and when each head
// was first seen; its parts keep the rest of that kind: the approval of
// outside contributors' heads (Approvals), the numbers of re-runs
// (Reruns) and which handling runs a comment's commands or replies
// (Comments). Every change is compare-and-set in the build bucket, so
// concurrent workers agree. Get it with Bus.Registry; all methods may be
// called concurrently.
type Registry struct {
	*store
	Approvals
	Reruns
	Comments
}

// Approvals keeps the approval of an outside contributor's head commits
// by someone trusted, and whether one was asked for (approval.go). Get it
// with Bus.Registry; all methods may be called concurrently.
type Approvals struct{ *store }

// Reruns numbers the re-runs of a build's tests, once per /retest
// however often it is delivered (rerun.go). Get it with Bus.Registry; all
// methods may be called concurrently.
type Reruns struct{ *store }

// Comments decides, across boxes, which handling runs one text of a
// comment's commands and when YourCI may reply to a person (comments.go).
// Get it with Bus.Registry; all methods may be called concurrently.
type Comments struct{ *store }

// Records holds the build records (every test's state and attempts),
// which expire RecordTTL after their last change, and lets pages and the
// projector watch them; its parts hold the summaries of heads before
// their builds (HeadSummaries) and the leases that elect one projector
// (Leases), in the same bucket. Get it with Bus.Records; all methods may
// be called concurrently.
type Records struct {
	*store
	HeadSummaries
	Leases
}

// HeadSummaries holds the summary of each head commit before its build
// exists, and lets the projector watch them (headsummary.go). Get it with
// Bus.Records; all methods may be called concurrently.
type HeadSummaries struct{ *store }

// Leases are named, expiring holds on a role that one process of the
// fleet plays at a time, such as writing GitHub (shown.go). Get it with
// Bus.Records; all methods may be called concurrently.
type Leases struct{ *store }

// Attempts records the test attempts running now, each entry kept fresh by
// its worker and gone by itself RunningTTL after a crash. Get it with
// Bus.Attempts; it needs a Bus that is not PublishOnly.
type Attempts struct{ *store }

// Heads announces new head commits of pull requests to every worker, and
// watches those announcements, over plain NATS outside the stream. Get it
// with Bus.Heads; all methods may be called concurrently.
type Heads struct{ *store }

// Queue returns the work queue of b.
func (b *Bus) Queue() *Queue { return &Queue{b.store} }

// Registry returns the build number, approval and re-run registry of b.
func (b *Bus) Registry() *Registry {
	return &Registry{store: b.store, Approvals: Approvals{b.store}, Reruns: Reruns{b.store}, Comments: Comments{b.store}}
}

// Records returns the build records of b.
func (b *Bus) Records() *Records {
	return &Records{store: b.store, HeadSummaries: HeadSummaries{b.store}, Leases: Leases{b.store}}
}

// Attempts returns the running-attempt records of b.
func (b *Bus) Attempts() *Attempts { return &Attempts{b.store} }

// Heads returns the head announcements of b.
func (b *Bus) Heads() *Heads { return &Heads{b.store} }

// KeyValue creates the key-value bucket cfg describes, or updates it to
// match, on b's connection (whichever process starts first creates it;
// concurrent starts are safe). It is for the other processes' own state
// (reconcile's lock and cache), which lives beside YourCI's buckets but is
// not theirs to reach through the Bus. Its Get, Put, Create, Update and
// Delete ride out a leader election on a cluster (see electionProofKV).
func (b *Bus) KeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	var kv jetstream.KeyValue
	err := b.retrySetup(ctx, "key-value bucket "+cfg.Bucket, func(ctx context.Context) error {
		var err error
		kv, err = b.ensureKeyValue(ctx, cfg)
		return err
	})
	if err != nil {
		return nil, err
	}
	return electionProofKV{KeyValue: kv, s: b.store}, nil
}

// Queued calls fn with the subject and data of each message stored under
// subject (a filter; wildcards allowed), oldest first, without consuming
// any, until fn returns false or none is left. The stream is a work
// queue, which allows no second consumer, so it reads message by message
// (nats-server 2.9 and later); each read is bounded by Options.Timeout.
func (q *Queue) Queued(ctx context.Context, subject string, fn func(subject string, data []byte) bool) error {
	callCtx, cancel := q.callContext(ctx)
	stream, err := q.js.Stream(callCtx, q.opts.Stream)
	cancel()
	if err != nil {
		return fmt.Errorf("opening stream %s: %w", q.opts.Stream, err)
	}
	for seq := uint64(1); ; {
		callCtx, cancel := q.callContext(ctx)
		msg, err := stream.GetMsg(callCtx, seq, jetstream.WithGetMsgSubject(subject))
		cancel()
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading queued jobs on %s: %w", subject, err)
		}
		if !fn(msg.Subject, msg.Data) {
			return nil
		}
		seq = msg.Sequence + 1
	}
}
