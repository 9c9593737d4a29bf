package artifacts

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestUpdateMirrorSince: a fetch this Workspace began after since stands
// in for the one asked for; an older one, or a zero since, does not.
func TestUpdateMirrorSince(t *testing.T) {
	t.Parallel()
	o := newOrigin(t)
	base := o.commit("", "base", file{name: "README", content: "hello\n"})
	o.setRef("refs/heads/main", base)
	w := openWorkspace(t)
	ctx := testContext(t)
	beforeClone := time.Now()
	if fetched, err := w.UpdateMirrorSince(ctx, "o", "r", o.dir, GitAuth{}, beforeClone); err != nil || !fetched {
		t.Fatalf("first UpdateMirrorSince = %v, %v; want a clone", fetched, err)
	}
	for _, tc := range []struct {
		name   string
		since  time.Time
		want   bool
		before func(*testing.T)
	}{
		{name: "event_queued_before_the_last_fetch_began_is_served_by_it", since: beforeClone, want: false},
		{name: "zero_since_always_fetches", want: true},
		{name: "event_queued_after_the_last_fetch_began_fetches", since: time.Now().Add(time.Hour), want: true},
		{name: "a_removed_mirror_is_cloned_again", since: beforeClone, want: true, before: func(t *testing.T) {
			mirror, err := w.MirrorDir("o", "r")
			if err != nil {
				t.Fatal(err)
			}
			if err := os.RemoveAll(mirror); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.before != nil {
				tc.before(t)
			}
			head := o.commit(base, tc.name, file{name: "README", content: tc.name + "\n"})
			o.setRef("refs/pull/1/head", head)
			fetched, err := w.UpdateMirrorSince(ctx, "o", "r", o.dir, GitAuth{}, tc.since)
			if err != nil {
				t.Fatal(err)
			}
			if fetched != tc.want || w.HasCommit(ctx, "o", "r", head) != tc.want {
				t.Errorf("fetched = %v, mirror has the new head = %v; want both %v", fetched, w.HasCommit(ctx, "o", "r", head), tc.want)
			}
		})
	}
}

// TestTestCheckoutsOfABuildNeedNotLockTheMirror: once the build's own
// checkout is made, its tests' checkouts take the refs it listed and do
// not wait for the mirror, which another process (a long fetch) may hold.
func TestTestCheckoutsOfABuildNeedNotLockTheMirror(t *testing.T) {
	t.Parallel()
	f := newCheckoutFixture(t)
	ctx := testContext(t)
	if err := f.w.Checkout(ctx, f.b, f.head, "main", f.sourceDir(t)); err != nil {
		t.Fatal(err)
	}
	mirror, err := f.w.MirrorDir("o", "r")
	if err != nil {
		t.Fatal(err)
	}
	lock, err := os.Open(filepath.Join(filepath.Dir(mirror), ".source.lock"))
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	// Far longer than a checkout takes: only waiting for the lock ends it.
	wait, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for _, name := range []string{"foo", "bar"} {
		dest, err := f.w.TestSourceDir(f.b, name)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.w.Checkout(wait, f.b, f.head, "main", dest); err != nil {
			t.Fatalf("test %s while another process holds the mirror: %v", name, err)
		}
		packed, err := os.ReadFile(filepath.Join(dest, ".git", "packed-refs"))
		if err != nil || !bytes.Contains(packed, []byte(f.base+" refs/heads/main\n")) {
			t.Errorf("test %s's packed-refs = %q, %v; want its base branch", name, packed, err)
		}
	}
}

