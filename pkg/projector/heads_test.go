package projector

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/events/memrecords"
	"github.com/yourci/yourci/pkg/pause"
)

// head is the head commit of key's pull request that the tests below
// build, with a full commit id as workers record it.
var head = events.HeadKey{Repo: key.Repo, Pull: key.Pull, SHA: strings.Repeat("c", 40)}

// setHead records on head's summary what a worker would: state and
// description about build n (0 before a claim); approved also marks it
// approved. It reports whether the record took the word.
func setHead(t *testing.T, store *memrecords.Store, n int, state, description string, approved bool) bool {
	t.Helper()
	_, err := store.UpdateHeadSummary(context.Background(), head, func(h *events.HeadSummary) error {
		if approved {
			h.Approved = true
		}
		if !h.Set(n, state, description, "") {
			return events.ErrUnchanged
		}
		return nil
	})
	if errors.Is(err, events.ErrUnchanged) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return true
}

// queueBuild records build n of head with one test queued, as a worker's
// recordQueued does.
func queueBuild(t *testing.T, store *memrecords.Store, n int) events.BuildKey {
	t.Helper()
	k := events.BuildKey{Repo: head.Repo, Pull: head.Pull, Build: n}
	_, err := store.UpdateBuild(context.Background(), k, func(r *events.BuildRecord) error {
		r.SHA, r.Projected = head.SHA, true
		r.AddTest("unit").Description = "queued"
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// yciHistory is every yci summary sent, in order.
func yciHistory(gh *fakeGitHub) []string {
	var out []string
	for _, h := range gh.history() {
		if strings.HasPrefix(h, "yci=") {
			out = append(out, strings.TrimPrefix(h, "yci="))
		}
	}
	return out
}

// waitYci waits until the latest yci summary sent is want.
func waitYci(t *testing.T, gh *fakeGitHub, want string) {
	t.Helper()
	gh.waitFor(t, "yci "+want, func(map[string]string) bool {
		h := yciHistory(gh)
		return len(h) > 0 && h[len(h)-1] == want
	})
}

func unpaced(o *Options) { o.Pacing = Pacing{} }

func TestHeadSummaryIsShownUntilABuildTakesOver(t *testing.T) {
	t.Parallel()
	store, gh := memrecords.New(), newFakeGitHub()
	startProjector(t, store, gh, "p1", unpaced)

	setHead(t, store, 0, "pending", "needs approval", false)
	waitYci(t, gh, "pending needs approval")
	setHead(t, store, 1, "pending", "approved by maint; building", true)
	waitYci(t, gh, "pending approved by maint; building")
	queueBuild(t, store, 1)
	waitYci(t, gh, "pending 1 queued of 1")

	h, err := store.HeadSummary(context.Background(), head)
	if err != nil {
		t.Fatal(err)
	}
	if h.TakenBy != 1 || h.Visible() {
		t.Errorf("after the build's summary: %+v, want build 1 to have taken over", h)
	}
	// A word from a delivery handled late is refused by the record, and
	// the build's summary stays the last one sent.
	if setHead(t, store, 0, "pending", "preparing failed (attempt 1 of 9); retrying", false) {
		t.Error("the record took a word from before the build that took over")
	}
	setTestsOf(t, store, events.BuildKey{Repo: head.Repo, Pull: head.Pull, Build: 1}, events.TestPassed)
	waitYci(t, gh, "success 1 passed of 1")
	want := []string{"pending needs approval", "pending approved by maint; building", "pending 1 queued of 1", "success 1 passed of 1"}
	if got := yciHistory(gh); !slices.Equal(got, want) {
		t.Errorf("yci summaries sent:\n%q\nwant\n%q", got, want)
	}
}

// setTestsOf moves every test of build k to state.
func setTestsOf(t *testing.T, store *memrecords.Store, k events.BuildKey, state events.TestState) {
	t.Helper()
	_, err := store.UpdateBuild(context.Background(), k, func(r *events.BuildRecord) error {
		for i := range r.Tests {
			r.Tests[i].State, r.Tests[i].Description = state, string(state)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestBuildSummaryNeverPrecedesTheHeadsOwn starts a projector on a head
// whose summary was never shown and whose build is already recorded, the
// state a crash or a lost lease leaves: whichever of the two it looks at
// first, the head's own summary is sent before the build's, never after.
func TestBuildSummaryNeverPrecedesTheHeadsOwn(t *testing.T) {
	t.Parallel()
	for range 20 {
		store, gh := memrecords.New(), newFakeGitHub()
		setHead(t, store, 1, "pending", "approved by maint; building", true)
		queueBuild(t, store, 1)
		stop := startProjector(t, store, gh, "p1", unpaced)
		waitYci(t, gh, "pending 1 queued of 1")
		stop()
		want := []string{"pending approved by maint; building", "pending 1 queued of 1"}
		if got := yciHistory(gh); !slices.Equal(got, want) {
			t.Fatalf("yci summaries sent:\n%q\nwant\n%q", got, want)
		}
	}
}

// TestHeadSummaryKeepsThePacing: a pending head summary that is not due
// when its build takes over is never sent, as a build's held summary is
// not: the build's replaces it.
func TestHeadSummaryKeepsThePacing(t *testing.T) {
	t.Parallel()
	store, gh := memrecords.New(), newFakeGitHub()
	startProjector(t, store, gh, "p1", func(o *Options) { o.Pacing = Pacing{SummaryInterval: time.Hour} })
	setHead(t, store, 0, "pending", "needs approval", false)
	waitYci(t, gh, "pending needs approval")
	setHead(t, store, 1, "pending", "approved by maint; building", true)
	queueBuild(t, store, 1)
	waitYci(t, gh, "pending 1 queued of 1")
	want := []string{"pending needs approval", "pending 1 queued of 1"}
	if got := yciHistory(gh); !slices.Equal(got, want) {
		t.Errorf("yci summaries sent:\n%q\nwant\n%q", got, want)
	}
	// An error (preparing given up) is final: it goes out at once.
	store2, gh2 := memrecords.New(), newFakeGitHub()
	startProjector(t, store2, gh2, "p2", func(o *Options) { o.Pacing = Pacing{SummaryInterval: time.Hour} })
	setHeadIn(t, store2, "pending", "preparing failed (attempt 1 of 2); retrying")
	waitYci(t, gh2, "pending preparing failed (attempt 1 of 2); retrying")
	setHeadIn(t, store2, "error", "gave up preparing")
	waitYci(t, gh2, "error gave up preparing")
}

func setHeadIn(t *testing.T, store *memrecords.Store, state, description string) {
	t.Helper()
	if !setHead(t, store, 0, state, description, false) {
		t.Fatalf("the record refused %s %q", state, description)
	}
}

// TestHeadSummaryConvergesFromItsRecord: a write GitHub refused is made
// good from the record, and what no projector showed is shown by the
// next one to start.
func TestHeadSummaryConvergesFromItsRecord(t *testing.T) {
	t.Parallel()
	store, gh := memrecords.New(), newFakeGitHub()
	setHead(t, store, 0, "pending", "needs approval", false) // before any projector runs
	gh.fail(true)
	startProjector(t, store, gh, "p1", unpaced)
	gh.waitRefused(t, 2)
	gh.fail(false)
	waitYci(t, gh, "pending needs approval")
	// The record keeps what was shown, a moment after GitHub has it.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var h events.HeadSummary
	err := pause.Poll(ctx, 5*time.Millisecond, func() bool {
		var err error
		h, err = store.HeadSummary(ctx, head)
		return err == nil && h.Shown != nil && strings.HasPrefix(h.Shown.Mark, "pending|needs approval|")
	})
	if err != nil {
		t.Errorf("the record never kept what was shown: %+v", h.Shown)
	}
}
