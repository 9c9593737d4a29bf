package events

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// electionProofKV is a key-value bucket whose single-key calls ride out a
// leader election on a NATS cluster (see retry), and whose Update is a
// compare-and-set that holds on a cluster of nats-server 2.9 (see
// Update), and whose Get on a replicated bucket reads what the leader
// has (see leaderGet). Get and Put are repeated on any error a retry can help:
// reading twice, or writing the same value twice, ends the same. Update
// is repeated too, as it tells its own earlier try from a rival's.
// Create and Delete are compare-and-set (Delete may carry a
// LastRevision), so they are repeated only when no server took them: the
// repeat of a write that was stored would fail as a conflict of its own
// making, and a caller's compare-and-set loop would apply its change
// twice (a build number skipped). Every other method is the bucket's
// own. Bus.KeyValue hands these out, so YourCI's buckets and reconcile's
// share the behaviour.
type electionProofKV struct {
	jetstream.KeyValue
	s *store
}

func (kv electionProofKV) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	var entry jetstream.KeyValueEntry
	err := kv.s.retry(ctx, true, func(ctx context.Context) error {
		var err error
		if kv.s.opts.Replicas > 1 {
			entry, err = kv.latest(ctx, key)
		} else {
			entry, err = kv.KeyValue.Get(ctx, key)
		}
		return err
	})
	return entry, err
}

func (kv electionProofKV) Put(ctx context.Context, key string, value []byte) (uint64, error) {
	var rev uint64
	err := kv.s.retry(ctx, true, func(ctx context.Context) error {
		var err error
		rev, err = kv.KeyValue.Put(ctx, key, value)
		return err
	})
	return rev, err
}

func (kv electionProofKV) Create(ctx context.Context, key string, value []byte, opts ...jetstream.KVCreateOpt) (uint64, error) {
	var rev uint64
	err := kv.s.retry(ctx, false, func(ctx context.Context) error {
		var err error
		rev, err = kv.KeyValue.Create(ctx, key, value, opts...)
		return err
	})
	return rev, err
}

// Update stores value under key if the key is still at revision, and
// returns the new revision; otherwise an error wrapping
// jetstream.ErrKeyRevisionMismatch.
//
// nats-server 2.9 checks a replicated stream's expected last sequence
// per subject only before it proposes a message, against what it has
// applied: two updates based on the same revision, in flight together,
// both pass and are both stored, the later erasing the earlier (fixed in
// 2.10). So each update also carries a message id made of the key and
// the revision it is based on, which the stream checks as it applies
// messages, on every version: of two updates based on one revision only
// the first is stored, and the other is answered as its duplicate (or,
// by servers that check the revision first, as a conflict).
//
// The id also makes Update safe to repeat after a try went unanswered (an
// election): if that try was stored, the repeat is answered as a
// duplicate of it, or as a conflict with the key now at it, and counts
// as this call's success when the value stored there is the one it
// wrote. A duplicate of another value is a conflict; a conflict whose
// latest value is another's, or a duplicate of a message since replaced,
// cannot be told from a stored try overwritten since, and Update returns
// errUpdateUnknown, which callers treat as a failed write.
func (kv electionProofKV) Update(ctx context.Context, key string, value []byte, revision uint64) (uint64, error) {
	var rev uint64
	if revision == 0 {
		// Checked as the message is applied on every version; repeated
		// only when no server took it, as Create.
		err := kv.s.retry(ctx, false, func(ctx context.Context) error {
			var err error
			rev, err = kv.KeyValue.Update(ctx, key, value, 0)
			return err
		})
		return rev, err
	}
	mayBeStored := false
	err := kv.s.retry(ctx, true, func(ctx context.Context) error {
		var err error
		rev, err = kv.update(ctx, key, value, revision, mayBeStored)
		if classify(err) == retryUnanswered {
			mayBeStored = true
		}
		return err
	})
	return rev, err
}

// errUpdateUnknown: an Update whose earlier try may have been stored
// found the key moved on past it, so whether that try was stored cannot
// be told.
var errUpdateUnknown = errors.New("key-value update may or may not have been stored")

// update is one try of Update; mayBeStored says an earlier try of the
// same call may have been stored.
func (kv electionProofKV) update(ctx context.Context, key string, value []byte, revision uint64, mayBeStored bool) (uint64, error) {
	subject := "$KV." + kv.Bucket() + "." + key
	msg := &nats.Msg{Subject: subject, Data: value, Header: nats.Header{}}
	ack, err := kv.s.js.PublishMsg(ctx, msg,
		jetstream.WithExpectLastSequencePerSubject(revision),
		jetstream.WithMsgID(updateID(key, revision)),
		jetstream.WithRetryAttempts(0), // retry paces the tries
	)
	var apiErr *jetstream.APIError
	wrongLast := errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
	switch {
	case err != nil && !wrongLast:
		return 0, err
	case err == nil && !ack.Duplicate:
		return ack.Sequence, nil
	}
	conflict := fmt.Errorf("%w: %s was updated since revision %d", jetstream.ErrKeyRevisionMismatch, key, revision)
	if err != nil {
		conflict = fmt.Errorf("%w: %w", jetstream.ErrKeyRevisionMismatch, err)
	}
	if !mayBeStored {
		return 0, conflict
	}
	// An earlier try may be what the server found: a duplicate names the
	// one write stored on revision; a wrong last sequence (servers that
	// check it first) only says the key moved on, perhaps through it.
	req := msgGetRequest{LastBySubject: subject}
	if !wrongLast {
		req = msgGetRequest{Seq: ack.Sequence}
	}
	stored, err := kv.leaderGet(ctx, req)
	switch {
	case err != nil:
		return 0, fmt.Errorf("reading back an update of %s: %w", key, err)
	case stored != nil && string(stored.Data) == string(value):
		return stored.Sequence, nil
	case stored != nil && !wrongLast:
		return 0, conflict
	}
	return 0, fmt.Errorf("%s since revision %d: %w", key, revision, errUpdateUnknown)
}

// updateID is the message id of an update of key based on revision: the
// same for every writer that read that revision.
func updateID(key string, revision uint64) string {
	return "kv-update:" + key + "@" + strconv.FormatUint(revision, 10)
}

func (kv electionProofKV) Delete(ctx context.Context, key string, opts ...jetstream.KVDeleteOpt) error {
	return kv.s.retry(ctx, false, func(ctx context.Context) error {
		return kv.KeyValue.Delete(ctx, key, opts...)
	})
}
