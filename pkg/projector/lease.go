package projector

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// leaseStore is what a lease needs of the record store.
type leaseStore interface {
	TakeLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error)
	DropLease(ctx context.Context, name, holder string) error
}

// lease is this projector's hold on LeaseName, which makes it the fleet's
// one writer: it takes and renews the lease, and knows whether it holds it
// now. Its methods may be called concurrently.
type lease struct {
	store  leaseStore
	holder string
	ttl    time.Duration
	log    *slog.Logger
	// gauge reads 1 while the lease is held.
	gauge prometheus.Gauge
	// gained is called each time the lease is gained, after Leading
	// reports it.
	gained func()

	mu   sync.Mutex
	held bool
}

// keep takes and renews the lease every third of its TTL until ctx ends.
func (l *lease) keep(ctx context.Context) {
	every := l.ttl / 3
	for {
		held, err := l.store.TakeLease(ctx, LeaseName, l.holder, l.ttl)
		if err != nil && ctx.Err() == nil {
			l.log.Warn("taking the projector lease", "err", err)
		}
		l.set(held && err == nil)
		t := time.NewTimer(every)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// set records whether the lease is held; gaining it calls l.gained.
func (l *lease) set(held bool) {
	l.mu.Lock()
	if held == l.held {
		l.mu.Unlock()
		return
	}
	l.held = held
	l.mu.Unlock()
	l.log.Info("projector lease", "held", held)
	if held {
		l.gauge.Set(1)
		l.gained()
	} else {
		l.gauge.Set(0)
	}
}

// Leading reports whether the lease is held now.
func (l *lease) Leading() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.held
}

// drop gives the lease up, so a successor need not wait for it to lapse.
func (l *lease) drop(ctx context.Context) {
	if err := l.store.DropLease(ctx, LeaseName, l.holder); err != nil {
		l.log.Warn("giving up the projector lease", "err", err)
	}
}
