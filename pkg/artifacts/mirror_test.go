package artifacts

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestUpdateMirror(t *testing.T) {
	t.Parallel()
	o := newOrigin(t)
	base := o.commit("", "base", file{name: "README", content: "hello\n"})
	o.setRef("refs/heads/main", base)
	o.setRef("refs/tags/v1", base)
	w := openWorkspace(t)
	ctx := testContext(t)
	mirror, err := w.MirrorDir("o", "r")
	if err != nil {
		t.Fatal(err)
	}

	t.Run("first_call_clones_heads_tags_and_nothing_half_made", func(t *testing.T) {
		if err := w.UpdateMirror(ctx, "o", "r", o.dir, GitAuth{}); err != nil {
			t.Fatal(err)
		}
		got := refs(t, mirror)
		if got["refs/heads/main"] != base || got["refs/tags/v1"] != base {
			t.Errorf("mirror refs = %v", got)
		}
		leftovers, err := filepath.Glob(filepath.Join(filepath.Dir(mirror), ".source.tmp-*"))
		if err != nil || len(leftovers) != 0 {
			t.Errorf("temporary clones left behind: %v %v", leftovers, err)
		}
		if !w.HasCommit(ctx, "o", "r", base) {
			t.Errorf("HasCommit(%s) = false after clone", base)
		}
	})

	head := o.commit(base, "feature", file{name: "README", content: "hello\n"}, file{name: "new.txt", content: "new\n"})
	t.Run("fetch_picks_up_new_commits_and_pull_refs", func(t *testing.T) {
		o.setRef("refs/pull/1/head", head)
		o.setRef("refs/heads/feature", head)
		if w.HasCommit(ctx, "o", "r", head) {
			t.Fatalf("HasCommit(%s) before fetching it", head)
		}
		if err := w.UpdateMirror(ctx, "o", "r", o.dir, GitAuth{}); err != nil {
			t.Fatal(err)
		}
		if got := refs(t, mirror)["refs/pull/1/head"]; got != head {
			t.Errorf("refs/pull/1/head = %q, want %s", got, head)
		}
		if !w.HasCommit(ctx, "o", "r", head) {
			t.Errorf("HasCommit(%s) = false after fetch", head)
		}
	})

	t.Run("fetch_prunes_deleted_refs_but_keeps_pins", func(t *testing.T) {
		b := Build{Owner: "o", Repo: "r", Pull: 1, Number: 1}
		if err := w.pin(ctx, mirror, b, head); err != nil {
			t.Fatal(err)
		}
		o.deleteRef("refs/heads/feature")
		o.deleteRef("refs/pull/1/head")
		o.deleteRef("refs/tags/v1")
		if err := w.UpdateMirror(ctx, "o", "r", o.dir, GitAuth{}); err != nil {
			t.Fatal(err)
		}
		got := refs(t, mirror)
		for _, ref := range []string{"refs/heads/feature", "refs/pull/1/head", "refs/tags/v1"} {
			if _, ok := got[ref]; ok {
				t.Errorf("%s not pruned", ref)
			}
		}
		if got[pinRef(b)] != head {
			t.Errorf("pin %s = %q after a pruning fetch, want %s", pinRef(b), got[pinRef(b)], head)
		}
	})
}

func TestUpdateMirrorInParallel(t *testing.T) {
	t.Parallel()
	o := newOrigin(t)
	o.setRef("refs/heads/main", o.commit("", "base", file{name: "a", content: "a"}))
	w := openWorkspace(t)
	ctx := testContext(t)
	for round := range 2 {
		if round == 1 {
			o.setRef("refs/pull/2/head", o.commit("", "second", file{name: "b", content: "b"}))
		}
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			wg.Go(func() { errs[i] = w.UpdateMirror(ctx, "o", "r", o.dir, GitAuth{}) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("round %d, call %d: %v", round, i, err)
			}
		}
	}
	mirror, err := w.MirrorDir("o", "r")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := refs(t, mirror)["refs/pull/2/head"]; !ok {
		t.Error("refs/pull/2/head missing after parallel fetches")
	}
}

