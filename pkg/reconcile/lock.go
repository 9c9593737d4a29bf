package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/yourci/yourci/pkg/pause"
)

// lockKey holds the sweep lock.
const lockKey = "lock.sweep"

// Lock defaults; the comment on each says why.
const (
	// DefaultLockTTL is how long a lock lives without renewal. The holder
	// renews it every third of that, so only a holder that crashed (or
	// lost NATS for that long) lets it expire; ten minutes is two cron
	// periods of five, so a crashed sweep delays the next ones by at most
	// that much.
	DefaultLockTTL = 10 * time.Minute
	// defaultLockPoll is how often a waiting sweep looks at the lock again.
	defaultLockPoll = 500 * time.Millisecond
)

// ErrLocked is wrapped by the error of a sweep that found the lock held by
// a live sweep and gave up waiting for it.
var ErrLocked = errors.New("another sweep holds the lock")

// LockedError says who holds the lock and until when.
type LockedError struct {
	Holder  string
	Expires time.Time
	Waited  time.Duration
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("%v: %s, until %s unless renewed (waited %s)",
		ErrLocked, e.Holder, e.Expires.UTC().Format(time.RFC3339), e.Waited.Round(time.Millisecond))
}

// Is makes errors.Is(err, ErrLocked) hold.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// lockRecord is the lock's value. Expiry is wall-clock time of the holder:
// boxes sharing a lock need clocks within a small part of the TTL of each
// other (NTP gives milliseconds).
type lockRecord struct {
	Holder   string    `json:"holder"`
	Acquired time.Time `json:"acquired"`
	Expires  time.Time `json:"expires"`
}

