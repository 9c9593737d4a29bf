package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/yourci/yourci/pkg/launch"
)

// TestDemoRunsTheWholeSystem keeps README's first command true: the demo
// brings everything up, both heads end with every test passed, and a log
// is read over HTTP while its test runs.
func TestDemoRunsTheWholeSystem(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs every binary")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	bin := t.TempDir()
	if err := launch.Build(ctx, bin); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr strings.Builder
	code := run(ctx, []string{"-bin", bin, "-dir", t.TempDir()}, &stdout, &stderr)
	out := stdout.String()
	if code != 0 {
		t.Fatalf("demo exited %d\nstdout:\n%s\nstderr:\n%s", code, out, stderr.String())
	}
	final := out[strings.Index(out, "final statuses"):]
	if n := strings.Count(final, " success "); n != 4 {
		t.Errorf("final statuses show %d successes, want 4:\n%s", n, final)
	}
	for _, want := range []string{"while the test runs: text/plain; charset=utf-8", "| step 1", "retrying in", "webhook: synchronize"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
}
