package worker

import (
	"testing"
	"time"

	"github.com/yourci/yourci/pkg/events"
)

// The page of a superseded build links to the build that replaced it,
// whichever of the two records the keeper sees first (issue 15).
func TestPageKeeperLinksTheSuccessor(t *testing.T) {
	t.Parallel()
	const newSHA = "fedcba9876543210fedcba9876543210fedcba98"
	superseded := func() events.BuildRecord {
		rec := buildWith(1, 1, events.TestSuperseded, "old head")
		rec.Tests[0].SupersededBy, rec.Tests[0].Updated = newSHA, time.Now()
		return rec
	}
	successor := func(n int) events.BuildRecord {
		rec := buildWith(1, n, events.TestRunning, "new head")
		rec.SHA = newSHA
		return rec
	}
	const link = `Replaced by <a href="../3/index.html">build 3</a>`
	page := "acme/widget/pulls/1/1/index.html"
	t.Run("successor_recorded_after_the_page_was_written", func(t *testing.T) {
		t.Parallel()
		r := newKeeperRig(t, 10*time.Millisecond, false)
		r.records.push(superseded())
		waitForFile(t, r.path(page), "superseded by fedcba9")
		r.records.push(successor(3))
		waitForFile(t, r.path(page), link)
	})
	t.Run("successor_recorded_first", func(t *testing.T) {
		t.Parallel()
		r := newKeeperRig(t, 10*time.Millisecond, false)
		r.records.push(buildWith(1, 1, events.TestRunning, "old head"))
		r.records.push(successor(3))
		r.records.push(superseded())
		waitForFile(t, r.path(page), link)
	})
	t.Run("successor_first_recorded_without_its_commit", func(t *testing.T) {
		t.Parallel()
		// A build's first revision may carry only the base it merged; its
		// commit comes with the next. The page is written between the two
		// and links the successor once the commit arrives.
		r := newKeeperRig(t, 10*time.Millisecond, false)
		early := successor(3)
		early.SHA, early.Revision = "", 1
		r.records.push(early)
		r.records.push(superseded())
		waitForFile(t, r.path(page), "superseded by fedcba9")
		later := successor(3)
		later.Revision = 2
		r.records.push(later)
		waitForFile(t, r.path(page), link)
	})
	t.Run("successor_known_only_to_the_bucket", func(t *testing.T) {
		t.Parallel()
		// A keeper started after the successor was recorded, and since
		// pruned, finds it among the repository's recent records.
		r := newKeeperRig(t, 10*time.Millisecond, false)
		rec := successor(3)
		r.records.mu.Lock()
		r.records.latest[rec.Key] = rec
		r.records.mu.Unlock()
		r.records.push(superseded())
		waitForFile(t, r.path(page), link)
	})
}
