package statustest

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Clock is a test clock: Sleep records the wait and moves Now forward
// instead of blocking, so retry logic runs instantly and its waits can be
// asserted. It is safe for concurrent use.
type Clock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
	// OnSleep, when set, runs at each Sleep before time moves; a test uses it
	// to cancel a context or change what a server answers.
	OnSleep func(d time.Duration)

	timers    []*timer
	scheduled *sync.Cond
}

// NewClock returns a Clock reading start.
func NewClock(start time.Time) *Clock {
	return &Clock{now: start}
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Sleep records d and moves the clock forward by it, unless ctx has ended
// (then or during OnSleep), in which case it returns ctx.Err().
func (c *Clock) Sleep(ctx context.Context, d time.Duration) error {
	if c.OnSleep != nil {
		c.OnSleep(d)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sleeps = append(c.sleeps, d)
	c.now = c.now.Add(d)
	return nil
}

// Sleeps returns every wait Sleep was asked for, in order.
func (c *Clock) Sleeps() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.sleeps...)
}

// timer is a function AfterFunc scheduled.
type timer struct {
	at      time.Time
	f       func()
	stopped bool
}

// AfterFunc schedules f for when Advance moves the clock d or more past
// now. stop cancels it and reports whether it had not run yet. It gives
// the Clock the shape status.Clock asks for.
func (c *Clock) AfterFunc(d time.Duration, f func()) (stop func() bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &timer{at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	c.cond().Broadcast()
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if t.stopped {
			return false
		}
		t.stopped = true
		c.removeLocked(t)
		return true
	}
}

// Advance moves the clock forward by d and runs, in the caller's
// goroutine and in time order, every scheduled function that came due.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []*timer
	for _, t := range c.timers {
		if !t.at.After(c.now) {
			due = append(due, t)
		}
	}
	for _, t := range due {
		t.stopped = true
		c.removeLocked(t)
	}
	c.mu.Unlock()
	slices.SortStableFunc(due, func(a, b *timer) int { return a.at.Compare(b.at) })
	for _, t := range due {
		t.f()
	}
}

// WaitTimers blocks until at least n functions are scheduled, so that a
// test can Advance only once a goroutine it started is waiting.
func (c *Clock) WaitTimers(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.timers) < n {
		c.cond().Wait()
	}
}

// cond is signalled whenever a function is scheduled; c.mu must be held.
func (c *Clock) cond() *sync.Cond {
	if c.scheduled == nil {
		c.scheduled = sync.NewCond(&c.mu)
	}
	return c.scheduled
}

func (c *Clock) removeLocked(t *timer) {
	c.timers = slices.DeleteFunc(c.timers, func(x *timer) bool { return x == t })
}
