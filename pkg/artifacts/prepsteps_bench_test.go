package artifacts

import (
	"testing"
	"time"
)

// BenchmarkPrepareSteps times the git work a worker does on the way from
// a webhook to a test's start, on a small repository: the pull
// handler's fetch of the mirror (UpdateMirrorSince, nothing new), the merge of an up-to-date head, and the build's source
// checkout (listing the refs and pinning included). A git process costs
// milliseconds, so this tracks how many run, and in what order, more than
// what git does in each.
func BenchmarkPrepareSteps(b *testing.B) {
	o := newOrigin(b)
	base := o.commit("", "base", file{name: "README", content: "base\n"}, file{name: "lib.py", content: "x = 1\n"})
	head := o.commit(base, "pull", file{name: "README", content: "pull\n"}, file{name: "lib.py", content: "x = 1\n"})
	o.setRef("refs/heads/main", base)
	o.setRef("refs/pull/1/head", head)
	w := openWorkspace(b)
	ctx := testContext(b)
	if err := w.UpdateMirror(ctx, "o", "r", o.dir, GitAuth{}); err != nil {
		b.Fatal(err)
	}
	build := 0
	for b.Loop() {
		build++
		if _, err := w.UpdateMirrorSince(ctx, "o", "r", o.dir, GitAuth{}, time.Time{}); err != nil {
			b.Fatal(err)
		}
		m, err := w.MergeBuild(ctx, "o", "r", head, "main", true)
		if err != nil {
			b.Fatal(err)
		}
		bld := Build{Owner: "o", Repo: "r", Pull: 1, Number: build}
		src, err := w.SourceDir(bld)
		if err != nil {
			b.Fatal(err)
		}
		if err := w.Checkout(ctx, bld, m.SHA, "main", src); err != nil {
			b.Fatal(err)
		}
	}
}
