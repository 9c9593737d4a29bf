package artifacts

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// checkoutFixture is an origin with a pull request and a workspace whose
// mirror holds it.
type checkoutFixture struct {
	o     *origin
	w     *Workspace
	b     Build
	base  string
	head  string
	other string
}

func newCheckoutFixture(t testing.TB) *checkoutFixture {
	t.Helper()
	o := newOrigin(t)
	base := o.commit("", "base", file{name: "README", content: "base\n"})
	head := o.commit(base, "pull", file{name: "README", content: "pull\n"}, file{name: "test.sh", content: "echo ok\n"})
	other := o.commit(base, "other", file{name: "README", content: "other\n"})
	o.setRef("refs/heads/main", base)
	o.setRef("refs/pull/1/head", head)
	o.setRef("refs/heads/other", other)
	o.setRef("refs/tags/v0.9", base)
	o.git("", "tag", "--annotate", "--message=release 1.0", "v1.0", base)
	w := openWorkspace(t)
	if err := w.UpdateMirror(testContext(t), "o", "r", o.dir, GitAuth{}); err != nil {
		t.Fatal(err)
	}
	return &checkoutFixture{o: o, w: w, b: Build{Owner: "o", Repo: "r", Pull: 1, Number: 1}, base: base, head: head, other: other}
}

