package worker

import (
	"context"
	"errors"
	"sync"

	"github.com/yourci/yourci/pkg/events"
)

// staleError is why a running test was stopped: its pull request moved on
// to newSHA, or closed (newSHA empty).
type staleError struct{ reason, newSHA string }

func (e staleError) Error() string { return e.reason }

// runningTests lets head announcements reach the tests of older heads
// running on this worker.
type runningTests struct {
	mu    sync.Mutex
	tests map[pullKey]map[*runningTest]struct{}
}

type pullKey struct {
	repo   events.Repo
	number int
}

type runningTest struct {
	sha    string
	cancel context.CancelCauseFunc
}

// start registers a test of job and returns the context it runs under and
// the function that unregisters it.
func (r *runningTests) start(ctx context.Context, job events.TestJob) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	key := pullKey{job.Repo, job.Number}
	t := &runningTest{sha: job.HeadSHA, cancel: cancel}
	r.mu.Lock()
	if r.tests == nil {
		r.tests = map[pullKey]map[*runningTest]struct{}{}
	}
	if r.tests[key] == nil {
		r.tests[key] = map[*runningTest]struct{}{}
	}
	r.tests[key][t] = struct{}{}
	r.mu.Unlock()
	return ctx, func() {
		r.mu.Lock()
		delete(r.tests[key], t)
		if len(r.tests[key]) == 0 {
			delete(r.tests, key)
		}
		r.mu.Unlock()
		cancel(nil)
	}
}

// HeadChanged stops this worker's running tests of a pull request whose
// head is no longer theirs (unless Options.KeepSuperseded), or that
// closed, and of a merge group that was destroyed. Their statuses say
// why, a superseded test in the same words as one dropped before it ran
// (status.Superseded). It is safe to call from any goroutine.
func (w *Worker) HeadChanged(a events.HeadAnnouncement) {
	if w.opts.KeepSuperseded && !a.Closed {
		return
	}
	stale := staleError{reason: "superseded by " + a.SHA, newSHA: a.SHA}
	switch {
	case a.Closed && events.IsGroup(a.Number):
		stale = staleError{reason: groupDestroyed}
	case a.Closed:
		stale = staleError{reason: "pull request closed"}
	}
	w.running.mu.Lock()
	defer w.running.mu.Unlock()
	for t := range w.running.tests[pullKey{a.Repo, a.Number}] {
		if a.Closed || t.sha != a.SHA {
			t.cancel(stale)
		}
	}
}

// staleCause returns why ctx was cancelled for a stale head, if it was.
func staleCause(ctx context.Context) (staleError, bool) {
	var stale staleError
	ok := errors.As(context.Cause(ctx), &stale)
	return stale, ok
}
