package artifacts

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkBuildDisk checks out a build of tests working copies, as the
// worker does (the build's checkout plus one per test), and reports the
// bytes the build takes against one working tree of the same commit: the
// files alone, without .git. Each copy borrows the mirror's objects, so a
// build of N tests costs about N+1 working trees and no history.
func BenchmarkBuildDisk(b *testing.B) {
	const tests = 8
	o := newOrigin(b)
	var files []file
	for i := range 40 {
		files = append(files, file{name: fmt.Sprintf("file%02d.txt", i), content: fmt.Sprintf("%08d\n", i) + string(make([]byte, 8<<10))})
	}
	head := o.commit("", "tree", files...)
	o.setRef("refs/pull/1/head", head)
	w := openWorkspace(b)
	ctx := testContext(b)
	if err := w.UpdateMirror(ctx, "o", "r", o.dir, GitAuth{}); err != nil {
		b.Fatal(err)
	}
	var buildDir, tree string
	n := 0
	for b.Loop() {
		n++
		build := Build{Owner: "o", Repo: "r", Pull: 1, Number: n}
		src, err := w.SourceDir(build)
		if err != nil {
			b.Fatal(err)
		}
		if err := w.Checkout(ctx, build, head, "main", src); err != nil {
			b.Fatal(err)
		}
		for i := range tests {
			dest, err := w.TestSourceDir(build, fmt.Sprintf("t%d", i))
			if err != nil {
				b.Fatal(err)
			}
			if err := w.Checkout(ctx, build, head, "main", dest); err != nil {
				b.Fatal(err)
			}
		}
		if buildDir, err = w.BuildDir(build); err != nil {
			b.Fatal(err)
		}
		tree = src
	}
	git := filepath.Join(tree, ".git")
	treeBytes := treeSize(b, tree) - treeSize(b, git)
	buildBytes := treeSize(b, buildDir)
	if _, err := os.Stat(filepath.Join(git, "objects", "info", "alternates")); err != nil {
		b.Fatalf("the checkout borrows no objects: %v", err)
	}
	b.ReportMetric(float64(treeBytes), "tree-bytes")
	b.ReportMetric(float64(buildBytes), "build-bytes")
	b.ReportMetric(float64(buildBytes)/float64(treeBytes), "build/tree")
}
