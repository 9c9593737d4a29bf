package events

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"
)

// electionProofKV is a key-value bucket whose single-key calls ride out a
// leader election on a NATS cluster (see retry). Get and Put are repeated
// on any error a retry can help: reading twice, or writing the same value
// twice, ends the same. Create, Update and Delete are compare-and-set
// (Delete may carry a LastRevision), so they are repeated only when no
// server took them: the repeat of a write that was stored would fail as a
// conflict of its own making, and a caller's compare-and-set loop would
// apply its change twice (a build number skipped). Every other method is
// the bucket's own. Bus.KeyValue hands these out, so YourCI's buckets and
// reconcile's share the behaviour.
type electionProofKV struct {
	jetstream.KeyValue
	s *store
}

func (kv electionProofKV) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	var entry jetstream.KeyValueEntry
	err := kv.s.retry(ctx, true, func(ctx context.Context) error {
		var err error
		entry, err = kv.KeyValue.Get(ctx, key)
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

func (kv electionProofKV) Update(ctx context.Context, key string, value []byte, revision uint64) (uint64, error) {
	var rev uint64
	err := kv.s.retry(ctx, false, func(ctx context.Context) error {
		var err error
		rev, err = kv.KeyValue.Update(ctx, key, value, revision)
		return err
	})
	return rev, err
}

func (kv electionProofKV) Delete(ctx context.Context, key string, opts ...jetstream.KVDeleteOpt) error {
	return kv.s.retry(ctx, false, func(ctx context.Context) error {
		return kv.KeyValue.Delete(ctx, key, opts...)
	})
}
