package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The compare-and-set primitives every part of the Bus shares: loadJSON
// and storeJSON on the build bucket (kv), getEntry, putJSON and watch on
// the record bucket (records).

// loadJSON decodes the record at key into v and returns its revision; a
// missing record leaves v alone and has revision 0.
func (s *store) loadJSON(ctx context.Context, key string, v any) (uint64, error) {
	entry, err := s.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reading %s: %w", key, err)
	}
	if err := json.Unmarshal(entry.Value(), v); err != nil {
		return 0, fmt.Errorf("decoding %s: %w", key, err)
	}
	return entry.Revision(), nil
}

// errConflict is returned by storeJSON when another writer got there first.
var errConflict = errors.New("build record changed meanwhile")

// storeJSON writes rec (a pull, re-run or approval record) if the key is
// still at revision rev (absent when 0); otherwise it returns errConflict.
func (s *store) storeJSON(ctx context.Context, key string, rec any, rev uint64) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", key, err)
	}
	if rev == 0 {
		_, err = s.kv.Create(ctx, key, data)
	} else {
		_, err = s.kv.Update(ctx, key, data, rev)
	}
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return fmt.Errorf("writing %s: %w", key, errConflict)
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", key, err)
	}
	return nil
}

// getEntry reads key from the record bucket; absent is notFound.
func (s *store) getEntry(ctx context.Context, key string, notFound error) (jetstream.KeyValueEntry, error) {
	entry, err := s.records.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, notFound
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", key, err)
	}
	return entry, nil
}

// putJSON writes v, as JSON, under key if the key is still at revision
// (absent when 0): a compare-and-set. It returns the new revision, or an
// error wrapping errConflict when another writer came first.
func (s *store) putJSON(ctx context.Context, key string, v any, revision uint64) (uint64, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return 0, fmt.Errorf("encoding %s: %w", key, err)
	}
	var rev uint64
	if revision == 0 {
		rev, err = s.records.Create(ctx, key, data)
	} else {
		rev, err = s.records.Update(ctx, key, data, revision)
	}
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return 0, fmt.Errorf("writing %s: %w", key, errConflict)
	}
	if err != nil {
		return 0, fmt.Errorf("writing %s: %w", key, err)
	}
	return rev, nil
}

// Before reports whether a is an earlier attempt than attempt number of
// re-run rerun: re-runs follow the build's own run and one another.
func (a AttemptRecord) Before(rerun, number int) bool {
	if a.Rerun != rerun {
		return a.Rerun < rerun
	}
	return a.Number < number
}

// watch calls fn with every entry of the record bucket matching filter,
// stored now and then as it changes, as WatchBuilds describes; what names
// the entries in errors.
func (s *store) watch(ctx context.Context, filter, what string, fn func(jetstream.KeyValueEntry)) error {
	w, err := s.records.Watch(ctx, filter, jetstream.IgnoreDeletes())
	if err != nil {
		return fmt.Errorf("watching %s: %w", what, err)
	}
	defer s.stopWatch(w)
	for {
		select {
		case <-ctx.Done():
			return nil
		case entry, ok := <-w.Updates():
			if !ok && ctx.Err() != nil {
				return nil
			}
			if !ok {
				return fmt.Errorf("watching %s: %w", what, nats.ErrConnectionClosed)
			}
			if entry == nil {
				continue // the end of the stored entries; changes follow
			}
			fn(entry)
		}
	}
}

// stopWatch stops w; a connection already closed stopped it.
func (s *store) stopWatch(w jetstream.KeyWatcher) {
	if err := w.Stop(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		s.log.Warn("stopping build record watch", "err", err)
	}
}
