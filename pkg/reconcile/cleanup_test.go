package reconcile_test

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/yourci/yourci/pkg/artifacts"
	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/reconcile"
)

// makeBuild writes a build with one test log and its symlink, everything
// last modified at when.
func makeBuild(t *testing.T, ws *artifacts.Workspace, b artifacts.Build, when time.Time) {
	t.Helper()
	dir, err := ws.CreateTestDir(b, "foo-x")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "out.txt"), bytes.Repeat([]byte("log line\n"), 100), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := ws.LinkLog(b, "foo-x"); err != nil {
		t.Fatal(err)
	}
	build, err := ws.BuildDir(b)
	if err != nil {
		t.Fatal(err)
	}
	link, err := ws.LogLink(b, "foo-x")
	if err != nil {
		t.Fatal(err)
	}
	setTimes(t, build, when)
	setTimes(t, link, when)
}

// setTimes sets the modification time of path and all below it, symlinks
// themselves rather than their targets.
func setTimes(t *testing.T, path string, when time.Time) {
	t.Helper()
	tv := []unix.Timeval{unix.NsecToTimeval(when.UnixNano()), unix.NsecToTimeval(when.UnixNano())}
	err := filepath.WalkDir(path, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return unix.Lutimes(p, tv)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestCleanupKeepsRunningAndRecentBuilds(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	now := time.Now()
	build := func(pull, number int) artifacts.Build {
		return artifacts.Build{Owner: "acme", Repo: "widgets", Pull: pull, Number: number}
	}
	tests := []struct {
		name      string
		olderThan time.Duration
		builds    map[artifacts.Build]time.Time
		queued    []artifacts.Build // a test of it waits in the queue
		removed   []artifacts.Build
	}{
		{
			name:      "fourteen_days",
			olderThan: 336 * time.Hour,
			builds: map[artifacts.Build]time.Time{
				build(1, 1): now.Add(-20 * 24 * time.Hour), // old
				build(1, 2): now.Add(-20 * 24 * time.Hour), // old, but waiting for a retry
				build(2, 1): now.Add(-time.Hour),           // recent
			},
			queued:  []artifacts.Build{build(1, 2)},
			removed: []artifacts.Build{build(1, 1)},
		},
		{
			name:      "an_age_shorter_than_a_test_keeps_the_running_window",
			olderThan: 30 * time.Minute,
			builds: map[artifacts.Build]time.Time{
				build(1, 1): now.Add(-90 * time.Minute), // past the age, within the window
				build(1, 2): now.Add(-3 * time.Hour),    // past both
			},
			removed: []artifacts.Build{build(1, 2)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ws, err := artifacts.Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			for b, when := range tt.builds {
				makeBuild(t, ws, b, when)
			}
			outside := filepath.Join(t.TempDir(), "precious.txt")
			if err := os.WriteFile(outside, []byte("keep"), 0o644); err != nil {
				t.Fatal(err)
			}
			setTimes(t, outside, now.Add(-100*24*time.Hour))
			e.purge(t)
			for _, b := range tt.queued {
				job := events.TestJob{Repo: repo(b.Owner, b.Repo), Number: b.Pull, HeadSHA: strings.Repeat("a", 40),
					Build: b.Number, Attempt: 2, Test: events.TestSpec{Name: "foo-x", Command: "true"}, NotBefore: now.Add(time.Hour)}
				if err := e.bus.Queue().PublishTest(testContext(t), job); err != nil {
					t.Fatal(err)
				}
			}

			rep, err := reconcile.Cleanup(testContext(t), ws, e.backlog, reconcile.CleanupOptions{OlderThan: tt.olderThan, Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}

			checkCleanup(t, ws, rep, tt.builds, tt.removed)
			if _, err := os.Stat(outside); err != nil {
				t.Errorf("a file outside the workspace was touched: %v", err)
			}
		})
	}
}

// checkCleanup compares what Cleanup removed, and says it removed, with
// the builds that should be gone.
func checkCleanup(t *testing.T, ws *artifacts.Workspace, rep artifacts.CleanupReport, builds map[artifacts.Build]time.Time, removed []artifacts.Build) {
	t.Helper()
	slices.SortFunc(rep.Builds, func(a, b artifacts.Build) int { return strings.Compare(a.String(), b.String()) })
	if diff := cmp.Diff(removed, rep.Builds); diff != "" {
		t.Errorf("removed builds (-want +got):\n%s", diff)
	}
	for b := range builds {
		dir, err := ws.BuildDir(b)
		if err != nil {
			t.Fatal(err)
		}
		_, statErr := os.Stat(dir)
		if gone := os.IsNotExist(statErr); gone != slices.Contains(removed, b) {
			t.Errorf("build %s gone: %v, want %v", b, gone, !gone)
		}
	}
	if len(rep.Links) != len(removed) || rep.BytesFreed < int64(900*len(removed)) {
		t.Errorf("report %+v: want the removed builds' links and bytes", rep)
	}
	var out bytes.Buffer
	if err := reconcile.WriteCleanupReport(&out, rep); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "removed build "+removed[0].String()) || !strings.Contains(out.String(), "freed") {
		t.Errorf("report text does not say what was removed and freed:\n%s", out.String())
	}
}
