package worker

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/yourci/yourci/pkg/artifacts"
	"github.com/yourci/yourci/pkg/events"
)

// fakeRecords is the record bucket in memory: records pushed to it reach
// the watch, and RecentBuilds returns the latest revision of each. Its
// watch fails once on demand, as a lost connection would.
type fakeRecords struct {
	mu      sync.Mutex
	latest  map[events.BuildKey]events.BuildRecord
	updates chan pushed
	failOne bool
	watches int
}

func newFakeRecords() *fakeRecords {
	return &fakeRecords{latest: map[events.BuildKey]events.BuildRecord{}, updates: make(chan pushed)}
}

type pushed struct {
	rec  events.BuildRecord
	done chan struct{}
}

// push stores a new revision of rec and returns once the watch has
// handed it over.
func (f *fakeRecords) push(rec events.BuildRecord) {
	f.mu.Lock()
	rec.Revision = f.latest[rec.Key].Revision + 1
	f.latest[rec.Key] = rec
	f.mu.Unlock()
	p := pushed{rec: rec, done: make(chan struct{})}
	f.updates <- p
	<-p.done
}

func (f *fakeRecords) WatchBuilds(ctx context.Context, fn func(events.BuildRecord)) error {
	f.mu.Lock()
	f.watches++
	fail := f.failOne
	f.failOne = false
	f.mu.Unlock()
	if fail {
		return errors.New("connection lost")
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case p := <-f.updates:
			fn(p.rec)
			close(p.done)
		}
	}
}

func (f *fakeRecords) RecentBuilds(_ context.Context, repo events.Repo, n int) ([]events.BuildRecord, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []events.BuildRecord
	for _, rec := range f.latest {
		if rec.Key.Repo == repo && len(out) < n {
			out = append(out, rec)
		}
	}
	return out, nil
}

// keeperRig runs a PageKeeper on a fresh workspace holding repository
// acme/widget and build 1 of its pull 1, but not build 1 of pull 2.
type keeperRig struct {
	ws      *artifacts.Workspace
	records *fakeRecords
	stop    func() error
}

func newKeeperRig(t *testing.T, interval time.Duration, failFirstWatch bool) *keeperRig {
	t.Helper()
	ws, err := artifacts.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(ws.Root(), "acme/widget/pulls/1/1"), 0o755); err != nil {
		t.Fatal(err)
	}
	records := newFakeRecords()
	records.failOne = failFirstWatch
	k, err := NewPageKeeper(PageKeeperOptions{Workspace: ws, Watch: records, Records: records, Interval: interval})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- k.Run(ctx) }()
	r := &keeperRig{ws: ws, records: records, stop: sync.OnceValue(func() error { cancel(); return <-done })}
	t.Cleanup(func() { r.stop() })
	return r
}

func (r *keeperRig) path(rel string) string { return filepath.Join(r.ws.Root(), rel) }

var widget = events.Repo{Owner: "acme", Name: "widget"}

// buildWith is build n of pull p with one test in state.
func buildWith(p, n int, state events.TestState, title string) events.BuildRecord {
	return events.BuildRecord{Version: events.Version, Key: events.BuildKey{Repo: widget, Pull: p, Build: n}, SHA: "abc", Title: title,
		Tests: []events.TestRecord{{Name: "unit", State: state, MaxAttempts: 1}}, Updated: time.Now()}
}

