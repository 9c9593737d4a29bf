package artifacts

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"
)

// childCPU is the CPU time (user and system) of every child process that
// ended so far.
func childCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkMergeBuild measures what merging adds to a build (issue 14):
// a repository of 100,000 files, its main moved on by one commit, and a
// pull request changing 10,000 of them. merge_and_changes is MergeBuild
// as the worker calls it (base tip, merge base, distance, the changed
// files, merge-tree and commit-tree); changes_only the same with merging
// off (-test-merge=false), which still lists the changed files.
//
//	go test -run '^$' -bench BenchmarkMergeBuild -benchtime 10x ./pkg/artifacts/
func BenchmarkMergeBuild(b *testing.B) {
	const files, changed = 100_000, 10_000
	o := newOrigin(b)
	var stream strings.Builder
	path := func(i int) string { return fmt.Sprintf("dir%03d/sub%02d/file%03d.txt", i/1000, i/100%10, i%100) }
	fmt.Fprintf(&stream, "commit refs/heads/main\nmark :1\ncommitter Test <test@example.com> 1700000000 +0000\ndata 4\nbase\n")
	for i := range files {
		content := fmt.Sprintf("file %d\n", i)
		fmt.Fprintf(&stream, "M 100644 inline %s\ndata %d\n%s\n", path(i), len(content), content)
	}
	// The pull request branches off main and changes every tenth file.
	fmt.Fprintf(&stream, "commit refs/pull/1/head\ncommitter Test <test@example.com> 1700000100 +0000\ndata 4\npull\nfrom :1\n")
	for i := 0; i < files; i += files / changed {
		content := fmt.Sprintf("file %d, changed\n", i)
		fmt.Fprintf(&stream, "M 100644 inline %s\ndata %d\n%s\n", path(i), len(content), content)
	}
	// Meanwhile main moves on, elsewhere.
	fmt.Fprintf(&stream, "commit refs/heads/main\ncommitter Test <test@example.com> 1700000200 +0000\ndata 5\nmoved\nfrom :1\n")
	fmt.Fprintf(&stream, "M 100644 inline README\ndata 6\nmoved\n")
	o.git(stream.String(), "fast-import", "--quiet")
	head := o.git("", "rev-parse", "refs/pull/1/head")
	w := openWorkspace(b)
	ctx := testContext(b)
	if err := w.UpdateMirror(ctx, "o", "r", o.dir, GitAuth{}); err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name  string
		merge bool
	}{{"merge_and_changes", true}, {"changes_only", false}} {
		b.Run(bc.name, func(b *testing.B) {
			// The machine may be shared: git's own CPU time (user and
			// system, of every git process) is reported beside the wall
			// clock's ns/op.
			before := childCPU(b)
			for b.Loop() {
				m, err := w.MergeBuild(ctx, "o", "r", head, "main", bc.merge)
				if err != nil {
					b.Fatal(err)
				}
				if len(m.Changes) != changed || len(m.Conflicts) > 0 || (bc.merge && m.SHA == head) {
					b.Fatalf("merge of %d changed files: %d changes, %d conflicts, merged %v", changed, len(m.Changes), len(m.Conflicts), m.SHA != head)
				}
			}
			b.ReportMetric(float64((childCPU(b)-before).Milliseconds())/float64(b.N), "git-cpu-ms/op")
		})
	}
}
