package projector

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/events/memrecords"
)

// TestQueuedQuickTestsCostTheSummaryTwoWrites: quick tests that wait in
// the queue for longer than the summary interval (here every pending
// change is past it) cost the build's summary two writes, pending and
// final; the counts in between are not news. This is what a burst on
// workers with more pull slots than test slots did: 2.5 summary writes
// per head, "1 running, 3 queued" written after five seconds in the queue.
func TestQueuedQuickTestsCostTheSummaryTwoWrites(t *testing.T) {
	t.Parallel()
	store, gh := memrecords.New(), newFakeGitHub()
	startProjector(t, store, gh, "box1", func(o *Options) { o.Pacing = Pacing{Hold: time.Hour, SummaryInterval: time.Nanosecond} })
	setTests(t, store, events.TestQueued, "t1", "t2")
	gh.waitFor(t, "queued states", func(l map[string]string) bool { return len(l) == 3 })
	setTests(t, store, events.TestRunning, "t1")
	setTests(t, store, events.TestPassed, "t1")
	gh.waitFor(t, "t1 passed", func(l map[string]string) bool { return l["yci/t1"] == "success" })
	setTests(t, store, events.TestRunning, "t2")
	setTests(t, store, events.TestPassed, "t2")
	gh.waitFor(t, "final states", allFinal("t1", "t2"))
	want := []string{
		"yci/t1=pending queued", "yci/t2=pending queued", "yci=pending 2 queued of 2",
		"yci/t1=success passed",
		"yci/t2=success passed", "yci=success 2 passed of 2",
	}
	if got := gh.history(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("sent\n%v\nwant (the summary pending, then final)\n%v", got, want)
	}
}

// TestSlowTestProgressIsShown: a test that runs past the hold is news, so
// the build's summary shows the progress, when the test's own running
// state is shown and not before it.
func TestSlowTestProgressIsShown(t *testing.T) {
	t.Parallel()
	store, gh := memrecords.New(), newFakeGitHub()
	startProjector(t, store, gh, "box1", func(o *Options) { o.Pacing = Pacing{Hold: time.Millisecond, SummaryInterval: time.Nanosecond} })
	setTests(t, store, events.TestQueued, "t1", "t2")
	gh.waitFor(t, "queued states", func(l map[string]string) bool { return len(l) == 3 })
	setTests(t, store, events.TestRunning, "t1")
	progress := "yci=pending 1 running, 1 queued of 2"
	gh.waitFor(t, progress, func(map[string]string) bool { return slices.Contains(gh.history(), progress) })
	setTests(t, store, events.TestPassed, "t1", "t2")
	gh.waitFor(t, "final states", allFinal("t1", "t2"))
	if got := gh.history(); !slices.Contains(got, "yci/t1=pending running") {
		t.Errorf("sent\n%v\nwithout t1's running state, which lasted the hold", got)
	}
}
