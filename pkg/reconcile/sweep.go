// Package reconcile is the cron sweep that keeps every open pull request
// tested without webhooks: it lists the open pull requests of the
// configured repositories (or of every repository a GitHub App is
// installed on), queues a build for every head commit that has none,
// repairs lost builds and what GitHub shows of them from the build
// records, and cleans old builds out of a worker's workspace.
//
// A sweep costs little when nothing changed: every GitHub read is
// conditional on the ETag of the previous sweep's answer, kept in JetStream
// key-value (see Cache), and pull requests whose head commit's build ended
// are not looked at again until they change, except builds a projector
// shows, which are compared with GitHub on every sweep. Sweeps never
// overlap: each holds a lock in the same bucket (see Store.Acquire).
//
// A job is live while the JetStream stream holds its message: the stream
// is a work queue that keeps a message until a worker acknowledges the job
// as done and reported, so a job queued, running, or waiting for a retry is
// there, and a lost one is not (see Backlog). A build a projector shows
// (events.BuildRecord.Projected) is repaired through its record and never
// written to GitHub by the sweep (see actOnRecord): tests left unfinished
// for StaleAfter with no live job are ended in the record and the head
// built again (Rebuild), at most MaxRebuilds times, after which they end
// errored with the reason, since rebuilding what keeps vanishing would
// loop forever; and parts GitHub shows otherwise than the record (check
// runs under App auth, commit statuses otherwise) are marked for the
// projector to write again. A build recorded without a projector keeps
// the older repair from its commit statuses (see repair), which writes
// the error statuses itself because nothing else would.
package reconcile

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/status"
)

// Defaults for Options; the comment on each says why.
const (
	// DefaultStaleAfter is how long a test may stay unfinished (in its
	// record, or as a pending yci status) with no job in the queue before
	// the sweep repairs it. The queue check alone
	// decides whether a job is live; the age only keeps the sweep from
	// racing a worker that is between two steps, and two hours leaves no
	// doubt while still repairing within a working day.
	DefaultStaleAfter = 2 * time.Hour
	// DefaultMaxRebuilds bounds the rebuilds of one head commit: a build
	// that keeps vanishing would otherwise be rebuilt forever.
	DefaultMaxRebuilds = 2
)

// DeliverySweep is the Delivery of the events a sweep queues. It is the
// same for every sweep, so that the queue's message id (repository, pull,
// head, delivery) drops a second sweep's copy within the duplicate window;
// beyond it the sweep sees the first copy still queued, and the worker's
// build record stops any that slips through.
const DeliverySweep = "reconcile"

// Queue is what a sweep needs of JetStream; an events.Queue and an
// events.Registry have it together.
type Queue interface {
	// PublishPull returns nil once JetStream has stored the event.
	PublishPull(ctx context.Context, ev events.PullEvent) error
	// BuildOf returns the latest build of a head commit, false if none.
	BuildOf(ctx context.Context, repo events.Repo, pull int, sha string) (build int, ok bool, err error)
}