// LockOptions configure Acquire.
type LockOptions struct {
	// Holder names the sweep in the record and in other sweeps' messages.
	Holder string
	// TTL is DefaultLockTTL when zero.
	TTL time.Duration
	// Wait is how long to wait for a held lock; zero gives up at once.
	Wait time.Duration
	// Poll is how often a waiting caller looks again; default 500ms.
	Poll time.Duration
	// Now is the clock; default time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

func (o LockOptions) withDefaults() LockOptions {
	if o.Holder == "" {
		host, err := os.Hostname()
		if err != nil {
			host = "unknown-host"
		}
		o.Holder = fmt.Sprintf("%s:%d", host, os.Getpid())
	}
	if o.TTL <= 0 {
		o.TTL = DefaultLockTTL
	}
	if o.Poll <= 0 {
		o.Poll = defaultLockPoll
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Lock is a held sweep lock. It renews itself in the background until
// Release, or until the context given to Acquire ends (then it expires
// after its TTL unless released, as a crashed holder's does); Lost is
// closed if it could not be renewed (another sweep took it over after it
// expired), and the holder must then stop.
type Lock struct {
	store *Store
	opts  LockOptions
	// TookOverFrom names the holder of an expired lock this one replaced
	// (a crashed sweep), or is empty.
	TookOverFrom string
	// WaitedFor names the live holder this one waited for, or is empty.
	WaitedFor string

	mu   sync.Mutex
	rec  lockRecord
	rev  uint64
	lost chan struct{}
	stop chan struct{}
	done chan struct{}
}

// Acquire takes the sweep lock: at once when it is free or expired,
// otherwise after waiting up to opts.Wait for its holder to release it (or
// to die and let it expire). It returns a *LockedError when the wait runs
// out, and ctx's error when ctx ends first.
func (s *Store) Acquire(ctx context.Context, opts LockOptions) (*Lock, error) {
	opts = opts.withDefaults()
	l := &Lock{store: s, opts: opts}
	start := opts.Now()
	for {
		held, err := l.try(ctx)
		if err != nil {
			return nil, err
		}
		if held == nil {
			l.startRenewal(ctx)
			return l, nil
		}
		if l.WaitedFor == "" {
			l.WaitedFor = held.Holder
			opts.Logger.Info("waiting for the sweep lock", "holder", held.Holder, "expires", held.Expires, "wait", opts.Wait)
		}
		waited := opts.Now().Sub(start)
		if waited >= opts.Wait {
			return nil, &LockedError{Holder: held.Holder, Expires: held.Expires, Waited: waited}
		}
		if err := pause.For(ctx, min(opts.Poll, opts.Wait-waited)); err != nil {
			return nil, fmt.Errorf("waiting for the sweep lock: %w", err)
		}
	}
}

// try takes the lock if it is free or expired. It returns the live record
// that holds it otherwise.
func (l *Lock) try(ctx context.Context) (*lockRecord, error) {
	for range 5 {
		data, rev, err := l.store.get(ctx, lockKey)
		if err != nil {
			return nil, fmt.Errorf("reading the sweep lock: %w", err)
		}
		now := l.opts.Now()
		var cur lockRecord
		if data != nil {
			if json.Unmarshal(data, &cur) != nil {
				cur = lockRecord{Holder: "unreadable lock"}
			}
			if cur.Expires.After(now) {
				return &cur, nil
			}
		}
		rec := lockRecord{Holder: l.opts.Holder, Acquired: now, Expires: now.Add(l.opts.TTL)}
		next, err := l.write(ctx, rec, rev)
		if errors.Is(err, errConflict) {
			continue // someone else moved first: look again
		}
		if err != nil {
			return nil, fmt.Errorf("taking the sweep lock: %w", err)
		}
		if data != nil {
			l.TookOverFrom = cur.Holder
			l.opts.Logger.Warn("took over an expired sweep lock", "holder", cur.Holder, "expired", cur.Expires)
		}
		l.rec, l.rev = rec, next
		return nil, nil
	}
	return nil, fmt.Errorf("taking the sweep lock: %w five times in a row", errConflict)
}

func (l *Lock) write(ctx context.Context, rec lockRecord, rev uint64) (uint64, error) {
	data, err := json.Marshal(rec)
	if err != nil {
		return 0, fmt.Errorf("encoding the sweep lock: %w", err)
	}
	return l.store.swap(ctx, lockKey, data, rev)
}

func (l *Lock) startRenewal(ctx context.Context) {
	l.lost = make(chan struct{})
	l.stop = make(chan struct{})
	l.done = make(chan struct{})
	go l.renew(ctx)
}

// renew extends the lock every TTL/3 until Release or until ctx ends. A
// renewal that fails for a moment (NATS reconnecting) is tried again at the
// next tick; the lock is lost when it was taken over or its expiry passed
// unrenewed.
func (l *Lock) renew(ctx context.Context) {
	defer close(l.done)
	t := time.NewTicker(l.opts.TTL / 3)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
		l.mu.Lock()
		rec, rev := l.rec, l.rev
		l.mu.Unlock()
		expired := !l.opts.Now().Before(rec.Expires)
		now := l.opts.Now()
		rec.Expires = now.Add(l.opts.TTL)
		wctx, cancel := context.WithTimeout(ctx, l.opts.TTL/3)
		next, err := l.write(wctx, rec, rev)
		cancel()
		switch {
		case err == nil:
			l.mu.Lock()
			l.rec, l.rev = rec, next
			l.mu.Unlock()
		case ctx.Err() != nil:
			return
		case errors.Is(err, errConflict) || expired:
			l.opts.Logger.Error("lost the sweep lock", "err", err)
			close(l.lost)
			return
		default:
			l.opts.Logger.Warn("renewing the sweep lock", "err", err)
		}
	}
}

// Lost is closed when the lock could not be kept; the sweep must stop.
func (l *Lock) Lost() <-chan struct{} { return l.lost }

// Release stops renewal and deletes the lock if it is still this one's, so
// the next sweep need not wait for it to expire. Call it once.
func (l *Lock) Release(ctx context.Context) error {
	close(l.stop)
	<-l.done
	select {
	case <-l.lost:
		return nil // someone else's now
	default:
	}
	l.mu.Lock()
	rev := l.rev
	l.mu.Unlock()
	if err := l.store.remove(ctx, lockKey, rev); err != nil {
		return fmt.Errorf("releasing the sweep lock: %w", err)
	}
	return nil
}
