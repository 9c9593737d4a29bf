package projector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/go-github/v88/github"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/events/memrecords"
	"github.com/yourci/yourci/pkg/pause"
	"github.com/yourci/yourci/pkg/status"
)

// fakeGitHub keeps the commit statuses it was sent, in order, and fails
// every request while failing is set, as GitHub down would.
type fakeGitHub struct {
	mu      sync.Mutex
	sent    []github.RepoStatus
	failing bool
	refused int // requests failed while failing
	changed chan struct{}
}

func newFakeGitHub() *fakeGitHub { return &fakeGitHub{changed: make(chan struct{}, 1)} }

func (f *fakeGitHub) CreateStatus(_ context.Context, _, _, _ string, s github.RepoStatus) (*github.RepoStatus, *github.Response, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failing {
		f.refused++
		select {
		case f.changed <- struct{}{}:
		default:
		}
		return nil, nil, errors.New("connection refused")
	}
	f.sent = append(f.sent, s)
	select {
	case f.changed <- struct{}{}:
	default:
	}
	return &s, nil, nil
}

func (f *fakeGitHub) Client(context.Context, int64) (Client, error) { return Client{Statuses: f}, nil }

func (f *fakeGitHub) fail(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failing = on
}

// history is every "context=state description" sent, in order.
func (f *fakeGitHub) history() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, s := range f.sent {
		out = append(out, s.GetContext()+"="+s.GetState()+" "+s.GetDescription())
	}
	return out
}

// latest is the latest state sent per context.
func (f *fakeGitHub) latest() map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]string{}
	for _, s := range f.sent {
		out[s.GetContext()] = s.GetState()
	}
	return out
}

// waitRefused waits until f has failed n requests.
func (f *fakeGitHub) waitRefused(t *testing.T, n int) {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		f.mu.Lock()
		refused := f.refused
		f.mu.Unlock()
		if refused >= n {
			return
		}
		select {
		case <-f.changed:
		case <-deadline.C:
			t.Fatalf("waiting for %d refused requests, have %d", n, refused)
		}
	}
}

// waitFor waits until cond holds of what f was sent, or fails the test.
func (f *fakeGitHub) waitFor(t *testing.T, what string, cond func(latest map[string]string) bool) {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for !cond(f.latest()) {
		select {
		case <-f.changed:
		case <-deadline.C:
			t.Fatalf("waiting for %s; sent:\n%v", what, f.history())
		}
	}
}

func startProjector(t *testing.T, store *memrecords.Store, gh *fakeGitHub, holder string, tweak func(*Options)) (stop func()) {
	t.Helper()
	opts := Options{Records: store, Clients: gh, Holder: holder, Pacing: Pacing{Hold: time.Hour, SummaryInterval: time.Hour},
		FirstBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)}
	if tweak != nil {
		tweak(&opts)
	}
	p, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// setTests records the build's tests in state, as a worker would.
