package status

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// Clock is the time a Budget keeps. AfterFunc runs f once d has passed
// (in its own goroutine or not) unless stop, called first, returns true.
type Clock interface {
	Now() time.Time
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) AfterFunc(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }

// Defaults of BudgetOptions.
const (
	DefaultHold            = 2 * time.Second
	DefaultSummaryInterval = 5 * time.Second
)

// BudgetOptions tune a Budget.
type BudgetOptions struct {
	// Hold is how long a Started state waits before it is sent, so that
	// the state that follows it within that time replaces it unsent
	// (default DefaultHold; negative sends every state at once).
	Hold time.Duration
	// SummaryInterval is the least time between two summary ("yci")
	// writes of one head (default DefaultSummaryInterval; negative
	// writes every change at once).
	SummaryInterval time.Duration
	// Clock is the time kept; nil is the real clock.
	Clock  Clock
	Logger *slog.Logger
}

// Budget spends one process's GitHub writes where they matter. GitHub's
// secondary limits make writes the ceiling of a CI's throughput, so every
// Reporter of a worker shares one Budget, which:
//
//   - holds a Started state for Hold and drops it when a later state of
//     the same context overtakes it, so a quick test costs its queued and
//     final states only;
//   - sends every other test state at once, and in order per context: an
//     older state never lands after a newer one;
//   - writes the summary context "yci" of a head only when it changed; a
//     final summary (the one branch protection waits for) is sent at once
//     and overtakes any pending one still waiting, while pending ones go
//     at most once per SummaryInterval: one too soon after another is sent
//     when the interval ends, in the background (the caller, a test
//     holding a worker slot, never waits for it), unless a newer one
//     overtakes it first. A quick head so costs two summary writes, its
//     first pending one and its final one;
//   - makes every write to an account wait out a rate limit (429, or 403
//     with Retry-After or X-RateLimit-Remaining 0) any of them met, final
//     states first.
//
// Only states the same job follows with another are ever dropped, so every
// context ends on its last state. The Budget is per process: two workers
// each hold and pace their own writes, which is safe because no state one
// of them holds can overtake one the other sent (a queued state and a
// retry's state are never held). It is safe for concurrent use; Close it
// when the process stops.
type Budget struct {
	clock   Clock
	hold    time.Duration
	gap     time.Duration
	log     *slog.Logger
	ctx     context.Context // ends at Close, stopping held states' sends
	stop    context.CancelFunc
	pending sync.WaitGroup // held states' timers and sends

	mu     sync.Mutex
	closed bool
	seq    uint64
	keys   map[string]*keyState
	lanes  map[string]*lane
	stats  BudgetStats
	// pruneAt is the number of keys at which idle ones are forgotten.
	pruneAt int
}

// BudgetStats counts what a Budget did with the states it was given.
type BudgetStats struct {
	// Sent is the states that reached the writer, Dropped those overtaken
	// before they were sent, Unchanged the summaries equal to the last
	// one sent, and Paused the rate limits that paused an account.
	Sent, Dropped, Unchanged, Paused int
}

// keyState is one context of one head: the order of its states and, for a
// summary, the last one sent.
type keyState struct {
	send   sync.Mutex // held while a state of this context is sent
	latest uint64     // newest state accepted (under Budget.mu)
	sent   uint64     // newest state sent (under send)
	held   func() bool
	refs   int

	// For summaries, under Budget.mu.
	last   *Status
	sentAt time.Time
}

// lane is one account's writes: paused until a time after a rate limit.
type lane struct {
	until   time.Time
	finals  int           // final states waiting for the pause to end
	changed chan struct{} // closed when finals or until change
}

// NewBudget returns a Budget with o's settings.
func NewBudget(o BudgetOptions) *Budget {
	b := &Budget{clock: o.Clock, hold: o.Hold, gap: o.SummaryInterval, log: o.Logger,
		keys: map[string]*keyState{}, lanes: map[string]*lane{}, pruneAt: minPrune}
	if b.clock == nil {
		b.clock = realClock{}
	}
	if b.hold == 0 {
		b.hold = DefaultHold
	}
	if b.gap == 0 {
		b.gap = DefaultSummaryInterval
	}
	if b.log == nil {
		b.log = slog.Default()
	}
	b.ctx, b.stop = context.WithCancel(context.Background())
	return b
}

// Stats returns the counters so far.
func (b *Budget) Stats() BudgetStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stats
}

// Close drops the states still held (each will be overtaken: a job stopped
// by shutdown reports so), stops the sends of held states under way, and
// waits for them. States given to Set after Close are sent at once.
func (b *Budget) Close() {
	b.mu.Lock()
	b.closed = true
	for _, k := range b.keys {
		b.dropHeldLocked(k)
	}
	b.mu.Unlock()
	b.stop()
	b.pending.Wait()
}

// deliverFunc sends one state with its Reporter's retries.
type deliverFunc func(ctx context.Context, s Status) error

