package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// MaxReportText bounds a Report's text in a record: a build's record holds
// every test's report and must stay far below JetStream's message limit.
const MaxReportText = 2 << 10

// Shown is what a projector last showed outside of one part of a build.
// Mark identifies the state shown (the projector's own encoding: equal
// marks mean nothing new to show); At is when it was shown.
type Shown struct {
	Mark string    `json:"mark"`
	At   time.Time `json:"at"`
}

// lease is the stored value of a lease key.
type lease struct {
	Holder string    `json:"holder"`
	Until  time.Time `json:"until"`
}

func leaseKey(name string) string { return "lease." + name }

// TakeLease makes holder the holder of the lease called name until ttl
// from now, and reports whether it is: it takes a lease nobody holds or
// whose holder let it lapse, and renews one holder already has. Many
// boxes may call it at once; the store's compare-and-set lets one win.
// Expiry compares the boxes' clocks, so they must roughly agree (well
// within ttl).
func (ls *Leases) TakeLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	// Timeout, not ElectionWait: a lease is measured from before its
	// read, so one written after a long election would be spent already.
	ctx, cancel := ls.callContext(ctx)
	defer cancel()
	// A lost compare-and-set is read again before it counts as another
	// box's win: on a NATS cluster a read may come from a replica that
	// lags, and a holder that took its own stale read for a rival would
	// stop writing for a whole renewal.
	for range leaseTries {
		held, lost, err := ls.tryLease(ctx, name, holder, ttl)
		if err != nil || !lost {
			return held, err
		}
	}
	return false, nil
}

// leaseTries bounds how often TakeLease reads a lease again after losing
// its compare-and-set.
const leaseTries = 3

// tryLease is one read and compare-and-set of TakeLease. lost reports a
// compare-and-set that failed because the lease changed since the read
// (or the read was stale).
func (ls *Leases) tryLease(ctx context.Context, name, holder string, ttl time.Duration) (held, lost bool, err error) {
	key := leaseKey(name)
	now := time.Now()
	var rev uint64
	entry, err := ls.records.Get(ctx, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
	case err != nil:
		return false, false, fmt.Errorf("reading lease %s: %w", name, err)
	default:
		var l lease
		if err := json.Unmarshal(entry.Value(), &l); err != nil {
			return false, false, fmt.Errorf("decoding lease %s: %w", name, err)
		}
		if l.Holder != holder && now.Before(l.Until) {
			return false, false, nil
		}
		rev = entry.Revision()
	}
	data, err := json.Marshal(lease{Holder: holder, Until: now.Add(ttl)})
	if err != nil {
		return false, false, fmt.Errorf("encoding lease %s: %w", name, err)
	}
	if rev == 0 {
		_, err = ls.records.Create(ctx, key, data)
	} else {
		_, err = ls.records.Update(ctx, key, data, rev)
	}
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return false, true, nil
	}
	if err != nil {
		return false, false, fmt.Errorf("writing lease %s: %w", name, err)
	}
	return true, false, nil
}

// DropLease gives up holder's lease called name, so that another box takes
// it at once instead of after it lapses. A lease holder does not hold is
// left alone.
func (ls *Leases) DropLease(ctx context.Context, name, holder string) error {
	key := leaseKey(name)
	ctx, cancel := ls.callContext(ctx)
	defer cancel()
	entry, err := ls.records.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading lease %s: %w", name, err)
	}
	var l lease
	if err := json.Unmarshal(entry.Value(), &l); err != nil {
		return fmt.Errorf("decoding lease %s: %w", name, err)
	}
	if l.Holder != holder {
		return nil
	}
	data, err := json.Marshal(lease{Holder: holder})
	if err != nil {
		return fmt.Errorf("encoding lease %s: %w", name, err)
	}
	if _, err := ls.records.Update(ctx, key, data, entry.Revision()); err != nil && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return fmt.Errorf("dropping lease %s: %w", name, err)
	}
	return nil
}