func setTests(t *testing.T, store *memrecords.Store, state events.TestState, names ...string) {
	t.Helper()
	_, err := store.UpdateBuild(context.Background(), key, func(r *events.BuildRecord) error {
		r.SHA, r.Projected = "abc1234def", true
		for _, n := range names {
			tr := r.AddTest(n)
			tr.State, tr.Description, tr.Updated = state, string(state), time.Now()
			if state == events.TestRunning {
				tr.Attempts = append(tr.Attempts, events.AttemptRecord{Number: len(tr.Attempts) + 1, Start: time.Now()})
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func allFinal(names ...string) func(map[string]string) bool {
	return func(latest map[string]string) bool {
		for _, c := range append([]string{status.Context("")}, names...) {
			if c != "yci" {
				c = status.Context(c)
			}
			if s, ok := latest[c]; !ok || s == "pending" {
				return false
			}
		}
		return true
	}
}

func TestProjectorQuickTestCostsTwoWrites(t *testing.T) {
	t.Parallel()
	store, gh := memrecords.New(), newFakeGitHub()
	metrics := NewMetrics(nil)
	startProjector(t, store, gh, "box1", func(o *Options) { o.Metrics = metrics })
	names := []string{"t1", "t2", "t3"}
	setTests(t, store, events.TestQueued, names...)
	gh.waitFor(t, "queued states", func(l map[string]string) bool { return len(l) == len(names)+1 })
	setTests(t, store, events.TestRunning, names...)
	setTests(t, store, events.TestPassed, names...)
	gh.waitFor(t, "final states", allFinal(names...))
	want := []string{
		"yci/t1=pending queued", "yci/t2=pending queued", "yci/t3=pending queued", "yci=pending 3 queued of 3",
		"yci/t1=success passed", "yci/t2=success passed", "yci/t3=success passed", "yci=success 3 passed of 3",
	}
	if got := gh.history(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("sent\n%v\nwant (two writes per test and per summary: running held, overtaken)\n%v", got, want)
	}
	// The counter moves once GitHub has answered, just after the fake
	// keeps the state.
	waitValue(t, metrics.Writes, float64(len(want)))
	if got := value(t, metrics.Leading); got != 1 {
		t.Errorf("yci_projector_leading %v while it leads, want 1", got)
	}
}

func TestProjectorRetriesFromTheLatestRecord(t *testing.T) {
	t.Parallel()
	store, gh := memrecords.New(), newFakeGitHub()
	gh.fail(true)
	startProjector(t, store, gh, "box1", nil)
	setTests(t, store, events.TestQueued, "unit")
	// GitHub is down while the test goes on; the record keeps the truth.
	setTests(t, store, events.TestRunning, "unit")
	setTests(t, store, events.TestFailed, "unit")
	gh.fail(false)
	gh.waitFor(t, "the final state after the outage", allFinal("unit"))
	want := []string{"yci/unit=failure failed", "yci=failure 1 failed of 1"}
	if got := gh.history(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("sent\n%v\nwant only the latest record's states, no stale queued or running\n%v", got, want)
	}
	rec, err := store.BuildRecord(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Shown) != 2 {
		t.Errorf("record keeps %d shown parts, want 2 (the test and the summary): %v", len(rec.Shown), rec.Shown)
	}
}

func TestSettleWritesWhatIsOwed(t *testing.T) {
	t.Parallel()
	store, gh := memrecords.New(), newFakeGitHub()
	stop := startProjector(t, store, gh, "box1", func(o *Options) { o.FirstBackoff, o.MaxBackoff = time.Hour, time.Hour })
	setTests(t, store, events.TestQueued, "unit")
	gh.waitFor(t, "queued states", func(l map[string]string) bool { return len(l) == 2 })
	// The final state cannot go now, only at settling: the backoff
	// outlasts the test.
	gh.fail(true)
	setTests(t, store, events.TestPassed, "unit")
	gh.waitRefused(t, 1)
	gh.fail(false)
	stop()
	if got := gh.latest(); got["yci/unit"] != "success" || got["yci"] != "success" {
		t.Errorf("after settling GitHub shows %v, want the final states; sent %v", got, gh.history())
	}
	if held, err := store.TakeLease(context.Background(), LeaseName, "box2", time.Minute); err != nil || !held {
		t.Errorf("after settling the lease is not free: %v, %v", held, err)
	}
}

func TestOldRecordsAreNotProjected(t *testing.T) {
	t.Parallel()
	store, gh := memrecords.New(), newFakeGitHub()
	old := key
	old.Build = 1
	// A record written before projectors: GitHub got its states from
	// the worker then.
	_, err := store.UpdateBuild(context.Background(), old, func(r *events.BuildRecord) error {
		r.SHA = "0ld0000"
		r.AddTest("old").State = events.TestPassed
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	stop := startProjector(t, store, gh, "box1", nil)
	setTests(t, store, events.TestPassed, "new")
	gh.waitFor(t, "the projected record's states", allFinal("new"))
	stop()
	if _, ok := gh.latest()["yci/old"]; ok {
		t.Errorf("a record from before projectors was shown again: %v", gh.history())
	}
}

// value reads a counter's or gauge's value.
func value(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var out dto.Metric
	if err := m.Write(&out); err != nil {
		t.Fatal(err)
	}
	if c := out.GetCounter(); c != nil {
		return c.GetValue()
	}
	return out.GetGauge().GetValue()
}

// waitValue waits until a counter or gauge reads want.
func waitValue(t *testing.T, m prometheus.Metric, want float64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := pause.Poll(ctx, time.Millisecond, func() bool { return value(t, m) == want }); err != nil {
		t.Fatalf("%v never read %v (reads %v): %v", m.Desc(), want, value(t, m), err)
	}
}

// lagging answers reads with an old copy of the record while stale > 0,
// as a NATS replica behind its leader does after an election.
type lagging struct {
	*memrecords.Store
	mu    sync.Mutex
	old   events.BuildRecord
	stale int
}

func (l *lagging) BuildRecord(ctx context.Context, k events.BuildKey) (events.BuildRecord, error) {
	l.mu.Lock()
	if l.stale > 0 {
		l.stale--
		l.mu.Unlock()
		return l.old, nil
	}
	l.mu.Unlock()
	return l.Store.BuildRecord(ctx, k)
}

func (l *lagging) lag(t *testing.T, reads int) {
	t.Helper()
	rec, err := l.Store.BuildRecord(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.old, l.stale = rec, reads
}

// A read that returns a revision older than the watch delivered is read
// again: taken for the truth, it would show nothing new and leave the
// final state unshown until the next change, which may never come.
func TestProjectorRereadsARecordOlderThanTheWatchDelivered(t *testing.T) {
	t.Parallel()
	store, gh := &lagging{Store: memrecords.New()}, newFakeGitHub()
	startProjector(t, store.Store, gh, "box1", func(o *Options) { o.Records = store })
	setTests(t, store.Store, events.TestQueued, "unit")
	gh.waitFor(t, "the queued states", func(l map[string]string) bool { return len(l) == 2 })
	waitShown(t, store.Store, 2)
	store.lag(t, 3)
	setTests(t, store.Store, events.TestPassed, "unit")
	gh.waitFor(t, "the final state past three stale reads", allFinal("unit"))
}

// waitShown waits until the record keeps n shown parts.
func waitShown(t *testing.T, store *memrecords.Store, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := pause.Poll(ctx, time.Millisecond, func() bool {
		rec, err := store.BuildRecord(ctx, key)
		return err == nil && len(rec.Shown) >= n
	})
	if err != nil {
		t.Fatalf("the record never kept %d shown parts: %v", n, err)
	}
}
