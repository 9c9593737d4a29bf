// Package memrecords is an in-memory, state-based stand-in for the build
// records of pkg/events (events.Records): it keeps records and leases as
// the key-value store does, with the same compare-and-set, watch and
// lease semantics, so that what reads and changes records is tested in
// milliseconds without a NATS server. It is for tests and local tools;
// nothing survives the process.
package memrecords

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/yourci/yourci/pkg/events"
)

// Store keeps build records and leases in memory. Its methods may be
// called concurrently. The zero value is not usable: call New.
type Store struct {
	// Now is the clock leases are judged by; tests move it to let a
	// lease lapse. It must be set before the Store is used.
	Now func() time.Time

	mu       sync.Mutex
	records  map[events.BuildKey]events.BuildRecord
	heads    map[events.HeadKey]events.HeadSummary
	revision uint64
	leases   map[string]heldLease
	watchers map[*watcher]struct{}
	// headWatchers are the WatchHeadSummaries under way.
	headWatchers map[*headWatcher]struct{}
	// failing, while set, makes every change fail with it.
	failing error
}

type heldLease struct {
	holder string
	until  time.Time
}

// New returns an empty Store on the real clock.
func New() *Store {
	return &Store{Now: time.Now, records: map[events.BuildKey]events.BuildRecord{},
		heads: map[events.HeadKey]events.HeadSummary{}, leases: map[string]heldLease{},
		watchers: map[*watcher]struct{}{}, headWatchers: map[*headWatcher]struct{}{}}
}

// FailUpdates makes every UpdateBuild and UpdateHeadSummary fail with err until it is called
// with nil, as a store that cannot be reached would.
func (s *Store) FailUpdates(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failing = err
}

// UpdateBuild applies change to a copy of k's record (an empty one holding
// only k when there is none) and stores it with a new revision, as
// events.Records.UpdateBuild does; an error from change stores nothing
// and is returned wrapped. change runs under the store's lock, once.
func (s *Store) UpdateBuild(_ context.Context, k events.BuildKey, change func(*events.BuildRecord) error) (events.BuildRecord, error) {
	if err := k.Validate(); err != nil {
		return events.BuildRecord{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failing != nil {
		return events.BuildRecord{}, fmt.Errorf("updating build record %s: %w", k, s.failing)
	}
	rec, ok := s.records[k]
	if !ok {
		rec = events.BuildRecord{Key: k}
	}
	rec = clone(rec)
	if err := change(&rec); err != nil {
		return events.BuildRecord{}, fmt.Errorf("updating build record %s: %w", k, err)
	}
	rec.Version, rec.Key = events.Version, k
	rec.Updated = s.Now().UTC()
	if rec.Created.IsZero() {
		rec.Created = rec.Updated
	}
	s.revision++
	rec.Revision = s.revision
	s.records[k] = rec
	for w := range s.watchers {
		w.push(clone(rec))
	}
	return clone(rec), nil
}

// BuildRecord returns k's record, or an error wrapping events.ErrNoRecord.
func (s *Store) BuildRecord(_ context.Context, k events.BuildKey) (events.BuildRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.records[k]
	if !ok {
		return events.BuildRecord{}, fmt.Errorf("reading build record %s: %w", k, events.ErrNoRecord)
	}
	return clone(rec), nil
}

// WatchBuilds calls fn with every record stored now, then with every new
// revision, one call at a time, until ctx ends; then it returns nil.
func (s *Store) WatchBuilds(ctx context.Context, fn func(events.BuildRecord)) error {
	w := &watcher{wake: make(chan struct{}, 1)}
	s.mu.Lock()
	for _, rec := range s.records {
		w.push(clone(rec))
	}
	s.watchers[w] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.watchers, w)
		s.mu.Unlock()
	}()
	for {
		for _, rec := range w.take() {
			fn(rec)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-w.wake:
		}
	}
}

// TakeLease makes holder hold the lease called name for ttl, as
// events.Records.TakeLease does, on the Store's clock.
func (s *Store) TakeLease(_ context.Context, name, holder string, ttl time.Duration) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.Now()
	if l, ok := s.leases[name]; ok && l.holder != holder && now.Before(l.until) {
		return false, nil
	}
	s.leases[name] = heldLease{holder: holder, until: now.Add(ttl)}
	return true, nil
}

// DropLease gives up holder's lease called name.
func (s *Store) DropLease(_ context.Context, name, holder string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l, ok := s.leases[name]; ok && l.holder == holder {
		delete(s.leases, name)
	}
	return nil
}

// ErrUnreachable is what a test may pass to FailUpdates.
var ErrUnreachable = errors.New("record store unreachable")

// watcher queues the revisions one WatchBuilds has yet to deliver.
type watcher struct {
	mu    sync.Mutex
	queue []events.BuildRecord
	wake  chan struct{}
}

func (w *watcher) push(rec events.BuildRecord) {
	w.mu.Lock()
	w.queue = append(w.queue, rec)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *watcher) take() []events.BuildRecord {
	w.mu.Lock()
	defer w.mu.Unlock()
	q := w.queue
	w.queue = nil
	return q
}

// clone copies rec deeply enough that neither the caller nor the store
// sees the other's later changes.
func clone(rec events.BuildRecord) events.BuildRecord {
	tests := make([]events.TestRecord, len(rec.Tests))
	for i, t := range rec.Tests {
		t.Attempts = append([]events.AttemptRecord(nil), t.Attempts...)
		if t.Report != nil {
			r := *t.Report
			t.Report = &r
		}
		tests[i] = t
	}
	rec.Tests = tests
	rec.Shown = maps.Clone(rec.Shown)
	return rec
}

// RecentBuilds returns up to n of repo's records, the most recently
// updated first, as events.Records does.
func (s *Store) RecentBuilds(_ context.Context, repo events.Repo, n int) ([]events.BuildRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var recs []events.BuildRecord
	for k, rec := range s.records {
		if k.Repo == repo {
			recs = append(recs, clone(rec))
		}
	}
	slices.SortFunc(recs, func(a, b events.BuildRecord) int { return b.Updated.Compare(a.Updated) })
	if len(recs) > n {
		recs = recs[:n]
	}
	return recs, nil
}

// SetPullClosed marks every record of the pull request closed (or open
// again) and returns how many it changed, as events.Records does.
func (s *Store) SetPullClosed(ctx context.Context, repo events.Repo, pull int, closed bool) (int, error) {
	s.mu.Lock()
	var keys []events.BuildKey
	for k, rec := range s.records {
		if k.Repo == repo && k.Pull == pull && rec.Closed != closed {
			keys = append(keys, k)
		}
	}
	s.mu.Unlock()
	for i, k := range keys {
		if _, err := s.UpdateBuild(ctx, k, func(r *events.BuildRecord) error { r.Closed = closed; return nil }); err != nil {
			return i, err
		}
	}
	return len(keys), nil
}