func TestUpdateMirrorWaitsForAnotherProcess(t *testing.T) {
	t.Parallel()
	o := newOrigin(t)
	o.setRef("refs/heads/main", o.commit("", "base", file{name: "a", content: "a"}))
	w := openWorkspace(t)
	mirror, err := w.MirrorDir("o", "r")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.ensureDir(filepath.Dir(mirror)); err != nil {
		t.Fatal(err)
	}
	// An flock taken through another open file stands for another worker
	// process holding the mirror.
	other, err := os.OpenFile(filepath.Join(filepath.Dir(mirror), ".source.lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := syscall.Flock(int(other.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(testContext(t), 200*time.Millisecond)
	defer cancel()
	err = w.UpdateMirror(ctx, "o", "r", o.dir, GitAuth{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("UpdateMirror while another process holds the lock = %v, want the deadline", err)
	}
	if _, statErr := os.Lstat(mirror); !errors.Is(statErr, os.ErrNotExist) {
		t.Errorf("mirror created without the lock: %v", statErr)
	}
	if err := syscall.Flock(int(other.Fd()), syscall.LOCK_UN); err != nil {
		t.Fatal(err)
	}
	if err := w.UpdateMirror(testContext(t), "o", "r", o.dir, GitAuth{}); err != nil {
		t.Errorf("UpdateMirror after the lock was released: %v", err)
	}
}

func TestUpdateMirrorCleansUpFailedClones(t *testing.T) {
	t.Parallel()
	w := openWorkspace(t)
	ctx := testContext(t)
	mirror, err := w.MirrorDir("o", "r")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.ensureDir(filepath.Dir(mirror)); err != nil {
		t.Fatal(err)
	}
	crashed := filepath.Join(filepath.Dir(mirror), ".source.tmp-crashed")
	if err := os.MkdirAll(filepath.Join(crashed, "objects"), 0o555); err != nil {
		t.Fatal(err)
	}
	err = w.UpdateMirror(ctx, "o", "r", filepath.Join(t.TempDir(), "missing.git"), GitAuth{})
	if err == nil {
		t.Fatal("UpdateMirror from a missing repository succeeded")
	}
	leftovers, globErr := filepath.Glob(filepath.Join(filepath.Dir(mirror), ".source*"))
	if globErr != nil {
		t.Fatal(globErr)
	}
	if len(leftovers) != 1 || filepath.Base(leftovers[0]) != ".source.lock" {
		t.Errorf("after a failed clone the repository directory holds %v, want only the lock file", leftovers)
	}
}

func TestUpdateMirrorRefusesBadInput(t *testing.T) {
	t.Parallel()
	w := openWorkspace(t)
	ctx := testContext(t)
	pwned := filepath.Join(t.TempDir(), "pwned")
	tests := []struct {
		name, owner, repo, url string
	}{
		{"ext_transport_runs_commands", "o", "r", "ext::sh -c touch% " + pwned},
		{"url_looking_like_an_option", "o", "r", "--upload-pack=touch " + pwned},
		{"password_in_url", "o", "r", "https://user:secret@example.com/o/r.git"},
		{"token_in_url", "o", "r", "https://ghp_secret@example.com/o/r.git"},
		{"relative_path", "o", "r", "origin.git"},
		{"unknown_scheme", "o", "r", "gopher://example.com/r"},
		{"owner_escaping", "..", "r", "https://example.com/o/r.git"},
		{"repo_with_slash", "o", "a/b", "https://example.com/o/r.git"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := w.UpdateMirror(ctx, tt.owner, tt.repo, tt.url, GitAuth{})
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("UpdateMirror = %v, want ErrInvalid", err)
			}
		})
	}
	if _, err := os.Lstat(pwned); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused URL ran a command: %v", err)
	}
}

func TestHasCommitIsFalseForBadInput(t *testing.T) {
	t.Parallel()
	w := openWorkspace(t)
	ctx := testContext(t)
	o := newOrigin(t)
	sha := o.commit("", "base", file{name: "a", content: "a"})
	o.setRef("refs/heads/main", sha)
	if w.HasCommit(ctx, "o", "r", sha) {
		t.Error("HasCommit without a mirror")
	}
	if err := w.UpdateMirror(ctx, "o", "r", o.dir, GitAuth{}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"main", "HEAD", sha[:12], "--all", "0000000000000000000000000000000000000000"} {
		if w.HasCommit(ctx, "o", "r", bad) {
			t.Errorf("HasCommit(%q) = true", bad)
		}
	}
}

// TestUpdateMirrorRecoversFromAKilledFetch leaves what a git fetch killed
// mid-way leaves in a mirror, in each way it can be killed, and fetches
// again: the stale git locks must not stop the fetch.
func TestUpdateMirrorRecoversFromAKilledFetch(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// kill leaves the mirror as the killed fetch would, and returns
		// the workspace that fetches next.
		kill func(t *testing.T, w *Workspace, mirror string) *Workspace
	}{
		{"worker killed, another process fetches", func(t *testing.T, w *Workspace, mirror string) *Workspace {
			// The lock file as a holder killed mid-way leaves it.
			if err := os.Truncate(filepath.Join(filepath.Dir(mirror), ".source.lock"), 0); err != nil {
				t.Fatal(err)
			}
			return w
		}},
		{"worker killed and started again", func(t *testing.T, w *Workspace, mirror string) *Workspace {
			// A new process's first lock looks even when the file says
			// clean (written by a version that did not mark the lock).
			again, err := Open(w.Root())
			if err != nil {
				t.Fatal(err)
			}
			return again
		}},
		{"git killed in this process", func(t *testing.T, w *Workspace, mirror string) *Workspace {
			// Holding the lock, as a fetch does while its git is killed.
			unlock, err := w.lockMirror(testContext(t), mirror)
			if err != nil {
				t.Fatal(err)
			}
			gitKilled.Add(1)
			unlock()
			return w
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := newOrigin(t)
			base := o.commit("", "base", file{name: "a", content: "a"})
			o.setRef("refs/heads/main", base)
			w := openWorkspace(t)
			ctx := testContext(t)
			mirror := mirrored(ctx, t, w, o)
			for _, lock := range []string{"refs/heads/main.lock", "refs/pull/1/head.lock", "packed-refs.lock"} {
				mustWrite(t, filepath.Join(mirror, lock), "")
			}
			w = tc.kill(t, w, mirror)
			next := o.commit(base, "next", file{name: "a", content: "b"})
			o.setRef("refs/heads/main", next)
			o.setRef("refs/pull/1/head", next)
			if err := w.UpdateMirror(ctx, "o", "r", o.dir, GitAuth{}); err != nil {
				t.Fatalf("fetch after a killed fetch: %v", err)
			}
			got := refs(t, mirror)
			if got["refs/heads/main"] != next || got["refs/pull/1/head"] != next {
				t.Errorf("mirror refs after recovery = %v", got)
			}
		})
	}
}

