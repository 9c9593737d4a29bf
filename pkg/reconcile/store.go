package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/yourci/yourci/pkg/events"
)

// DefaultBucket is the JetStream key-value bucket holding what one sweep
// leaves for the next: cached GitHub answers with their ETags, what each
// repository's open pull requests looked like, and the sweep lock.
const DefaultBucket = "yci_reconcile"

// DefaultRecordTTL is how long an entry lives without being rewritten. A
// cached answer still in use is revalidated (304) without being rewritten,
// so it expires after this and costs one counted request to refresh; a week
// keeps that cost negligible while records of repositories and commits
// nobody sweeps any more disappear by themselves.
const DefaultRecordTTL = 7 * 24 * time.Hour

// defaultStoreTimeout bounds one key-value call, its tries through a NATS
// leader election included: a shorter bound would cut the bucket's own
// retry (events.DefaultElectionWait) short.
const defaultStoreTimeout = events.DefaultElectionWait

// StoreOptions configure OpenStore. The zero value gives the production
// settings.
type StoreOptions struct {
	// Bucket names the bucket; default DefaultBucket.
	Bucket string
	// Memory keeps the bucket in memory (tests only).
	Memory bool
	// Replicas on a NATS cluster; default 1.
	Replicas int
	// TTL is DefaultRecordTTL when zero.
	TTL time.Duration
	// Timeout bounds each key-value call; default events.DefaultElectionWait.
	Timeout time.Duration
}

// Store is the sweep's key-value bucket. It is safe for concurrent use and
// shared by every process that sweeps: its records are why the next cron
// run, a new process, can ask GitHub "has this changed?" instead of
// fetching everything again.
type Store struct {
	kv      jetstream.KeyValue
	timeout time.Duration
}

// Buckets creates a key-value bucket or updates it to match cfg, safely
// when several processes do so at once; events.Bus has it.
type Buckets interface {
	KeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error)
}

// OpenStore creates the bucket through buckets if needed (concurrent
// callers are safe) and returns a Store on it. It uses only key-value
// features nats-server 2.9 has: bucket-wide TTL, compare-and-set, no
// per-key TTL.
func OpenStore(ctx context.Context, buckets Buckets, opts StoreOptions) (*Store, error) {
	if opts.Bucket == "" {
		opts.Bucket = DefaultBucket
	}
	if opts.Replicas == 0 {
		opts.Replicas = 1
	}
	if opts.TTL == 0 {
		opts.TTL = DefaultRecordTTL
	}
	if opts.Timeout == 0 {
		opts.Timeout = defaultStoreTimeout
	}
	storage := jetstream.FileStorage
	if opts.Memory {
		storage = jetstream.MemoryStorage
	}
	cfg := jetstream.KeyValueConfig{
		Bucket:      opts.Bucket,
		Description: "YourCI reconcile: cached GitHub answers, swept pull requests, sweep lock",
		// Records are read-modify-written under compare-and-set, and
		// their past is of no use.
		History:  1,
		TTL:      opts.TTL,
		Storage:  storage,
		Replicas: opts.Replicas,
	}
	kv, err := buckets.KeyValue(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("setting up key-value bucket %s: %w", opts.Bucket, err)
	}
	return &Store{kv: kv, timeout: opts.Timeout}, nil
}

// errConflict reports a compare-and-set that lost to another writer.
var errConflict = errors.New("record changed meanwhile")

// get returns a key's value and revision; a missing or deleted key is nil
// with revision 0.
func (s *Store) get(ctx context.Context, key string) ([]byte, uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	entry, err := s.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("reading %s: %w", key, err)
	}
	return entry.Value(), entry.Revision(), nil
}

// put writes a key whatever it held.
func (s *Store) put(ctx context.Context, key string, value []byte) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if _, err := s.kv.Put(ctx, key, value); err != nil {
		return fmt.Errorf("writing %s: %w", key, err)
	}
	return nil
}

// swap writes a key if it is still at revision rev (absent when 0) and
// returns the new revision; otherwise it returns errConflict.
func (s *Store) swap(ctx context.Context, key string, value []byte, rev uint64) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var err error
	var next uint64
	if rev == 0 {
		next, err = s.kv.Create(ctx, key, value)
	} else {
		next, err = s.kv.Update(ctx, key, value, rev)
	}
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return 0, fmt.Errorf("writing %s: %w", key, errConflict)
	}
	if err != nil {
		return 0, fmt.Errorf("writing %s: %w", key, err)
	}
	return next, nil
}

// remove deletes a key if it is still at revision rev; a key changed
// meanwhile is left alone and reported as errConflict.
func (s *Store) remove(ctx context.Context, key string, rev uint64) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	err := s.kv.Delete(ctx, key, jetstream.LastRevision(rev))
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return fmt.Errorf("deleting %s: %w", key, errConflict)
	}
	if err != nil {
		return fmt.Errorf("deleting %s: %w", key, err)
	}
	return nil
}

// headMark remembers one pull request's head commit between sweeps.
type headMark struct {
	SHA string `json:"sha"`
	// Build is the build whose statuses were all final (Settled).
	Build int `json:"build,omitempty"`
	// Rebuilds counts repairs of this head (Rebuilds).
	Rebuilds int `json:"rebuilds,omitempty"`
}

// repoRecord is what a sweep leaves about one repository's open pull
// requests, keyed by pull number. Pulls no longer open are dropped at the
// next sweep, so the record stays as small as the list of open pulls.
type repoRecord struct {
	// Settled pulls have a head whose latest build ended with every yci
	// status final and no job queued: nothing about them can change
	// without a new build, which takes a new number, so the sweep skips
	// their statuses until BuildOf gives another number.
	Settled map[int]headMark `json:"settled,omitempty"`
	// Rebuilds counts repairs per head, bounding them.
	Rebuilds map[int]headMark `json:"rebuilds,omitempty"`
}

func newRepoRecord() repoRecord {
	return repoRecord{Settled: map[int]headMark{}, Rebuilds: map[int]headMark{}}
}

// repoKey is repo.<owner>.<name>, names encoded.
func repoKey(r events.Repo) string {
	return "repo." + events.EncodeToken(r.Owner) + "." + events.EncodeToken(r.Name)
}

// loadRepo reads a repository's record; a missing one is empty.
func (s *Store) loadRepo(ctx context.Context, r events.Repo) (repoRecord, error) {
	rec := newRepoRecord()
	data, _, err := s.get(ctx, repoKey(r))
	if err != nil || data == nil {
		return rec, err
	}
	if err := json.Unmarshal(data, &rec); err != nil {
		// A record this version cannot read costs a full sweep of the
		// repository, nothing more.
		return newRepoRecord(), nil
	}
	if rec.Settled == nil {
		rec.Settled = map[int]headMark{}
	}
	if rec.Rebuilds == nil {
		rec.Rebuilds = map[int]headMark{}
	}
	return rec, nil
}

// saveRepo writes a repository's record. Only the lock holder sweeps, so
// the last writer is the only writer.
func (s *Store) saveRepo(ctx context.Context, r events.Repo, rec repoRecord) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encoding record of %s: %w", r.FullName(), err)
	}
	return s.put(ctx, repoKey(r), data)
}
