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
// brings everything up, both heads end with every test passed but the
// flaky network one, a log is read over HTTP while its test runs, and
// /retest re-runs the failed test into a log of its own.
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
	final, retest, found := strings.Cut(out[strings.Index(out, "final statuses"):], "commented on")
	if !found {
		t.Fatalf("the demo posted no /retest:\n%s", out)
	}
	if n := strings.Count(final, " success "); n != 4 || !strings.Contains(final, "yci/network  failure") {
		t.Errorf("final statuses show %d successes, want 4 and yci/network failed:\n%s", n, final)
	}
	// The summary yci counts the failure, names the base it tested, and
	// links to the build page.
	summary := regexp.MustCompile(`yci +failure +4 passed, 1 failed \(1 flaky\) of 5; tested merged into main at [0-9a-f]{7} +(http://\S+/index\.html)\n`).FindStringSubmatch(final)
	if summary == nil || !strings.Contains(out, "build page: "+summary[1]) {
		t.Errorf("no failed summary linking to the build page, or the page's address is not printed:\n%s", final)
	}
	for _, want := range []string{"reaction on the comment: rocket", "queued: re-run 1 asked by @maintainer",
		"yci/network  success", "/network/rerun-1/out.txt", "fixtures fetched; ok", "/network/out.txt",
		"the summary after the re-run:\n  yci  success  5 passed (2 flaky) of 5; tested merged into main at "} {
		if !strings.Contains(retest, want) {
			t.Errorf("the /retest part of the demo lacks %q:\n%s", want, retest)
		}
	}
	for _, want := range []string{"while the test runs: text/plain; charset=utf-8", "| step 1", "retrying in", "webhook: synchronize"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
}
