package projector

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/events/memrecords"
)

func TestLeaseTellsTheScheduleWhenGained(t *testing.T) {
	t.Parallel()
	store := memrecords.New()
	gained := 0
	l := &lease{store: store, holder: "box1", ttl: time.Minute, log: slog.New(slog.DiscardHandler),
		gauge: prometheus.NewGauge(prometheus.GaugeOpts{Name: "leading"}), gained: func() { gained++ }}
	steps := []struct {
		held       bool
		wantGained int
	}{
		{held: true, wantGained: 1},
		{held: true, wantGained: 1}, // renewed, not gained again
		{held: false, wantGained: 1},
		{held: true, wantGained: 2},
	}
	for i, s := range steps {
		l.set(s.held)
		if l.Leading() != s.held || gained != s.wantGained {
			t.Errorf("step %d: Leading %v, gained %d times; want %v, %d", i, l.Leading(), gained, s.held, s.wantGained)
		}
		want := 0.0
		if s.held {
			want = 1
		}
		if got := value(t, l.gauge); got != want {
			t.Errorf("step %d: gauge %v, want %v", i, got, want)
		}
	}
	if held, err := store.TakeLease(context.Background(), LeaseName, "box1", time.Minute); err != nil || !held {
		t.Fatalf("TakeLease = %v, %v", held, err)
	}
	l.drop(context.Background())
	if held, err := store.TakeLease(context.Background(), LeaseName, "box2", time.Minute); err != nil || !held {
		t.Errorf("after drop another holder cannot take the lease: %v, %v", held, err)
	}
}

func TestOneWriterAcrossProjectors(t *testing.T) {
	t.Parallel()
	store := memrecords.New()
	first, second := newFakeGitHub(), newFakeGitHub()
	stopFirst := startProjector(t, store, first, "box1", nil)
	first.waitFor(t, "nothing; the first projector to lead", func(map[string]string) bool { return true })
	setTests(t, store, events.TestQueued, "unit")
	first.waitFor(t, "queued states from the first projector", func(l map[string]string) bool { return len(l) == 2 })
	// The second polls the lease often, so it takes over as soon as the
	// first gives it up; the first holds it firmly meanwhile.
	startProjector(t, store, second, "box2", func(o *Options) { o.LeaseTTL = 30 * time.Millisecond })
	setTests(t, store, events.TestPassed, "unit")
	first.waitFor(t, "final states from the lease holder", allFinal("unit"))
	// The holder stops: it settles, gives the lease up, and the other
	// projector shows what follows.
	stopFirst()
	setTests(t, store, events.TestRunning, "unit")
	setTests(t, store, events.TestErrored, "unit")
	second.waitFor(t, "the next states from the new holder", func(l map[string]string) bool {
		return l["yci/unit"] == "error" && allFinal("unit")(l)
	})
	if got := first.history(); len(got) != 4 {
		t.Errorf("first projector sent %v, want the 4 states of its lease", got)
	}
	if got := second.history(); len(got) != 2 {
		t.Errorf("second projector sent %v, want only the 2 states after it took over", got)
	}
}

func TestLapsedLeaseIsTakenOver(t *testing.T) {
	t.Parallel()
	store := memrecords.New()
	var mu sync.Mutex
	now := time.Now()
	store.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	// A holder that died without giving the lease up.
	if held, err := store.TakeLease(context.Background(), LeaseName, "dead-box", time.Minute); err != nil || !held {
		t.Fatalf("TakeLease = %v, %v", held, err)
	}
	gh := newFakeGitHub()
	startProjector(t, store, gh, "box1", func(o *Options) { o.LeaseTTL = 30 * time.Millisecond })
	setTests(t, store, events.TestPassed, "unit")
	mu.Lock()
	now = now.Add(2 * time.Minute) // the dead holder's lease lapses
	mu.Unlock()
	gh.waitFor(t, "final states once the lapsed lease is taken", allFinal("unit"))
}

// flapping refuses the lease while refuse is set, as a holder's stale read
// of its own lease once made it do; and, when armed, holds the next read
// of a record until released.
type flapping struct {
	*memrecords.Store
	refuse           atomic.Bool
	armed            atomic.Bool
	entered, release chan struct{}
}

func (f *flapping) TakeLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	if f.refuse.Load() {
		return false, nil
	}
	return f.Store.TakeLease(ctx, name, holder, ttl)
}

func (f *flapping) BuildRecord(ctx context.Context, k events.BuildKey) (events.BuildRecord, error) {
	if f.armed.CompareAndSwap(true, false) {
		close(f.entered)
		<-f.release
	}
	return f.Store.BuildRecord(ctx, k)
}

// A projector that loses its lease while it reads a build to show it
// keeps the build owed: when it leads again it shows it, with no further
// change to the record to wake it.
func TestLeaseLostMidShowKeepsTheBuildOwed(t *testing.T) {
	t.Parallel()
	store := &flapping{Store: memrecords.New(), entered: make(chan struct{}), release: make(chan struct{})}
	gh := newFakeGitHub()
	metrics := NewMetrics(nil)
	startProjector(t, store.Store, gh, "box1", func(o *Options) {
		o.Records, o.Metrics, o.LeaseTTL = store, metrics, 30*time.Millisecond
	})
	waitValue(t, metrics.Leading, 1)
	store.armed.Store(true)
	setTests(t, store.Store, events.TestQueued, "unit", "lint")
	<-store.entered // the projector reads the build to show it
	store.refuse.Store(true)
	waitValue(t, metrics.Leading, 0)
	close(store.release)
	store.refuse.Store(false)
	gh.waitFor(t, "every queued state once the lease is back", func(l map[string]string) bool { return len(l) == 3 })
}
