package memrecords

import (
	"context"
	"fmt"
	"sync"

	"github.com/yourci/yourci/pkg/events"
)

// UpdateHeadSummary applies change to a copy of k's head summary (an
// empty one holding only k when there is none) and stores it with a new
// revision, as events.Records.UpdateHeadSummary does; an error from
// change stores nothing and is returned wrapped. change runs under the
// store's lock, once.
func (s *Store) UpdateHeadSummary(_ context.Context, k events.HeadKey, change func(*events.HeadSummary) error) (events.HeadSummary, error) {
	if err := k.Validate(); err != nil {
		return events.HeadSummary{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failing != nil {
		return events.HeadSummary{}, fmt.Errorf("updating head summary %s: %w", k, s.failing)
	}
	h := cloneHead(s.heads[k])
	h.Repo, h.Pull, h.SHA = k.Repo, k.Pull, k.SHA
	if err := change(&h); err != nil {
		return events.HeadSummary{}, fmt.Errorf("updating head summary %s: %w", k, err)
	}
	h.Version, h.Updated = events.Version, s.Now().UTC()
	h.Repo, h.Pull, h.SHA = k.Repo, k.Pull, k.SHA
	s.revision++
	h.Revision = s.revision
	s.heads[k] = h
	for w := range s.headWatchers {
		w.push(cloneHead(h))
	}
	return cloneHead(h), nil
}

// HeadSummary returns k's head summary, or an error wrapping
// events.ErrNoHeadSummary.
func (s *Store) HeadSummary(_ context.Context, k events.HeadKey) (events.HeadSummary, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.heads[k]
	if !ok {
		return events.HeadSummary{}, fmt.Errorf("reading head summary %s: %w", k, events.ErrNoHeadSummary)
	}
	return cloneHead(h), nil
}

// WatchHeadSummaries calls fn with every head summary stored now, then
// with every new revision, one call at a time, until ctx ends; then it
// returns nil.
func (s *Store) WatchHeadSummaries(ctx context.Context, fn func(events.HeadSummary)) error {
	w := &headWatcher{wake: make(chan struct{}, 1)}
	s.mu.Lock()
	for _, h := range s.heads {
		w.push(cloneHead(h))
	}
	s.headWatchers[w] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.headWatchers, w)
		s.mu.Unlock()
	}()
	for {
		for _, h := range w.take() {
			fn(h)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-w.wake:
		}
	}
}

// headWatcher queues the revisions one WatchHeadSummaries has yet to
// deliver.
type headWatcher struct {
	mu    sync.Mutex
	queue []events.HeadSummary
	wake  chan struct{}
}

func (w *headWatcher) push(h events.HeadSummary) {
	w.mu.Lock()
	w.queue = append(w.queue, h)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *headWatcher) take() []events.HeadSummary {
	w.mu.Lock()
	defer w.mu.Unlock()
	q := w.queue
	w.queue = nil
	return q
}

// cloneHead copies h so that neither the caller nor the store sees the
// other's later changes.
func cloneHead(h events.HeadSummary) events.HeadSummary {
	if h.Shown != nil {
		shown := *h.Shown
		h.Shown = &shown
	}
	return h
}
