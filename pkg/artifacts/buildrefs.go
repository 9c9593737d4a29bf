package artifacts

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// refsKeptFor is how long a build's refs are kept after its first checkout
// on this box: long enough for its tests, queued together, to find them;
// short enough that a build the cleanup could remove (days old) is never
// served from here, so a checkout made after its pin was removed pins
// again.
const refsKeptFor = time.Minute

// refsKept bounds how many builds' refs are kept at once: a repository's
// branches and tags can be many.
const refsKept = 128

// buildRefs remembers, per build, the mirror's branches and tags as the
// build's first checkout on this box listed them, once its commit was
// pinned: the other checkouts of the build (one per test) take them from
// here rather than locking the mirror and running git to list them again.
// The zero value is ready; it is safe for concurrent use.
type buildRefs struct {
	mu    sync.Mutex
	kept  map[string]keptRefs
	order []string // keys, oldest first
	// listing holds a channel per build whose refs one checkout is
	// listing; it is closed when that checkout is done.
	listing map[string]chan struct{}
}

type keptRefs struct {
	sha  string
	refs []byte // for-each-ref's "<id> <ref>" lines
	at   time.Time
}

func refsKey(mirror, pin string) string { return mirror + "\x00" + pin }

// get returns the refs kept for pin of mirror when they were listed for
// sha less than refsKeptFor before now.
func (r *buildRefs) get(mirror, pin, sha string, now time.Time) ([]byte, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k, ok := r.kept[refsKey(mirror, pin)]
	if !ok || k.sha != sha || now.Sub(k.at) >= refsKeptFor || now.Before(k.at) {
		return nil, false
	}
	return k.refs, true
}

// list waits while another checkout lists pin's refs (the tests of a
// build, delivered together, would otherwise all list them), then returns
// the refs kept for pin at sha, or, with ok false, a done function the
// caller must call once it has listed them (put) or failed to.
func (r *buildRefs) list(ctx context.Context, mirror, pin, sha string) (refs []byte, ok bool, done func(), err error) {
	key := refsKey(mirror, pin)
	for {
		if refs, ok := r.get(mirror, pin, sha, time.Now()); ok {
			return refs, true, nil, nil
		}
		r.mu.Lock()
		wait, busy := r.listing[key]
		if !busy {
			if r.listing == nil {
				r.listing = make(map[string]chan struct{})
			}
			ch := make(chan struct{})
			r.listing[key] = ch
			r.mu.Unlock()
			return nil, false, func() {
				r.mu.Lock()
				delete(r.listing, key)
				r.mu.Unlock()
				close(ch)
			}, nil
		}
		r.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, false, nil, fmt.Errorf("waiting for the refs of %s: %w", pin, ctx.Err())
		}
	}
}

// put keeps refs, listed at now with pin at sha, forgetting the oldest
// build's once refsKept are kept.
func (r *buildRefs) put(mirror, pin, sha string, refs []byte, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.kept == nil {
		r.kept = make(map[string]keptRefs)
	}
	key := refsKey(mirror, pin)
	if _, ok := r.kept[key]; !ok {
		r.order = append(r.order, key)
	}
	r.kept[key] = keptRefs{sha: sha, refs: refs, at: now}
	for len(r.order) > refsKept {
		delete(r.kept, r.order[0])
		r.order = r.order[1:]
	}
}

// forget drops what is kept for pin of mirror: the pin is gone.
func (r *buildRefs) forget(mirror, pin string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.kept, refsKey(mirror, pin))
}
