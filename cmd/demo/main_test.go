package main

import (
	"context"
	"regexp"
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
	// Four tests and the summary yci, which links to the build page.
	if n := strings.Count(final, " success "); n != 5 {
		t.Errorf("final statuses show %d successes, want 5:\n%s", n, final)
	}
	summary := regexp.MustCompile(`yci +success +4 passed \(1 flaky\) of 4 +(http://\S+/index\.html)\n`).FindStringSubmatch(final)
	if summary == nil || !strings.Contains(final, "build page: "+summary[1]) {
		t.Errorf("no successful summary linking to the build page, or the page's address is not printed:\n%s", final)
	}
	for _, want := range []string{"while the test runs: text/plain; charset=utf-8", "| step 1", "retrying in", "webhook: synchronize"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
}
