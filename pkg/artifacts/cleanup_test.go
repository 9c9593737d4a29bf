package artifacts

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// age sets the modification time of path and everything below it, symlinks
// themselves included, to when.
func age(t *testing.T, path string, when time.Time) {
	t.Helper()
	args := []string{"-h", "-d", "@" + strconv.FormatInt(when.Unix(), 10)}
	err := filepath.WalkDir(path, func(p string, _ os.DirEntry, err error) error {
		args = append(args, p)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("touch", args...).CombinedOutput(); err != nil {
		t.Fatalf("touch: %v: %s", err, out)
	}
}

func mustWrite(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustSymlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// cleanupFixture builds a workspace holding builds of every kind Cleanup
// must tell apart, all but the recent ones aged past the cutoff.
type cleanupFixture struct {
	w                         *Workspace
	old, recent, running, hot Build
	outsideFile, outsideDir   string
	oldSize                   int64
	now                       time.Time
}

func newCleanupFixture(t *testing.T) *cleanupFixture {
	t.Helper()
	ctx := testContext(t)
	outside := t.TempDir()
	f := &cleanupFixture{
		w:           openWorkspace(t),
		old:         Build{Owner: "o", Repo: "r", Pull: 1, Number: 1},
		recent:      Build{Owner: "o", Repo: "r", Pull: 1, Number: 2},
		running:     Build{Owner: "o", Repo: "r", Pull: 2, Number: 1},
		hot:         Build{Owner: "o", Repo: "r", Pull: 3, Number: 1},
		outsideFile: filepath.Join(outside, "precious.txt"),
		outsideDir:  filepath.Join(outside, "dir"),
		now:         time.Now(),
	}
	mustWrite(t, f.outsideFile, "keep me\n")
	mustWrite(t, filepath.Join(f.outsideDir, "inner.txt"), "keep me too\n")
	o := newOrigin(t)
	sha := o.commit("", "escaping links",
		file{name: "README", content: "hi\n"},
		file{name: "to-file", link: f.outsideFile},
		file{name: "to-dir", link: f.outsideDir})
	o.setRef("refs/pull/1/head", sha)
	if err := f.w.UpdateMirror(ctx, "o", "r", o.dir, GitAuth{}); err != nil {
		t.Fatal(err)
	}
	for _, b := range []Build{f.old, f.recent, f.running, f.hot} {
		src, err := f.w.SourceDir(b)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.w.Checkout(ctx, b, sha, "main", src); err != nil {
			t.Fatal(err)
		}
		log, err := f.w.LogPath(b, "foo-x")
		if err != nil {
			t.Fatal(err)
		}
		mustWrite(t, log, "output\n")
		if err := f.w.LinkLog(b, "foo-x"); err != nil {
			t.Fatal(err)
		}
	}
	oldDir, err := f.w.BuildDir(f.old)
	if err != nil {
		t.Fatal(err)
	}
	readOnly := filepath.Join(oldDir, "foo-x", "ro")
	mustWrite(t, filepath.Join(readOnly, "file"), "x")
	if err := os.Chmod(readOnly, 0o555); err != nil {
		t.Fatal(err)
	}
	f.oldSize = treeSize(t, oldDir)

	f.addStrays(t, ctx, sha, outside)
	age(t, f.w.Root(), f.now.Add(-2*time.Hour))
	age(t, outside, f.now.Add(-2*time.Hour))
	recentDir, err := f.w.BuildDir(f.recent)
	if err != nil {
		t.Fatal(err)
	}
	age(t, recentDir, f.now.Add(-time.Minute))
	hotLog, err := f.w.LogPath(f.hot, "foo-x")
	if err != nil {
		t.Fatal(err)
	}
	age(t, hotLog, f.now.Add(-time.Minute))
	if err := f.w.LinkLog(Build{Owner: "o", Repo: "r", Pull: 8, Number: 1}, "not-yet-written"); err != nil {
		t.Fatal(err)
	}
	return f
}

// addStrays adds what Cleanup must recognise as not, or no longer, a build:
// an orphan pin, dangling and escaping links, odd directory names, and an
// owner directory that is a symlink leading outside.
func (f *cleanupFixture) addStrays(t *testing.T, ctx context.Context, sha, outside string) {
	t.Helper()
	// A pin whose build directory is already gone.
	mirror, err := f.w.MirrorDir("o", "r")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.w.pin(ctx, mirror, Build{Owner: "o", Repo: "r", Pull: 7, Number: 1}, sha); err != nil {
		t.Fatal(err)
	}
	repoDir := filepath.Join(f.w.Root(), "o", "r")
	mustSymlink(t, "pulls/9/9/gone/out.txt", filepath.Join(repoDir, "9-9-gone-out.txt"))
	mustSymlink(t, filepath.Join(outside, "nothing"), filepath.Join(repoDir, "5-5-abs-out.txt"))
	mustSymlink(t, "../../../nothing", filepath.Join(repoDir, "5-6-up-out.txt"))
	for _, stray := range []string{"abc/1", "01/1", "4/0"} {
		mustWrite(t, filepath.Join(repoDir, "pulls", stray, "file"), "not a build\n")
	}
	// Never entered: it directory that is a symlink leads outside: never entered.
	mustWrite(t, filepath.Join(outside, "r", "pulls", "1", "1", "file"), "outside build\n")
	mustSymlink(t, outside, filepath.Join(f.w.Root(), "evil"))
}

func TestCleanup(t *testing.T) {
	t.Parallel()
	f := newCleanupFixture(t)
	ctx := testContext(t)
	running := func(b Build) bool { return b == f.running }
	rep, err := f.w.Cleanup(ctx, time.Hour, f.now, running)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("removes_only_old_builds_that_are_not_running", func(t *testing.T) {
		if diff := cmp.Diff([]Build{f.old}, rep.Builds); diff != "" {
			t.Errorf("removed builds (-want +got):\n%s", diff)
		}
		for _, kept := range []Build{f.recent, f.running, f.hot} {
			dir, err := f.w.SourceDir(kept)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(dir, "README")); err != nil {
				t.Errorf("build %s lost its checkout: %v", kept, err)
			}
		}
		if rep.BytesFreed != f.oldSize {
			t.Errorf("BytesFreed = %d, want %d", rep.BytesFreed, f.oldSize)
		}
	})

	t.Run("removes_dangling_links_and_pins_of_removed_builds", func(t *testing.T) {
		want := []string{"o/r/1-1-foo-x-out.txt", "o/r/9-9-gone-out.txt"}
		if diff := cmp.Diff(want, rep.Links); diff != "" {
			t.Errorf("removed links (-want +got):\n%s", diff)
		}
		if rep.Pins != 2 {
			t.Errorf("Pins = %d, want 2 (the removed build's and the orphan's)", rep.Pins)
		}
		mirror, err := f.w.MirrorDir("o", "r")
		if err != nil {
			t.Fatal(err)
		}
		got := refs(t, mirror)
		for _, b := range []Build{f.recent, f.running, f.hot} {
			if _, ok := got[pinRef(b)]; !ok {
				t.Errorf("pin of kept build %s removed", b)
			}
		}
		for _, b := range []Build{f.old, {Owner: "o", Repo: "r", Pull: 7, Number: 1}} {
			if _, ok := got[pinRef(b)]; ok {
				t.Errorf("pin of %s kept", b)
			}
		}
	})

	t.Run("leaves_everything_else_alone", func(t *testing.T) {
		root := f.w.Root()
		kept := []string{
			"o/r/source/HEAD",
			"o/r/1-2-foo-x-out.txt", "o/r/8-1-not-yet-written-out.txt",
			"o/r/5-5-abs-out.txt", "o/r/5-6-up-out.txt",
			"o/r/pulls/abc/1/file", "o/r/pulls/01/1/file", "o/r/pulls/4/0/file",
			"evil/r/pulls/1/1/file",
		}
		for _, p := range kept {
			if _, err := os.Lstat(filepath.Join(root, p)); err != nil {
				t.Errorf("%s: %v", p, err)
			}
		}
		for _, p := range []string{f.outsideFile, filepath.Join(f.outsideDir, "inner.txt")} {
			if _, err := os.Stat(p); err != nil {
				t.Errorf("file outside the workspace touched: %v", err)
			}
		}
	})

	t.Run("a_second_run_removes_nothing", func(t *testing.T) {
		again, err := f.w.Cleanup(ctx, time.Hour, f.now, running)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(CleanupReport{}, again); diff != "" {
			t.Errorf("second cleanup (-want +got):\n%s", diff)
		}
	})
}

func TestCleanupRefusesBadArguments(t *testing.T) {
	t.Parallel()
	w := openWorkspace(t)
	if _, err := w.Cleanup(testContext(t), -time.Hour, time.Now(), nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("negative age = %v, want ErrInvalid", err)
	}
	if err := w.LinkLog(Build{Owner: "o", Repo: "r", Pull: 1, Number: 1}, "t"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(testContext(t))
	cancel()
	if _, err := w.Cleanup(ctx, 0, time.Now(), nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled cleanup = %v, want context.Canceled", err)
	}
}
