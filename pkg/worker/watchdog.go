package worker

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"
)

// Default deadlines of a handler: preparing one head commit (mirror,
// checkout, .yci.py, queueing its tests) and carrying out one comment's
// commands. Each git and python command within has its own, shorter one.
const (
	DefaultPrepareTimeout = 10 * time.Minute
	DefaultCommandTimeout = 5 * time.Minute
	// stuckGrace is how long a handler may take to return once its
	// deadline cancelled it before the watchdog calls it stuck and frees
	// its slot.
	stuckGrace = 30 * time.Second
)

// ErrStuck is the error of a handler that did not return within its
// grace after its deadline cancelled it: it ignores cancellation (blocked
// in a system call, or a bug). Its goroutine is left behind, and stays
// listed by Watchdog.Stuck until it returns.
var ErrStuck = errors.New("handler ignored its deadline")

// StuckJob is a handler running past its deadline.
type StuckJob struct {
	// Slot names the handler's slot: its kind and a number unique within
	// the process ("pull 3", "command 7").
	Slot string
	// Job names the work: repository, pull request and commit.
	Job string
	// Since is when the handler started; Deadline when it should have ended.
	Since, Deadline time.Time
}

func (s StuckJob) String() string {
	return fmt.Sprintf("slot %s stuck: %s, running since %s (deadline %s)",
		s.Slot, s.Job, s.Since.UTC().Format(time.RFC3339), s.Deadline.UTC().Format(time.RFC3339))
}

// Watchdog keeps the handlers running now with their deadlines, so a
// health check can name one stuck past it even when it ignores
// cancellation. Its methods may be called concurrently; the zero value is
// not usable, use NewWatchdog.
type Watchdog struct {
	mu    sync.Mutex
	next  uint64
	slots map[uint64]StuckJob
	now   func() time.Time
}

// NewWatchdog returns a watchdog with no handler running.
func NewWatchdog() *Watchdog {
	return &Watchdog{slots: map[uint64]StuckJob{}, now: time.Now}
}

// begin records a handler of kind starting now on job with deadline
// limit; the returned func records its end.
func (wd *Watchdog) begin(kind, job string, limit time.Duration) func() {
	wd.mu.Lock()
	defer wd.mu.Unlock()
	wd.next++
	id := wd.next
	now := wd.now()
	wd.slots[id] = StuckJob{Slot: fmt.Sprintf("%s %d", kind, id), Job: job, Since: now, Deadline: now.Add(limit)}
	return func() {
		wd.mu.Lock()
		defer wd.mu.Unlock()
		delete(wd.slots, id)
	}
}

// Stuck lists the handlers running past their deadline, oldest first; nil
// when there is none.
func (wd *Watchdog) Stuck() []StuckJob {
	wd.mu.Lock()
	defer wd.mu.Unlock()
	now := wd.now()
	var stuck []StuckJob
	for _, s := range wd.slots {
		if now.After(s.Deadline) {
			stuck = append(stuck, s)
		}
	}
	sort.Slice(stuck, func(i, j int) bool { return stuck[i].Since.Before(stuck[j].Since) })
	return stuck
}

// errDeadline is the cause of a handler's context when its deadline ends it.
var errDeadline = errors.New("handler deadline passed")

// guard runs work under a deadline of limit, listed in the watchdog as
// kind working on job. When the deadline passes, work's context is
// cancelled and its error wraps what says so ("<doing> took more than
// <limit>; stopped"); when work ignores the cancellation for grace more,
// guard returns ErrStuck (wrapped the same way) without waiting for it:
// the slot is freed, and the goroutine stays listed by Stuck until it
// returns. Work must not share memory with the caller that the caller
// reads after an ErrStuck. The error of ctx itself ending (shutdown) is
// work's own, unwrapped.
func (w *Worker) guard(ctx context.Context, kind, job, doing string, limit, grace time.Duration, work func(context.Context) error) error {
	end := w.watchdog.begin(kind, job, limit)
	wctx, cancel := context.WithTimeoutCause(ctx, limit, errDeadline)
	done := make(chan error, 1)
	go func() {
		defer cancel()
		err := work(wctx)
		end() // before the result: whoever has it finds the slot free
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil && ctx.Err() == nil && errors.Is(context.Cause(wctx), errDeadline) {
			w.opts.Metrics.handlerEnded(kind, "cancelled")
			return fmt.Errorf("%s took more than %s; stopped: %w", doing, limit, err)
		}
		return err
	case <-wctx.Done():
		if ctx.Err() == nil && !errors.Is(context.Cause(wctx), errDeadline) {
			// Neither the deadline nor the caller ended wctx: work
			// returned and its deferred cancel ran before this select
			// looked, so its result is waiting.
			return <-done
		}
	}
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case err := <-done:
		if ctx.Err() == nil {
			w.opts.Metrics.handlerEnded(kind, "cancelled")
			return fmt.Errorf("%s took more than %s; stopped: %w", doing, limit, err)
		}
		return err
	case <-timer.C:
		w.opts.Metrics.handlerEnded(kind, "stuck")
		w.log.Error("handler ignores its deadline; freeing its slot", "kind", kind, "job", job, "deadline", limit)
		return fmt.Errorf("%s took more than %s and did not stop: %w", doing, limit, ErrStuck)
	}
}

// Check returns an error naming every handler stuck past its deadline,
// for /healthz, or nil when there is none.
func (wd *Watchdog) Check() error {
	var errs []error
	for _, s := range wd.Stuck() {
		errs = append(errs, errors.New(s.String()))
	}
	return errors.Join(errs...)
}