// submit takes a cleaned state of a Reporter and sends it, holds it, or
// drops it, as the Budget's rules say.
func (b *Budget) submit(ctx context.Context, s Status, deliver deliverFunc) error {
	if s.Test == "" {
		return b.submitSummary(ctx, s, deliver)
	}
	b.mu.Lock()
	k, seq := b.acceptLocked(s.key())
	if s.Started && s.State == Pending && b.hold > 0 && !b.closed {
		k.refs++
		b.pending.Add(1)
		k.held = b.clock.AfterFunc(b.hold, func() {
			defer b.pending.Done()
			b.mu.Lock()
			current := k.latest == seq
			if current {
				k.held = nil
			}
			b.mu.Unlock()
			if current {
				if err := b.sendInOrder(b.ctx, s.key(), k, seq, s, deliver); err != nil {
					b.log.Warn("held state not sent", "repo", s.Owner+"/"+s.Repo, "sha", s.SHA, "test", s.Test, "err", err)
				}
			} else {
				b.release(s.key(), k)
			}
		})
		b.mu.Unlock()
		return nil
	}
	k.refs++
	b.mu.Unlock()
	return b.sendInOrder(ctx, s.key(), k, seq, s, deliver)
}

// minPrune is the least number of contexts remembered before idle ones
// are forgotten.
const minPrune = 1024

// acceptLocked numbers a new state of key, dropping the one held for it.
func (b *Budget) acceptLocked(key string) (*keyState, uint64) {
	if len(b.keys) >= b.pruneAt {
		b.pruneLocked()
	}
	k := b.keys[key]
	if k == nil {
		k = &keyState{}
		b.keys[key] = k
	}
	b.dropHeldLocked(k)
	b.seq++
	k.latest = b.seq
	return k, b.seq
}

// dropHeldLocked stops k's held state, if its timer has not fired yet.
func (b *Budget) dropHeldLocked(k *keyState) {
	if k.held == nil {
		return
	}
	if k.held() {
		b.stats.Dropped++
		k.refs--
		b.pending.Done()
	}
	k.held = nil
}

// sendInOrder sends state seq of key unless a newer one was sent first, one
// state of the context at a time, and then lets go of k.
func (b *Budget) sendInOrder(ctx context.Context, key string, k *keyState, seq uint64, s Status, deliver deliverFunc) error {
	defer b.release(key, k)
	k.send.Lock()
	defer k.send.Unlock()
	if k.sent > seq {
		b.count(func(st *BudgetStats) { st.Dropped++ })
		return nil
	}
	if err := deliver(ctx, s); err != nil {
		return err
	}
	k.sent = seq
	b.count(func(st *BudgetStats) { st.Sent++ })
	return nil
}

// release forgets k once nothing refers to it; a summary's record is kept
// while its interval runs.
func (b *Budget) release(key string, k *keyState) {
	b.mu.Lock()
	defer b.mu.Unlock()
	k.refs--
	if k.refs == 0 && k.held == nil && (k.last == nil || b.clock.Now().Sub(k.sentAt) >= b.gap) && b.keys[key] == k {
		delete(b.keys, key)
	}
}

// pruneLocked forgets every context nothing is sending or holding whose
// summary interval has run out, and sets the next pruning point.
func (b *Budget) pruneLocked() {
	now := b.clock.Now()
	for key, k := range b.keys {
		if k.refs == 0 && k.held == nil && (k.last == nil || now.Sub(k.sentAt) >= b.gap) {
			delete(b.keys, key)
		}
	}
	b.pruneAt = max(minPrune, 2*len(b.keys))
}

func (b *Budget) count(f func(*BudgetStats)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	f(&b.stats)
}

// submitSummary applies the summary's rules to s.
func (b *Budget) submitSummary(ctx context.Context, s Status, deliver deliverFunc) error {
	key := s.key()
	b.mu.Lock()
	trailing := false
	if k := b.keys[key]; k != nil && k.last != nil && b.gap > 0 {
		switch {
		case shownAlike(*k.last, s):
			b.stats.Unchanged++
			b.mu.Unlock()
			return nil
		case s.Final():
			// The last summary of a head is what branch protection and
			// people wait for: pacing it would only delay the answer, and
			// it overtakes (drops) any pending summary still waiting, so
			// the head's write count does not grow.
		case b.clock.Now().Sub(k.sentAt) < b.gap:
			// The caller is a test's handler holding a worker slot: it
			// must not wait out the interval, neither before its test
			// runs nor before its message is acked.
			trailing = !b.closed
		}
	}
	k, seq := b.acceptLocked(key)
	k.refs++
	wait := time.Duration(0)
	if k.last != nil && !s.Final() {
		wait = k.sentAt.Add(b.gap).Sub(b.clock.Now())
	}
	if trailing {
		// A summary too soon after another goes when the interval ends,
		// unless a newer one overtakes it first; the caller does not wait
		// for it.
		b.pending.Add(1)
		b.mu.Unlock()
		go func() {
			defer b.pending.Done()
			if err := b.summaryAfter(b.ctx, key, k, seq, s, wait, true, deliver); err != nil {
				b.log.Warn("summary not sent", "repo", s.Owner+"/"+s.Repo, "sha", s.SHA, "err", err)
			}
		}()
		return nil
	}
	b.mu.Unlock()
	return b.summaryAfter(ctx, key, k, seq, s, wait, false, deliver)
}