// TestLockMirrorLooksForStaleGitLocksOnlyWhenSomeMayBeThere: a lock taken
// after a holder that ended cleanly, in the same process, does not walk
// the mirror's refs (a lock file planted there by hand stays), and the
// lock file says so only while no one holds the lock.
func TestLockMirrorLooksForStaleGitLocksOnlyWhenSomeMayBeThere(t *testing.T) {
	t.Parallel()
	o := newOrigin(t)
	o.setRef("refs/heads/main", o.commit("", "base", file{name: "a", content: "a"}))
	w := openWorkspace(t)
	ctx := testContext(t)
	mirror := mirrored(ctx, t, w, o)
	lockFile := filepath.Join(filepath.Dir(mirror), ".source.lock")
	if got := readFile(t, lockFile); got != lockClean {
		t.Fatalf("lock file after a clean fetch = %q, want %q", got, lockClean)
	}
	planted := filepath.Join(mirror, "refs", "heads", "planted.lock")
	mustWrite(t, planted, "")
	unlock, err := w.lockMirror(ctx, mirror)
	if err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, lockFile); got != "" {
		t.Errorf("lock file while held = %q, want it empty", got)
	}
	unlock()
	if _, err := os.Lstat(planted); err != nil {
		t.Errorf("a clean lock looked for stale git locks: %v", err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestMaintenanceWaitsForMaintainMirror: the pull handler's fetch
// (UpdateMirrorSince) leaves the mirror's packs piled up, as it runs no
// automatic maintenance (it is on the way to a test's start);
// MaintainMirror collects them, and UpdateMirror (the tests' fetch) does
// as git fetch would.
func TestMaintenanceWaitsForMaintainMirror(t *testing.T) {
	t.Parallel()
	o := newOrigin(t)
	o.setRef("refs/heads/main", o.commit("", "base", file{name: "README", content: "x\n"}))
	w := openWorkspace(t)
	ctx := testContext(t)
	mirror := mirrored(ctx, t, w, o)
	// More packs than gc.autoPackLimit (50) asks git to collect, one
	// blob each.
	for i := range 55 {
		blob := testGit(t, fmt.Sprintf("blob %d\n", i), "--git-dir="+mirror, "hash-object", "-w", "--stdin")
		testGit(t, blob+"\n", "--git-dir="+mirror, "pack-objects", "-q", filepath.Join(mirror, "objects", "pack", "pack"))
	}
	packs := func() int {
		t.Helper()
		found, err := filepath.Glob(filepath.Join(mirror, "objects", "pack", "*.pack"))
		if err != nil {
			t.Fatal(err)
		}
		return len(found)
	}
	before := packs()
	o.setRef("refs/heads/next", o.commit("", "next", file{name: "README", content: "y\n"}))
	if _, err := w.UpdateMirrorSince(ctx, "o", "r", o.dir, GitAuth{}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if n := packs(); n < before {
		t.Errorf("the fetch collected the packs (%d, then %d): it ran maintenance on the way to a test", before, n)
	}
	if err := w.MaintainMirror(ctx, "o", "r"); err != nil {
		t.Fatal(err)
	}
	if n := packs(); n > 2 {
		t.Errorf("%d packs after MaintainMirror, want them collected", n)
	}
	for i := range 55 {
		blob := testGit(t, fmt.Sprintf("more %d\n", i), "--git-dir="+mirror, "hash-object", "-w", "--stdin")
		testGit(t, blob+"\n", "--git-dir="+mirror, "pack-objects", "-q", filepath.Join(mirror, "objects", "pack", "pack"))
	}
	if err := w.UpdateMirror(ctx, "o", "r", o.dir, GitAuth{}); err != nil {
		t.Fatal(err)
	}
	if n := packs(); n > 2 {
		t.Errorf("%d packs after UpdateMirror, want them collected as git fetch would", n)
	}
	if err := w.MaintainMirror(ctx, "o", "nomirror"); err != nil {
		t.Errorf("maintaining a mirror that does not exist: %v", err)
	}
}
