package projector

import (
	"errors"
	"sync"
	"time"

	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/status"
)

// target is one thing the projector shows: a build's record, or (head
// set) a head commit's summary before its build.
type target struct {
	build events.BuildKey
	head  events.HeadKey
}

func (t target) isHead() bool { return t.head.SHA != "" }

// pull is t's repository and pull request.
func (t target) pull() (events.Repo, int) {
	if t.isHead() {
		return t.head.Repo, t.head.Pull
	}
	return t.build.Repo, t.build.Pull
}

// schedule is what the projector owes GitHub and when: the targets with
// something to show, when each is next due, which are being written, how
// often each has failed (its backoff) and the latest revision the watch
// delivered of each. It decides; it writes nothing. Its methods may be
// called concurrently.
type schedule struct {
	// parallel bounds the targets being written at once.
	parallel int
	// firstBackoff and maxBackoff bound the growing wait after a failure.
	firstBackoff, maxBackoff time.Duration
	// wake is signalled when a target may have become due: Run's loop
	// waits on it.
	wake chan struct{}

	mu sync.Mutex
	// owed are the targets with something to show, and when to look next.
	owed  map[target]time.Time
	busy  map[target]bool
	fails map[target]int
	// seen is the latest revision the watch delivered of each owed
	// target: a read that returns an older one came from a replica that
	// lags (a NATS cluster serves key-value reads from any replica) and is
	// read again, not taken for the truth.
	seen map[target]uint64
}

func newSchedule(parallel int, firstBackoff, maxBackoff time.Duration) *schedule {
	return &schedule{parallel: parallel, firstBackoff: firstBackoff, maxBackoff: maxBackoff,
		wake: make(chan struct{}, 1), owed: map[target]time.Time{}, busy: map[target]bool{},
		fails: map[target]int{}, seen: map[target]uint64{}}
}

// outcome is what a look at a target came to, for the schedule to act on.
type outcome struct {
	// again is when the target is owed another look; zero when nothing is
	// owed until the record changes.
	again time.Time
	// failed is why the look failed: the target is looked at again after
	// its backoff, and no sooner than GitHub asked; again is unset.
	failed error
	// done reports that the look went through (whatever it wrote): the
	// target's past failures are forgotten.
	done bool
}

// note records that the watch delivered revision rev of t, which owes
// GitHub a write or not. A target that owes is due at once, unless it is
// failing: then it keeps its backoff.
func (s *schedule) note(t target, rev uint64, owes bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rev > s.seen[t] {
		s.seen[t] = rev
	}
	if !owes {
		if !s.busy[t] {
			delete(s.owed, t)
			delete(s.fails, t)
			delete(s.seen, t)
		}
		return
	}
	if s.fails[t] == 0 {
		s.owed[t] = time.Time{} // at once; a failing target keeps its backoff
	} else if _, ok := s.owed[t]; !ok {
		s.owed[t] = time.Time{}
	}
	s.poke()
}

// poke wakes Run's loop; s.mu may be held.
func (s *schedule) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// take marks busy, and returns, every owed target due at now that is not
// being written and conflicts with none that is (see conflicts),
// as many as free slots allow, when leading; and how long until the next
// one is due (an hour when none is). A taken target is handed back with
// finish.
func (s *schedule) take(now time.Time, leading bool) (due []target, wait time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	wait = -1
	for k, at := range s.owed {
		if s.busy[k] || s.conflicts(k) {
			continue
		}
		if w := at.Sub(now); w > 0 || !leading {
			if w > 0 && (wait < 0 || w < wait) {
				wait = w
			}
			continue
		}
		if len(s.busy) >= s.parallel {
			continue // every slot is busy: a finished write pokes the loop
		}
		s.busy[k] = true
		delete(s.owed, k)
		due = append(due, k)
	}
	if wait < 0 {
		wait = time.Hour
	}
	return due, wait
}

// conflicts reports whether t must wait for a target being written: a
// head summary waits for every build of its pull request and a build for
// every head summary of it (builds among themselves do not wait). s.mu
// is held.
func (s *schedule) conflicts(t target) bool {
	repo, pull := t.pull()
	for b := range s.busy {
		if r, n := b.pull(); b.isHead() != t.isHead() && r == repo && n == pull {
			return true
		}
	}
	return false
}

// finish hands back k, taken by take, with what looking at it came to.
func (s *schedule) finish(k target, o outcome) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.busy, k)
	later := o.again
	switch {
	case o.failed != nil:
		later = s.backoff(k, retryAfter(o.failed))
	case o.done:
		delete(s.fails, k)
	}
	if !later.IsZero() {
		if at, ok := s.owed[k]; !ok || later.Before(at) {
			s.owed[k] = later
		}
	}
	s.poke()
}

// retryAfter is how long GitHub asked to wait after err, 0 when it did
// not (status.RetryLaterError).
func retryAfter(err error) time.Duration {
	var later *status.RetryLaterError
	if errors.As(err, &later) {
		return later.After
	}
	return 0
}

// backoff counts a failed look at k and returns when to look again:
// doubling from firstBackoff to maxBackoff, and no sooner than after,
// GitHub's own word on when to come back. s.mu is held.
func (s *schedule) backoff(k target, after time.Duration) time.Time {
	s.fails[k]++
	wait := s.firstBackoff
	for i := 1; i < s.fails[k] && wait < s.maxBackoff; i++ {
		wait *= 2
	}
	wait = max(min(wait, s.maxBackoff), after)
	return time.Now().Add(wait)
}

// dueNow makes every owed target due at once: a projector that gains the
// lease shows what its predecessor left unshown.
func (s *schedule) dueNow() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.owed {
		s.owed[k] = time.Time{}
	}
	s.poke()
}

// pending returns every owed target, due or not.
func (s *schedule) pending() []target {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]target, 0, len(s.owed))
	for k := range s.owed {
		out = append(out, k)
	}
	return out
}

// seenRevision is the latest revision of t the watch delivered, 0 when
// none is known.
func (s *schedule) seenRevision(t target) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seen[t]
}
