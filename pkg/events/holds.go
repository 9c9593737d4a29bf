package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Slot holds in the running bucket: hold.<owner>.<repo>.<id>, one per test
// a worker took, so every worker counts the slots each repository holds
// fleet-wide. A capped repository's ids are 0 to MaxRunning-1, each
// created at most once (Create), which makes the cap strict; others take
// a random id. A holder refreshes its key every RunningRefresh and
// deletes it when the test's handler returns; a crashed worker's keys
// expire with the bucket's MaxAge (RunningTTL).
const holdPrefix = "hold."

func holdKey(r Repo, id string) string { return holdPrefix + repoTokens(r) + "." + id }

// repoOfHoldKey is the repository a hold key counts for.
func repoOfHoldKey(key string) (Repo, bool) {
	rest, ok := strings.CutPrefix(key, holdPrefix)
	if !ok {
		return Repo{}, false
	}
	i := strings.LastIndexByte(rest, '.')
	if i < 0 {
		return Repo{}, false
	}
	return repoOfTokens(rest[:i])
}

// holdRecord is a hold key's value, for operators reading the bucket.
type holdRecord struct {
	Since time.Time `json:"since"`
}

// holdBook counts the slots each repository holds on the whole fleet from
// one long watch of the hold keys, so that a free slot reads the counts
// without asking the server. A key its holder has not written for
// RunningTTL no longer counts: the bucket drops a dead holder's key
// without telling watchers. freed gets a value when a key is deleted (a
// slot given back). Safe for concurrent use.
type holdBook struct {
	mu    sync.Mutex
	keys  map[string]time.Time // hold key → when it was last written
	freed chan Repo
	now   func() time.Time
}

// watchHolds starts the book of kv's hold keys and returns once it holds
// every key there is (within ctx); stop ends the watch.
func watchHolds(ctx context.Context, kv jetstream.KeyValue, log *slog.Logger) (*holdBook, func(), error) {
	watchCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	w, err := kv.Watch(watchCtx, holdPrefix+">", jetstream.MetaOnly())
	if err != nil {
		cancel()
		return nil, nil, fmt.Errorf("watching the slots held: %w", err)
	}
	book := &holdBook{keys: map[string]time.Time{}, freed: make(chan Repo, 64), now: time.Now}
	ready, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for e := range w.Updates() {
			if e == nil {
				close(ready) // every key there was has been seen
				continue
			}
			book.apply(e.Key(), e.Operation())
		}
	}()
	stop := func() {
		if err := w.Stop(); err != nil && !errors.Is(err, context.Canceled) {
			log.Debug("stopping the watch of slots held", "err", err)
		}
		cancel()
		<-done
	}
	select {
	case <-ready:
		return book, stop, nil
	case <-done:
		stop()
		return nil, nil, errors.New("watching the slots held: the watch ended before it listed them")
	case <-ctx.Done():
		stop()
		return nil, nil, fmt.Errorf("watching the slots held: %w", ctx.Err())
	}
}

// apply records one change of a hold key.
func (b *holdBook) apply(key string, op jetstream.KeyValueOp) {
	r, ok := repoOfHoldKey(key)
	if !ok {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if op == jetstream.KeyValuePut {
		b.keys[key] = b.now()
		return
	}
	delete(b.keys, key)
	select {
	case b.freed <- r:
	default: // a wake is pending already; the counts are read afresh
	}
}

// held counts the live hold keys of each repository.
func (b *holdBook) held() map[Repo]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[Repo]int{}
	now := b.now()
	for key, at := range b.keys {
		if now.Sub(at) > RunningTTL {
			continue // its holder died; the bucket has dropped it
		}
		if r, ok := repoOfHoldKey(key); ok {
			out[r]++
		}
	}
	return out
}

// hold writes r's slot key id and keeps it fresh until the returned func
// is called, which deletes it. With exclusive, the key is created only if
// no one holds it, and hold returns nil when someone does. A failed write
// of an uncapped repository's key only skews the counts a little and is
// logged; a capped one's that fails for another reason than a holder is
// taken as held, as a cap must not be passed on a guess. An uncapped
// repository's key is written while its job starts, not before: the
// returned func waits for the write.
func (q *Queue) hold(ctx context.Context, r Repo, id string, exclusive bool) func() {
	kv, key := q.running, holdKey(r, id)
	data, err := json.Marshal(holdRecord{Since: time.Now().UTC()})
	if err != nil {
		panic(err) // a struct of a time cannot fail to encode
	}
	if exclusive {
		rev, err := kv.Create(ctx, key, data)
		if err != nil {
			if !errors.Is(err, jetstream.ErrKeyExists) {
				q.log.Warn("claiming a slot of a capped repository", "repo", r.FullName(), "key", key, "err", err)
			}
			return nil
		}
		return q.keepHeld(ctx, r, key, data, rev)
	}
	held := make(chan func(), 1)
	go func() {
		rev, err := kv.Put(ctx, key, data)
		if err != nil {
			q.log.Warn("recording a slot held", "repo", r.FullName(), "key", key, "err", err)
		}
		held <- q.keepHeld(ctx, r, key, data, rev)
	}()
	return func() { (<-held)() }
}

// keepHeld keeps r's hold key, written at revision rev, fresh until the
// returned func is called, which deletes it.
func (q *Queue) keepHeld(ctx context.Context, r Repo, key string, data []byte, rev uint64) func() {
	kv := q.running
	stop := keepFresh(ctx, func(ctx context.Context) error {
		next, err := kv.Update(ctx, key, data, rev)
		if err == nil {
			rev = next
		}
		return err
	}, func(err error) {
		q.log.Warn("refreshing a slot held", "repo", r.FullName(), "key", key, "err", err)
	})
	return func() {
		stop()
		if err := kv.Delete(context.WithoutCancel(ctx), key, jetstream.LastRevision(rev)); err != nil {
			q.log.Warn("giving a slot back; it expires by itself", "repo", r.FullName(), "key", key, "err", err)
		}
	}
}

// randomHoldID is the id of an uncapped repository's hold key.
func randomHoldID() string { return strconv.FormatUint(rand.Uint64(), 36) }

// heldSlots counts the hold keys of each repository in kv, with one watch
// that ends once it has listed them (Board.Shares).
func heldSlots(ctx context.Context, kv jetstream.KeyValue) (map[Repo]int, error) {
	out := map[Repo]int{}
	w, err := kv.Watch(ctx, holdPrefix+">", jetstream.IgnoreDeletes(), jetstream.MetaOnly())
	if err != nil {
		return nil, fmt.Errorf("counting slots held: %w", err)
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("counting slots held: %w", ctx.Err())
		case e := <-w.Updates():
			if e == nil {
				return out, nil
			}
			if r, ok := repoOfHoldKey(e.Key()); ok {
				out[r]++
			}
		}
	}
}
