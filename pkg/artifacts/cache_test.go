package artifacts

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/yourci/yourci/pkg/pause"
)

func TestCacheDirIsPerRepositoryAndSurvivesCleanup(t *testing.T) {
	t.Parallel()
	w, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a, err := w.CacheDir("acme", "app")
	if err != nil {
		t.Fatal(err)
	}
	b, err := w.CacheDir("acme", "other")
	if err != nil {
		t.Fatal(err)
	}
	if a == b || filepath.Dir(a) != filepath.Join(w.Root(), ".cache", "acme") {
		t.Fatalf("caches %s and %s", a, b)
	}
	if _, err := w.CacheDir("acme", "../x"); err == nil {
		t.Error("a repository name with a path in it got a cache")
	}
	marker := filepath.Join(a, "marker")
	if err := os.WriteFile(marker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Cleanup(t.Context(), 0, time.Now().Add(time.Hour), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Errorf("cleanup removed the cache: %v", err)
	}
}

// TestCleanupCaches: a repository cache unused for longer than the age
// goes, one used recently or in use right now stays (in use means a
// UseCache not yet released, also one taken before the age passed), and
// a stamp set in the future counts as tampered with.
func TestCleanupCaches(t *testing.T) {
	t.Parallel()
	w, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	now := time.Now()
	const age = 30 * 24 * time.Hour
	use := func(repo string, at time.Time) (string, func()) {
		t.Helper()
		dir, release, err := w.UseCache(ctx, "acme", repo)
		if err != nil {
			t.Fatal(err)
		}
		// A read-only tree inside, as Go's module cache leaves.
		ro := filepath.Join(dir, "go-mod", "m@v1")
		if err := os.MkdirAll(ro, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(ro, "go.mod"), []byte("module m\n"), 0o444); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(ro, 0o555); err != nil {
			t.Fatal(err)
		}
		return dir, func() {
			release()
			stamp := filepath.Join(w.Root(), ".cache", ".used", "acme", repo)
			if err := os.Chtimes(stamp, at, at); err != nil {
				t.Fatal(err)
			}
		}
	}
	old, release := use("old", now.Add(-age-time.Hour))
	release()
	recent, release := use("recent", now.Add(-age+time.Hour))
	release()
	future, release := use("future", now.Add(365*24*time.Hour))
	release()
	_, releaseBusy := use("busy", now.Add(-age-time.Hour))
	releaseBusy() // stamps it old...
	busy, releaseBusy := use("busy", now.Add(-age-time.Hour))
	stamp := filepath.Join(w.Root(), ".cache", ".used", "acme", "busy")
	if err := os.Chtimes(stamp, now.Add(-age-time.Hour), now.Add(-age-time.Hour)); err != nil {
		t.Fatal(err)
	}
	// ...and is in use again, by an attempt that started long ago.

	rep, err := w.CleanupCaches(ctx, age, now)
	if err != nil {
		t.Fatal(err)
	}
	gone := map[string]bool{}
	for _, c := range rep.Caches {
		gone[c] = true
	}
	for dir, want := range map[string]bool{old: true, recent: false, future: true, busy: false} {
		_, statErr := os.Stat(dir)
		if removed := os.IsNotExist(statErr); removed != want || gone["acme/"+filepath.Base(dir)] != want {
			t.Errorf("%s: removed %v (reported %v), want %v", filepath.Base(dir), removed, gone["acme/"+filepath.Base(dir)], want)
		}
	}
	if rep.BytesFreed != 2*int64(len("module m\n")) {
		t.Errorf("BytesFreed = %d, want %d", rep.BytesFreed, 2*len("module m\n"))
	}
	releaseBusy()
	// A lock lives as long as any copy of its descriptor: a process another
	// test forks at that moment holds one until its exec closes it, so the
	// cache can look busy for a moment after its release.
	var after CleanupReport
	waitCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if pause.Poll(waitCtx, 20*time.Millisecond, func() bool {
		after, err = w.CleanupCaches(ctx, age, now)
		return err != nil || len(after.Caches) > 0
	}) != nil {
		t.Log("the busy cache stayed busy after its release for 2s")
	}
	if err != nil || len(after.Caches) != 1 || after.Caches[0] != "acme/busy" {
		t.Errorf("after its release, CleanupCaches = %v, %v; want the busy cache removed", after.Caches, err)
	}
	// A removed cache comes back, empty, on its next use.
	dir, release, err := w.UseCache(ctx, "acme", "old")
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
		t.Errorf("cache after removal: %v, %v; want it empty", entries, err)
	}
	if _, err := w.CleanupCaches(ctx, 0, now); err == nil {
		t.Error("a zero age was accepted")
	}
}

// TestCleanupCachesAcrossWorkspaces: the lock is a file lock, so a cleanup
// run from another Workspace on the same root (reconcile's process, not the
// worker's) skips a cache in use and removes it once released.
func TestCleanupCachesAcrossWorkspaces(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	worker, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	cleaner, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	dir, release, err := worker.UseCache(t.Context(), "acme", "app")
	if err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(100 * 24 * time.Hour)
	if rep, err := cleaner.CleanupCaches(t.Context(), time.Hour, later); err != nil || len(rep.Caches) != 0 {
		t.Errorf("cleanup while in use = %v, %v; want nothing removed", rep.Caches, err)
	}
	release()
	if rep, err := cleaner.CleanupCaches(t.Context(), time.Hour, later); err != nil || len(rep.Caches) != 1 {
		t.Errorf("cleanup once released = %v, %v; want the cache removed", rep.Caches, err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("cache still there: %v", err)
	}
}