func TestPageKeeper(t *testing.T) {
	t.Parallel()
	t.Run("writes_build_repository_and_box_pages_for_what_this_box_holds", func(t *testing.T) {
		t.Parallel()
		r := newKeeperRig(t, 10*time.Millisecond, false)
		r.records.push(buildWith(2, 1, events.TestRunning, "elsewhere")) // no directory here
		r.records.push(buildWith(1, 1, events.TestRunning, "here"))
		waitForFile(t, r.path("acme/widget/pulls/1/1/index.html"), "pending: 1 running of 1")
		waitForFile(t, r.path("acme/widget/pulls/1/1/build.json"), `"state": "running"`)
		waitForFile(t, r.path("acme/widget/index.html"), "here")
		// The box page may first be written with only one of the two
		// builds; wait for the one pushed last, then look for the other.
		box := string(waitForFile(t, r.path("index.html"), "#1 here"))
		if !strings.Contains(box, "<code>unit</code>") || !strings.Contains(box, "#2 elsewhere") {
			t.Errorf("box page lacks a running build:\n%s", box)
		}
		if _, err := os.Stat(r.path("acme/widget/pulls/2")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("pages of a build this box does not hold were written (%v)", err)
		}
	})
	t.Run("every_change_reaches_the_page_the_latest_last", func(t *testing.T) {
		t.Parallel()
		r := newKeeperRig(t, 10*time.Millisecond, false)
		for i := range 30 {
			r.records.push(buildWith(1, 1, events.TestRunning, "change "+string(rune('A'+i))))
		}
		r.records.push(buildWith(1, 1, events.TestPassed, "final"))
		waitForFile(t, r.path("acme/widget/pulls/1/1/index.html"), "success: 1 passed of 1")
	})
	t.Run("a_page_is_written_at_most_once_per_interval", func(t *testing.T) {
		t.Parallel()
		r := newKeeperRig(t, time.Hour, false)
		r.records.push(buildWith(1, 1, events.TestRunning, "first"))
		page := r.path("acme/widget/pulls/1/1/index.html")
		waitForFile(t, page, "first")
		r.records.push(buildWith(1, 1, events.TestPassed, "second"))
		// The keeper has the second revision (push returns once it was
		// taken in) and waits for the hour. A build it never wrote is
		// written at once, in a pass that looks at every build: once the
		// next one's page is there, that pass has passed build 1 over.
		if err := os.MkdirAll(r.path("acme/widget/pulls/1/2"), 0o755); err != nil {
			t.Fatal(err)
		}
		r.records.push(buildWith(1, 2, events.TestRunning, "next"))
		waitForFile(t, r.path("acme/widget/pulls/1/2/index.html"), "next")
		if data, _ := os.ReadFile(page); !strings.Contains(string(data), "first") {
			t.Errorf("the page was written again within the interval:\n%s", data)
		}
	})
	t.Run("closed_pulls_leave_the_box_page", func(t *testing.T) {
		t.Parallel()
		r := newKeeperRig(t, 10*time.Millisecond, false)
		r.records.push(buildWith(1, 1, events.TestRunning, "soon closed"))
		waitForFile(t, r.path("index.html"), "soon closed")
		closed := buildWith(1, 1, events.TestErrored, "soon closed")
		closed.Closed = true
		r.records.push(closed)
		waitForFile(t, r.path("index.html"), "No open pull request has a build.")
		waitForFile(t, r.path("acme/widget/index.html"), "Recently closed")
	})
	t.Run("watches_again_after_the_watch_fails", func(t *testing.T) {
		t.Parallel()
		r := newKeeperRig(t, 10*time.Millisecond, true)
		r.records.push(buildWith(1, 1, events.TestPassed, "after a failure"))
		waitForFile(t, r.path("acme/widget/pulls/1/1/index.html"), "after a failure")
	})
	t.Run("stops_when_its_context_ends", func(t *testing.T) {
		t.Parallel()
		r := newKeeperRig(t, 10*time.Millisecond, false)
		if err := r.stop(); err != nil {
			t.Errorf("Run returned %v, want nil", err)
		}
	})
}

func TestNewPageKeeperNamesEveryMissingPart(t *testing.T) {
	t.Parallel()
	_, err := NewPageKeeper(PageKeeperOptions{Interval: -time.Second})
	for _, want := range []string{"no workspace", "no build record watch", "no build records", "negative interval"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not say %q", err, want)
		}
	}
}