func (f *checkoutFixture) sourceDir(t *testing.T) string {
	t.Helper()
	dir, err := f.w.SourceDir(f.b)
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestCheckout(t *testing.T) {
	t.Parallel()
	f := newCheckoutFixture(t)
	ctx := testContext(t)
	dest := f.sourceDir(t)
	if err := f.w.Checkout(ctx, f.b, f.head, "main", dest); err != nil {
		t.Fatal(err)
	}

	t.Run("has_the_files_of_the_commit", func(t *testing.T) {
		got, err := os.ReadFile(filepath.Join(dest, "README"))
		if err != nil || string(got) != "pull\n" {
			t.Errorf("README = %q, %v; want the pull's", got, err)
		}
		if head := testGit(t, "", "-C", dest, "rev-parse", "HEAD"); head != f.head {
			t.Errorf("HEAD = %s, want %s", head, f.head)
		}
		if status := testGit(t, "", "-C", dest, "status", "--porcelain"); status != "" {
			t.Errorf("fresh checkout is not clean:\n%s", status)
		}
	})

	t.Run("borrows_objects_from_the_mirror", func(t *testing.T) {
		alt, err := os.ReadFile(filepath.Join(dest, ".git", "objects", "info", "alternates"))
		if err != nil {
			t.Fatal(err)
		}
		mirror, err := f.w.MirrorDir("o", "r")
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(string(alt)); got != filepath.Join(mirror, "objects") {
			t.Errorf("alternates = %q, want the mirror's objects", got)
		}
		if n := countObjects(t, filepath.Join(dest, ".git", "objects")); n != 0 {
			t.Errorf("checkout stores %d objects of its own", n)
		}
	})

	t.Run("config_names_no_remote", func(t *testing.T) {
		config, err := os.ReadFile(filepath.Join(dest, ".git", "config"))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(config, []byte("url")) || bytes.Contains(config, []byte(f.o.dir)) {
			t.Errorf("checkout config mentions a URL:\n%s", config)
		}
	})

	t.Run("behaves_like_a_clone", func(t *testing.T) {
		git := func(args ...string) string { return testGit(t, "", append([]string{"-C", dest}, args...)...) }
		for _, rev := range []string{"main", "origin/main", "refs/heads/main"} {
			if got := git("rev-parse", rev); got != f.base {
				t.Errorf("%s = %s, want the base branch's tip %s", rev, got, f.base)
			}
		}
		if got := git("rev-parse", "origin/other"); got != f.other {
			t.Errorf("origin/other = %s, want %s", got, f.other)
		}
		if got := git("describe", "--tags"); !strings.HasPrefix(got, "v1.0-1-g") {
			t.Errorf("git describe --tags = %q, want v1.0-1-g…", got)
		}
		if got := git("tag", "--list"); got != "v0.9\nv1.0" {
			t.Errorf("tags = %q", got)
		}
		if got := git("for-each-ref", "--format=%(refname)", "refs/heads/"); got != "refs/heads/main" {
			t.Errorf("local branches = %q, want only the base branch", got)
		}
		if got := git("merge-base", "HEAD", "origin/main"); got != f.base {
			t.Errorf("merge-base with origin/main = %s, want %s", got, f.base)
		}
		if branch := git("rev-parse", "--abbrev-ref", "HEAD"); branch != "HEAD" {
			t.Errorf("HEAD is on branch %q, want it detached", branch)
		}
		if n := countObjects(t, filepath.Join(dest, ".git", "refs")); n != 0 {
			t.Errorf("%d loose refs; want every ref in packed-refs", n)
		}
	})

	t.Run("second_call_reuses_the_checkout", func(t *testing.T) {
		marker := filepath.Join(dest, "marker")
		if err := os.WriteFile(marker, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := f.w.Checkout(ctx, f.b, f.head, "main", dest); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(marker); err != nil {
			t.Errorf("checkout was redone rather than reused: %v", err)
		}
	})

	t.Run("another_commit_for_the_same_build_is_refused", func(t *testing.T) {
		if err := f.w.Checkout(ctx, f.b, f.other, "main", dest); err == nil {
			t.Error("checkout over an existing one at another commit succeeded")
		}
		testDest, err := f.w.TestSourceDir(f.b, "foo-x")
		if err != nil {
			t.Fatal(err)
		}
		if err := f.w.Checkout(ctx, f.b, f.other, "main", testDest); !errors.Is(err, ErrInvalid) {
			t.Errorf("checkout of another commit than the build's pin = %v, want ErrInvalid", err)
		}
	})
}

func TestCheckoutBaseBranch(t *testing.T) {
	t.Parallel()
	f := newCheckoutFixture(t)
	ctx := testContext(t)
	tests := []struct {
		name, base string
		wantLocal  string
	}{
		{"other_base_is_the_local_branch", "other", "refs/heads/other"},
		{"no_base_gives_no_local_branch", "", ""},
		{"base_the_mirror_lacks_gives_no_local_branch", "gone", ""},
		{"base_that_is_no_branch_name_gives_no_local_branch", "main\n0000000000000000000000000000000000000000 refs/heads/x", ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := Build{Owner: "o", Repo: "r", Pull: 1, Number: 10 + i}
			dest, err := f.w.SourceDir(b)
			if err != nil {
				t.Fatal(err)
			}
			if err := f.w.Checkout(ctx, b, f.head, tt.base, dest); err != nil {
				t.Fatal(err)
			}
			if got := testGit(t, "", "-C", dest, "for-each-ref", "--format=%(refname)", "refs/heads/"); got != tt.wantLocal {
				t.Errorf("local branches = %q, want %q", got, tt.wantLocal)
			}
			if got := testGit(t, "", "-C", dest, "rev-parse", "origin/main"); got != f.base {
				t.Errorf("origin/main = %s, want %s", got, f.base)
			}
		})
	}
}

func countObjects(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && !strings.Contains(path, string(filepath.Separator)+"info"+string(filepath.Separator)) {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestCheckoutsOfOneBuildAreIndependent(t *testing.T) {
	t.Parallel()
	f := newCheckoutFixture(t)
	ctx := testContext(t)
	names := []string{"foo-x", "foo-y", "bar-x", "bar-y"}
	dests := make([]string, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		dest, err := f.w.TestSourceDir(f.b, name)
		if err != nil {
			t.Fatal(err)
		}
		dests[i] = dest
		wg.Go(func() { errs[i] = f.w.Checkout(ctx, f.b, f.head, "main", dest) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dests[0], "README"), []byte("changed by foo-x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, dest := range dests[1:] {
		if got, err := os.ReadFile(filepath.Join(dest, "README")); err != nil || string(got) != "pull\n" {
			t.Errorf("%s/README = %q, %v after another test wrote its own", dest, got, err)
		}
	}
}

func TestConcurrentCheckoutsOfOneDestinationAllSucceed(t *testing.T) {
	t.Parallel()
	f := newCheckoutFixture(t)
	ctx := testContext(t)
	dest := f.sourceDir(t)
	errs := make([]error, 4)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() { errs[i] = f.w.Checkout(ctx, f.b, f.head, "main", dest) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(filepath.Dir(dest))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("build directory holds %d entries, want only the checkout", len(entries))
	}
}

func TestCheckoutSurvivesForcePushAndGC(t *testing.T) {
	t.Parallel()
	f := newCheckoutFixture(t)
	ctx := testContext(t)
	dest := f.sourceDir(t)
	if err := f.w.Checkout(ctx, f.b, f.head, "main", dest); err != nil {
		t.Fatal(err)
	}
	// The author force-pushes: the old head is no longer reachable upstream.
	rewritten := f.o.commit(f.base, "rewritten", file{name: "README", content: "rewritten\n"})
	f.o.setRef("refs/pull/1/head", rewritten)
	if err := f.w.UpdateMirror(ctx, "o", "r", f.o.dir, GitAuth{}); err != nil {
		t.Fatal(err)
	}
	mirror, err := f.w.MirrorDir("o", "r")
	if err != nil {
		t.Fatal(err)
	}
	if got := refs(t, mirror)["refs/pull/1/head"]; got != rewritten {
		t.Fatalf("mirror did not follow the force-push: refs/pull/1/head = %s", got)
	}
	testGit(t, "", "--git-dir="+mirror, "reflog", "expire", "--expire=now", "--all")
	testGit(t, "", "--git-dir="+mirror, "gc", "--quiet", "--prune=now")

	if log := testGit(t, "", "-C", dest, "log", "--format=%s"); log != "pull\nbase" {
		t.Errorf("git log in the checkout = %q", log)
	}
	if status := testGit(t, "", "-C", dest, "status", "--porcelain"); status != "" {
		t.Errorf("git status in the checkout = %q", status)
	}
	testGit(t, "", "-C", dest, "fsck", "--no-dangling")
	// A test started after the force-push still gets the build's commit.
	testDest, err := f.w.TestSourceDir(f.b, "late")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.w.Checkout(ctx, f.b, f.head, "main", testDest); err != nil {
		t.Errorf("checkout of the pinned commit after gc: %v", err)
	}
}

func TestCheckoutRefusesBadInput(t *testing.T) {
	t.Parallel()
	f := newCheckoutFixture(t)
	ctx := testContext(t)
	buildDir, err := f.w.BuildDir(f.b)
	if err != nil {
		t.Fatal(err)
	}
	outside := t.TempDir()
	tests := []struct {
		name, sha, dest string
	}{
		{"branch_name_instead_of_sha", "main", filepath.Join(buildDir, "source")},
		{"abbreviated_sha", f.head[:12], filepath.Join(buildDir, "source")},
		{"option_as_sha", "--upload-pack=touch /tmp/x", filepath.Join(buildDir, "source")},
		{"uppercase_sha", strings.ToUpper(f.head), filepath.Join(buildDir, "source")},
		{"dest_is_the_build_dir", f.head, buildDir},
		{"dest_escapes_with_dotdot", f.head, filepath.Join(buildDir, "..", "2", "source")},
		{"dest_outside_the_workspace", f.head, outside},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := f.w.Checkout(ctx, f.b, tt.sha, "main", tt.dest); !errors.Is(err, ErrInvalid) {
				t.Errorf("Checkout = %v, want ErrInvalid", err)
			}
		})
	}
	if entries, err := os.ReadDir(outside); err != nil || len(entries) != 0 {
		t.Errorf("refused checkouts wrote outside: %v %v", entries, err)
	}
	missing := Build{Owner: "o", Repo: "nomirror", Pull: 1, Number: 1}
	dest, err := f.w.SourceDir(missing)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.w.Checkout(ctx, missing, f.head, "main", dest); !errors.Is(err, ErrNotMirrored) {
		t.Errorf("checkout without a mirror = %v, want ErrNotMirrored", err)
	}
}

// TestCheckoutOfACommitTheMirrorLacks: a test's checkout on a box that did
// not prepare its build says so with ErrNotMirrored (the worker then
// fetches), makes nothing, and succeeds once the mirror has the commit.
func TestCheckoutOfACommitTheMirrorLacks(t *testing.T) {
	t.Parallel()
	f := newCheckoutFixture(t)
	ctx := testContext(t)
	later := f.o.commit(f.head, "later", file{name: "README", content: "later\n"})
	f.o.setRef("refs/pull/1/head", later)
	dest, err := f.w.TestSourceDir(f.b, "foo")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.w.Checkout(ctx, f.b, later, "main", dest); !errors.Is(err, ErrNotMirrored) {
		t.Fatalf("Checkout of an unfetched commit = %v, want ErrNotMirrored", err)
	}
	if _, err := os.Lstat(dest); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused checkout left %s: %v", dest, err)
	}
	if err := f.w.UpdateMirror(ctx, "o", "r", f.o.dir, GitAuth{}); err != nil {
		t.Fatal(err)
	}
	if err := f.w.Checkout(ctx, f.b, later, "main", dest); err != nil {
		t.Fatalf("Checkout after fetching: %v", err)
	}
	if got, err := os.ReadFile(filepath.Join(dest, "README")); err != nil || string(got) != "later\n" {
		t.Errorf("README = %q (%v), want the fetched commit's", got, err)
	}
}

// TestTestCheckoutsReuseTheBuildsPin: the build's checkout pins its commit
// and every test's checkout of that build finds the pin; a checkout of
// another commit for the same build is refused, whoever made the pin.
func TestTestCheckoutsReuseTheBuildsPin(t *testing.T) {
	t.Parallel()
	f := newCheckoutFixture(t)
	ctx := testContext(t)
	if err := f.w.Checkout(ctx, f.b, f.head, "main", f.sourceDir(t)); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"foo", "bar"} {
		dest, err := f.w.TestSourceDir(f.b, name)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.w.Checkout(ctx, f.b, f.head, "main", dest); err != nil {
			t.Errorf("test %s: %v", name, err)
		}
	}
	dest, err := f.w.TestSourceDir(f.b, "baz")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.w.Checkout(ctx, f.b, f.other, "main", dest); !errors.Is(err, ErrInvalid) {
		t.Errorf("checkout of another commit for a pinned build = %v, want ErrInvalid", err)
	}
}

func TestHostileRefNamesDoNothing(t *testing.T) {
	t.Parallel()
	o := newOrigin(t)
	dir := t.TempDir()
	sha := o.commit("", "base", file{name: "a", content: "a"})
	hostile := []string{
		"refs/heads/$(touch${IFS}" + dir + "/pwned)",
		`refs/heads/zzz";echo${IFS}pwned>` + dir + `/pwned2;#`,
		"refs/heads/--upload-pack=touch${IFS}" + dir + "/x",
		"refs/pull/1/head",
	}
	for _, ref := range hostile {
		o.setRef(ref, sha)
	}
	w := openWorkspace(t)
	ctx := testContext(t)
	if err := w.UpdateMirror(ctx, "o", "r", o.dir, GitAuth{}); err != nil {
		t.Fatal(err)
	}
	b := Build{Owner: "o", Repo: "r", Pull: 1, Number: 1}
	dest, err := w.SourceDir(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Checkout(ctx, b, sha, "main", dest); err != nil {
		t.Fatal(err)
	}
	mirror, err := w.MirrorDir("o", "r")
	if err != nil {
		t.Fatal(err)
	}
	got := refs(t, mirror)
	for _, ref := range hostile {
		if got[ref] != sha {
			t.Errorf("ref %q not mirrored as plain data", ref)
		}
	}
	for _, name := range []string{"pwned", "pwned2", "x"} {
		if _, err := os.Lstat(filepath.Join(dir, name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s exists: a ref name was executed", name)
		}
	}
}

// BenchmarkCheckout measures a build checkout of a repository with history,
// and reports its size on disk against the mirror's.
func BenchmarkCheckout(b *testing.B) {
	o := newOrigin(b)
	var stream strings.Builder
	const commits, filesPerCommit, fileSize = 100, 5, 8 << 10
	buf := make([]byte, fileSize/2)
	for c := 1; c <= commits; c++ {
		fmt.Fprintf(&stream, "commit refs/heads/main\ncommitter Test <test@example.com> %d +0000\ndata 7\ncommit\n", 1700000000+c)
		for i := 0; i < filesPerCommit; i++ {
			if _, err := rand.Read(buf); err != nil {
				b.Fatal(err)
			}
			content := fmt.Sprintf("%x", buf) // incompressible enough to show history's cost
			fmt.Fprintf(&stream, "M 100644 inline file%02d.txt\ndata %d\n%s\n", (c*filesPerCommit+i)%40, len(content), content)
		}
	}
	o.git(stream.String(), "fast-import", "--quiet")
	head := o.git("", "rev-parse", "refs/heads/main")
	o.setRef("refs/pull/1/head", head)
	w := openWorkspace(b)
	ctx := testContext(b)
	mirror := mirrored(ctx, b, w, o)
	var dest string
	n := 0
	for b.Loop() {
		n++
		build := Build{Owner: "o", Repo: "r", Pull: 1, Number: n}
		var err error
		if dest, err = w.SourceDir(build); err != nil {
			b.Fatal(err)
		}
		if err := w.Checkout(ctx, build, head, "main", dest); err != nil {
			b.Fatal(err)
		}
	}
	checkout, mirrorSize := treeSize(b, dest), treeSize(b, mirror)
	b.ReportMetric(float64(checkout), "checkout-bytes")
	b.ReportMetric(float64(mirrorSize), "mirror-bytes")
	b.ReportMetric(float64(checkout)/float64(mirrorSize), "checkout/mirror")
}

// TestInitRepoIsGitInit: the .git a checkout starts from is what
// "git init --template=" makes, file for file, in both object formats.
func TestInitRepoIsGitInit(t *testing.T) {
	t.Parallel()
	for _, format := range []string{"sha1", "sha256"} {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			want := filepath.Join(t.TempDir(), "want")
			testGit(t, "", "init", "--quiet", "--template=", "--object-format="+format, want)
			got := filepath.Join(t.TempDir(), ".git")
			if err := initRepo(got, format == "sha256"); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(treeOf(t, filepath.Join(want, ".git")), treeOf(t, got)); diff != "" {
				t.Errorf("initRepo differs from git init (-git +ours):\n%s", diff)
			}
		})
	}
}

// treeOf maps every path under dir to its content ("/" for a directory).
func treeOf(t *testing.T, dir string) map[string]string {
	t.Helper()
	tree := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil || d.IsDir() {
			tree[rel] = "/"
			return err
		}
		content, err := os.ReadFile(path)
		tree[rel] = string(content)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

// BenchmarkTestCheckout measures what a test's attempt spends on its
// working copy once its build is checked out on the box: clearing the
// previous attempt's copy and checking out again, as the worker does, and
// reports the copy's size on disk.
func BenchmarkTestCheckout(b *testing.B) {
	f := newCheckoutFixture(b)
	ctx := testContext(b)
	src, err := f.w.SourceDir(f.b)
	if err != nil {
		b.Fatal(err)
	}
	if err := f.w.Checkout(ctx, f.b, f.head, "main", src); err != nil {
		b.Fatal(err)
	}
	dest, err := f.w.TestSourceDir(f.b, "foo-x")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := os.RemoveAll(dest); err != nil {
			b.Fatal(err)
		}
		if err := f.w.Checkout(ctx, f.b, f.head, "main", dest); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(treeSize(b, dest)), "checkout-bytes")
}