// summaryAfter sends summary state seq of key after wait, unless a newer
// state was accepted meanwhile; a late one is sent as it stands then.
func (b *Budget) summaryAfter(ctx context.Context, key string, k *keyState, seq uint64, s Status, wait time.Duration, late bool, deliver deliverFunc) error {
	if wait > 0 && b.gap > 0 {
		// Only pending summaries wait (a final one goes at once), so
		// one that Close cut short is not sent: the final one that
		// follows it is.
		if err := b.sleep(ctx, wait); err != nil {
			b.release(key, k)
			return err
		}
	}
	b.mu.Lock()
	overtaken := k.latest != seq
	b.mu.Unlock()
	if overtaken {
		b.count(func(st *BudgetStats) { st.Dropped++ })
		b.release(key, k)
		return nil
	}
	send := func(ctx context.Context, s Status) error {
		if err := deliver(ctx, s); err != nil {
			return err
		}
		b.mu.Lock()
		k.last, k.sentAt = &s, b.clock.Now()
		b.mu.Unlock()
		return nil
	}
	if late && s.Latest != nil {
		return b.sendInOrder(ctx, key, k, seq, s, func(ctx context.Context, s Status) error {
			return sendLatest(ctx, key, s, send)
		})
	}
	return b.sendInOrder(ctx, key, k, seq, s, send)
}

// latestRounds bounds how often a late summary is sent again because the
// summary it was made from changed while it was sent.
const latestRounds = 3

// sendLatest sends, for a summary sent late, the summary as it stands at
// the moment of sending (Status.Latest), then again while that changes.
func sendLatest(ctx context.Context, key string, s Status, send deliverFunc) error {
	latest := s.Latest
	var sent *Status
	for range latestRounds {
		if fresh, err := latest(ctx); err == nil && fresh.key() == key {
			s = fresh
		}
		if sent != nil && shownAlike(*sent, s) {
			return nil
		}
		if err := send(ctx, s); err != nil {
			return err
		}
		sent = &s
	}
	return nil
}

// shownAlike reports whether GitHub would show a and b the same.
func shownAlike(a, b Status) bool {
	return a.State == b.State && a.Description == b.Description && a.TargetURL == b.TargetURL && a.Conclusion == b.Conclusion
}

// sleep waits d on the Budget's clock, or until ctx ends.
func (b *Budget) sleep(ctx context.Context, d time.Duration) error {
	done := make(chan struct{})
	stop := b.clock.AfterFunc(d, func() { close(done) })
	defer stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-done:
		return nil
	}
}

// laneLocked is the lane of an account.
func (b *Budget) laneLocked(account string) *lane {
	l := b.lanes[account]
	if l == nil {
		l = &lane{changed: make(chan struct{})}
		b.lanes[account] = l
	}
	return l
}

// changedLocked wakes every write waiting on l.
func (l *lane) changedLocked() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// pause holds every write to account for d from now, as GitHub asked.
func (b *Budget) pause(account string, d time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	l := b.laneLocked(account)
	if until := b.clock.Now().Add(d); until.After(l.until) {
		l.until = until
		b.stats.Paused++
		l.changedLocked()
	}
}

// waitTurn returns when a write to account may go: once the account's
// pause is over and, for a state that is not final, once no final state
// waits for it. The caller calls done once its write is over, so that a
// final state that waited keeps the others back until it is sent. A pause
// longer than maxWait is a *RetryLaterError at once, so that the job goes
// back to the queue instead of holding a worker.
func (b *Budget) waitTurn(ctx context.Context, account string, final bool, maxWait time.Duration) (done func(), err error) {
	registered := false
	done = func() {
		if registered {
			b.mu.Lock()
			l := b.laneLocked(account)
			l.finals--
			l.changedLocked()
			b.mu.Unlock()
			registered = false
		}
	}
	for {
		b.mu.Lock()
		l := b.laneLocked(account)
		wait := l.until.Sub(b.clock.Now())
		if final && wait > 0 && !registered {
			registered = true
			l.finals++
		}
		blocked := !final && l.finals > 0
		changed := l.changed
		b.mu.Unlock()
		if wait > maxWait {
			done()
			return func() {}, &RetryLaterError{After: wait, Err: errPaused}
		}
		if wait <= 0 && !blocked {
			return done, nil
		}
		if err := b.waitChange(ctx, wait, changed); err != nil {
			done()
			return func() {}, err
		}
	}
}

// waitChange waits d (when positive) or until changed is closed or ctx ends.
func (b *Budget) waitChange(ctx context.Context, d time.Duration, changed <-chan struct{}) error {
	var timer chan struct{}
	if d > 0 {
		timer = make(chan struct{})
		stop := b.clock.AfterFunc(d, func() { close(timer) })
		defer stop()
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer:
	case <-changed:
	}
	return nil
}

// errPaused is why a write waits: an earlier one met a rate limit.
var errPaused = errors.New("GitHub's rate limit paused writes to this account")
