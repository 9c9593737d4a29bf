package events_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/events/memrecords"
)

// leaser is what the lease tests use of a record store.
type leaser interface {
	TakeLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error)
	DropLease(ctx context.Context, name, holder string) error
}

// TestLease runs the same lease story against the record bucket of each
// server kind and against memrecords, the in-memory stand-in the
// projector's tests use, so that the two cannot drift apart.
func TestLease(t *testing.T) {
	t.Parallel()
	t.Run("memrecords", func(t *testing.T) {
		t.Parallel()
		checkLease(t, memrecords.New())
	})
	eachServer(t, func(t *testing.T, srv testServer) {
		checkLease(t, newBus(t, srv.URL(), fastOptions(t)).Records())
	})
}

func checkLease(t *testing.T, store leaser) {
	ctx := testContext(t)
	const name, long = "projector", time.Hour
	steps := []struct {
		what   string
		do     func() (bool, error)
		wanted bool
	}{
		{"box1 takes a free lease", func() (bool, error) { return store.TakeLease(ctx, name, "box1", long) }, true},
		{"box2 cannot take a held lease", func() (bool, error) { return store.TakeLease(ctx, name, "box2", long) }, false},
		{"box1 renews its lease", func() (bool, error) { return store.TakeLease(ctx, name, "box1", long) }, true},
		{"box2 dropping box1's lease leaves it held", func() (bool, error) {
			if err := store.DropLease(ctx, name, "box2"); err != nil {
				return false, err
			}
			return store.TakeLease(ctx, name, "box2", long)
		}, false},
		{"box2 takes the lease box1 gave up", func() (bool, error) {
			if err := store.DropLease(ctx, name, "box1"); err != nil {
				return false, err
			}
			return store.TakeLease(ctx, name, "box2", time.Nanosecond) // and lets it lapse at once
		}, true},
		{"box1 takes the lease box2 let lapse", func() (bool, error) { return store.TakeLease(ctx, name, "box1", long) }, true},
		{"another lease is apart", func() (bool, error) { return store.TakeLease(ctx, "other", "box2", long) }, true},
	}
	for _, s := range steps {
		got, err := s.do()
		if err != nil || got != s.wanted {
			t.Fatalf("%s: held %v, %v; want %v", s.what, got, err, s.wanted)
		}
	}

	// Many boxes at once: one wins.
	var wg sync.WaitGroup
	var won atomic.Int32
	for i := range 8 {
		wg.Go(func() {
			held, err := store.TakeLease(ctx, "race", fmt.Sprintf("box%d", i), long)
			if err != nil {
				t.Errorf("box%d: %v", i, err)
			}
			if held {
				won.Add(1)
			}
		})
	}
	wg.Wait()
	if won.Load() != 1 {
		t.Errorf("%d boxes took one free lease at once, want 1", won.Load())
	}
}

var _ leaser = (*events.Records)(nil)