// Options are a Sweeper's parts and settings. GitHub, Queue, Backlog and
// Store are required, and Repositories or App.
type Options struct {
	GitHub GitHub
	// App is set for a GitHub App and nil for a token.
	App AppService
	// Repositories to sweep; empty sweeps every repository of every
	// installation of App.
	Repositories []events.Repo
	Queue        Queue
	Backlog      Backlog
	Store        *Store
	// Records, when set, has the build records of pull requests that
	// closed marked so (and of reopened ones unmarked), for the pages.
	Records Records
	// Requests, when set, reports the GitHub requests spent so far (a
	// Cache's Requests), for the summary.
	Requests func() RequestStats
	// StaleAfter is DefaultStaleAfter when zero.
	StaleAfter time.Duration
	// MaxRebuilds bounds the rebuilds of one head commit left pending
	// with no job. It means what the command's -max-rebuilds means: 0
	// never rebuilds and sets stale statuses to error at once, so unlike
	// the other options its zero value is not the default; callers set
	// DefaultMaxRebuilds. Negative is refused.
	MaxRebuilds int
	// Lock configures the sweep lock; its Holder is set from the sweep id.
	Lock LockOptions
	// StatusOptions tune the reporter of error statuses.
	StatusOptions []status.Option
	// Now is the clock used to age statuses; default time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Sweeper runs sweeps. Sweep may be called again (a new sweep each time)
// but not concurrently on one Sweeper; sweeps of different Sweepers, in
// any process, exclude each other through the lock.
type Sweeper struct {
	opts Options
	log  *slog.Logger
	// pageSize is GitHub's largest page, the fewest requests per
	// listing; tests shrink it to see several pages cheaply.
	pageSize int
}

// New checks the options and applies defaults.
func New(opts Options) (*Sweeper, error) {
	var errs []error
	if opts.GitHub == nil {
		errs = append(errs, errors.New("reconcile: no GitHub access"))
	}
	if opts.Queue == nil {
		errs = append(errs, errors.New("reconcile: no queue"))
	}
	if opts.Backlog == nil {
		errs = append(errs, errors.New("reconcile: no backlog"))
	}
	if opts.Store == nil {
		errs = append(errs, errors.New("reconcile: no key-value store"))
	}
	if len(opts.Repositories) == 0 && opts.App == nil {
		errs = append(errs, errors.New("reconcile: no repositories and no GitHub App to list them from"))
	}
	if opts.StaleAfter < 0 {
		errs = append(errs, fmt.Errorf("reconcile: stale-after %s is negative", opts.StaleAfter))
	}
	if opts.MaxRebuilds < 0 {
		errs = append(errs, fmt.Errorf("reconcile: max-rebuilds %d is negative; 0 means never rebuild", opts.MaxRebuilds))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if opts.StaleAfter == 0 {
		opts.StaleAfter = DefaultStaleAfter
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Sweeper{opts: opts, log: opts.Logger, pageSize: perPage}, nil
}

// errLockLost cancels a sweep whose lock was taken over.
var errLockLost = errors.New("lost the sweep lock")

// Sweep takes the lock (waiting up to Lock.Wait), sweeps every repository
// and returns what it did. The error is nil when every repository was
// swept; it wraps ErrLocked when the lock stayed held, is a
// *RateLimitedError (errors.As) when GitHub's limits stopped the sweep,
// wraps ErrIncomplete when some repository failed, and is ctx's error when
// ctx ended first. The Summary is filled in every case.
func (s *Sweeper) Sweep(ctx context.Context) (Summary, error) {
	sum := Summary{ID: newSweepID(time.Now()), Started: time.Now()}
	log := s.log.With("sweep", sum.ID)
	lockOpts := s.opts.Lock
	lockOpts.Holder = sum.ID + "@" + hostPID()
	lockOpts.Logger = log
	lock, err := s.opts.Store.Acquire(ctx, lockOpts)
	if err != nil {
		sum.Finished = time.Now()
		return sum, err
	}
	sum.LockTakenOverFrom, sum.LockWaitedFor = lock.TookOverFrom, lock.WaitedFor
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := lock.Release(rctx); err != nil {
			log.Warn("releasing the sweep lock", "err", err)
		}
	}()
	sctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		select {
		case <-lock.Lost():
			cancel(errLockLost)
		case <-sctx.Done():
		}
	}()

	before := s.requests()
	log.Info("sweep started")
	err = s.sweepAll(sctx, log, &sum)
	sum.Requests = s.requests()
	sum.Requests.Total -= before.Total
	sum.Requests.NotModified -= before.NotModified
	sum.Finished = time.Now()
	log.Info("sweep finished", sum.LogAttrs()...)
	if err != nil {
		return sum, err
	}
	if cause := context.Cause(sctx); cause != nil {
		return sum, errors.Join(cause, sum.Err())
	}
	return sum, sum.Err()
}

func (s *Sweeper) requests() RequestStats {
	if s.opts.Requests == nil {
		return RequestStats{}
	}
	return s.opts.Requests()
}

// sweepAll sweeps each target in turn, recording failures in sum. It
// returns an error only when the list of repositories itself could not be
// made.
func (s *Sweeper) sweepAll(ctx context.Context, log *slog.Logger, sum *Summary) error {
	targets, err := s.targets(ctx)
	if rl, ok := rateLimited(err, s.opts.Now()); ok {
		sum.Stopped = rl
		log.Warn("rate limit reached while listing repositories", "until", rl.Until)
		return nil
	}
	if err != nil {
		if ctx.Err() != nil {
			sum.Interrupted = true
			return nil
		}
		return fmt.Errorf("listing repositories: %w", err)
	}
	for i, t := range targets {
		name := t.repo.FullName()
		if ctx.Err() != nil {
			sum.Interrupted = true
			sum.NotReached = names(targets[i:])
			return nil
		}
		err := t.err
		if err == nil {
			err = s.sweepRepo(ctx, log.With("repo", name), t, sum)
		}
		if rl, ok := rateLimited(err, s.opts.Now()); ok {
			rl.Repo = name
			sum.Stopped = rl
			sum.NotReached = names(targets[i+1:])
			log.Warn("stopping at GitHub's rate limit", "repo", name, "until", rl.Until, "remaining", rl.Remaining)
			return nil
		}
		if ctx.Err() != nil {
			sum.Interrupted = true
			sum.NotReached = names(targets[i:])
			return nil
		}
		if err != nil {
			log.Error("sweeping repository failed", "repo", name, "err", err)
			sum.Failed = append(sum.Failed, RepoError{Repo: name, Err: err})
			continue
		}
		sum.Repositories++
	}
	return nil
}

func names(ts []target) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.repo.FullName()
	}
	return out
}

// newSweepID is the start time and a random suffix, sortable and unique.
func newSweepID(now time.Time) string {
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		// crypto/rand does not fail on supported systems; the time alone
		// still names the sweep.
		return now.UTC().Format("20060102T150405Z")
	}
	return now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b)
}

func hostPID() string {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown-host"
	}
	return fmt.Sprintf("%s:%d", host, os.Getpid())
}