// TestTestsOfABuildDoNotSeeEachOthersWrites: tests of one build checked
// out one after the other, sharing the build's refs, each get a clean
// copy: what an earlier test wrote (its files, its refs, its index) is in
// no later one.
func TestTestsOfABuildDoNotSeeEachOthersWrites(t *testing.T) {
	t.Parallel()
	f := newCheckoutFixture(t)
	ctx := testContext(t)
	if err := f.w.Checkout(ctx, f.b, f.head, "main", f.sourceDir(t)); err != nil {
		t.Fatal(err)
	}
	var prev string
	for i := range 3 {
		dest, err := f.w.TestSourceDir(f.b, fmt.Sprintf("t%d", i))
		if err != nil {
			t.Fatal(err)
		}
		if err := f.w.Checkout(ctx, f.b, f.head, "main", dest); err != nil {
			t.Fatal(err)
		}
		readme, err := os.ReadFile(filepath.Join(dest, "README"))
		if err != nil || string(readme) != "pull\n" {
			t.Errorf("t%d's README = %q, %v after t%d wrote its own", i, readme, err, i-1)
		}
		packed, err := os.ReadFile(filepath.Join(dest, ".git", "packed-refs"))
		if err != nil || bytes.Contains(packed, []byte("planted")) {
			t.Errorf("t%d's packed-refs = %q, %v", i, packed, err)
		}
		if _, err := os.Stat(filepath.Join(dest, "debris")); err == nil {
			t.Errorf("t%d sees another test's debris", i)
		}
		if prev != "" && sameFile(t, filepath.Join(prev, "README"), filepath.Join(dest, "README")) {
			t.Errorf("t%d's README is t%d's file", i, i-1)
		}
		// This test writes everywhere it may.
		for name, content := range map[string]string{"README": "written by a test\n", "debris": "x\n", ".git/packed-refs": "planted\n"} {
			if err := os.WriteFile(filepath.Join(dest, filepath.FromSlash(name)), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		prev = dest
	}
}

func sameFile(t *testing.T, a, b string) bool {
	t.Helper()
	ia, err := os.Stat(a)
	if err != nil {
		t.Fatal(err)
	}
	ib, err := os.Stat(b)
	if err != nil {
		t.Fatal(err)
	}
	return os.SameFile(ia, ib)
}

// TestResetMirrorRewritesOnlyWhatChanged: the mirror's config and HEAD
// are left as they are when they are already ours (creating files is
// what costs), and replaced when changed or hard-linked elsewhere.
func TestResetMirrorRewritesOnlyWhatChanged(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		plant func(t *testing.T, path string)
		keeps bool
	}{
		{name: "ours_is_kept", plant: func(*testing.T, string) {}, keeps: true},
		{name: "changed_is_replaced", plant: func(t *testing.T, path string) {
			appendTo(t, path, "[core]\n\tfsmonitor = /tmp/evil\n")
		}},
		{name: "hard_linked_is_replaced", plant: func(t *testing.T, path string) {
			if err := os.Link(path, filepath.Join(t.TempDir(), "elsewhere")); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			mirror := filepath.Join(t.TempDir(), "source")
			if err := os.MkdirAll(mirror, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := resetMirror(mirror); err != nil {
				t.Fatal(err)
			}
			config := filepath.Join(mirror, "config")
			before, err := os.Stat(config)
			if err != nil {
				t.Fatal(err)
			}
			tc.plant(t, config)
			if err := resetMirror(mirror); err != nil {
				t.Fatal(err)
			}
			after, err := os.Stat(config)
			if err != nil {
				t.Fatal(err)
			}
			if got := os.SameFile(before, after); got != tc.keeps {
				t.Errorf("config kept = %v, want %v", got, tc.keeps)
			}
			if data, err := os.ReadFile(config); err != nil || string(data) != mirrorConfig {
				t.Errorf("config = %q, %v; want %q", data, err, mirrorConfig)
			}
		})
	}
}

func appendTo(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestBuildRefs: kept refs serve the same build and commit within
// refsKeptFor of their listing, and at most refsKept builds are kept.
func TestBuildRefs(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	var r buildRefs
	r.put("m", "refs/yci/builds/1/1", "aaa", []byte("refs"), now)
	for _, tc := range []struct {
		name, pin, sha string
		at             time.Time
		want           bool
	}{
		{name: "same_build_soon", pin: "refs/yci/builds/1/1", sha: "aaa", at: now.Add(refsKeptFor - time.Second), want: true},
		{name: "same_build_too_late", pin: "refs/yci/builds/1/1", sha: "aaa", at: now.Add(refsKeptFor)},
		{name: "clock_went_back", pin: "refs/yci/builds/1/1", sha: "aaa", at: now.Add(-time.Second)},
		{name: "other_commit", pin: "refs/yci/builds/1/1", sha: "bbb", at: now},
		{name: "other_build", pin: "refs/yci/builds/1/2", sha: "aaa", at: now},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, got := r.get("m", tc.pin, tc.sha, tc.at); got != tc.want {
				t.Errorf("get = %v, want %v", got, tc.want)
			}
		})
	}
	t.Run("one_lists_the_others_wait_for_it", func(t *testing.T) {
		var r buildRefs
		ctx := testContext(t)
		_, ok, done, err := r.list(ctx, "m", "p", "aaa")
		if err != nil || ok {
			t.Fatalf("first list = %v, %v; want to list", ok, err)
		}
		type answer struct {
			refs []byte
			ok   bool
			err  error
		}
		second := make(chan answer, 1)
		go func() {
			refs, ok, done, err := r.list(ctx, "m", "p", "aaa")
			if done != nil {
				done()
			}
			second <- answer{refs, ok, err}
		}()
		r.put("m", "p", "aaa", []byte("listed once"), time.Now())
		done()
		if a := <-second; a.err != nil || !a.ok || string(a.refs) != "listed once" {
			t.Errorf("second list = %q, %v, %v; want the first's refs", a.refs, a.ok, a.err)
		}
	})
	t.Run("a_failed_listing_lets_the_next_list", func(t *testing.T) {
		var r buildRefs
		ctx := testContext(t)
		_, _, done, err := r.list(ctx, "m", "p", "aaa")
		if err != nil {
			t.Fatal(err)
		}
		done() // failed: nothing put
		_, ok, done, err := r.list(ctx, "m", "p", "aaa")
		if err != nil || ok || done == nil {
			t.Fatalf("list after a failed listing = %v, %v; want to list", ok, err)
		}
		done()
	})
	t.Run("forgotten_when_unpinned", func(t *testing.T) {
		var r buildRefs
		r.put("m", "p", "aaa", nil, now)
		r.forget("m", "p")
		if _, ok := r.get("m", "p", "aaa", now); ok {
			t.Error("refs of an unpinned build still served")
		}
	})
	t.Run("bounded", func(t *testing.T) {
		var r buildRefs
		for i := range refsKept + 10 {
			r.put("m", fmt.Sprint(i), "aaa", nil, now)
		}
		if len(r.kept) != refsKept || len(r.order) != refsKept {
			t.Errorf("%d kept (%d in order), want %d", len(r.kept), len(r.order), refsKept)
		}
		if _, ok := r.get("m", "0", "aaa", now); ok {
			t.Error("the oldest build's refs were kept past the bound")
		}
	})
}
