package worker

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/yourci/yourci/pkg/status"
)

func TestAttemptReport(t *testing.T) {
	t.Parallel()
	log := strings.Join([]string{
		"[yci] test flaky, attempt 1/2, started 2026-11-23T09:30:00Z",
		"network down",
		"[yci] attempt 1/2 failed (exit status 1) after 1.5s",
		"[yci] retry: attempt 2/2 in 1s",
		"[yci] test flaky, attempt 2/2, started 2026-11-23T09:30:03Z",
		strings.Repeat("long line ", 20000),
		"a ``` fence | in the log",
		"[yci] attempt 2/2 passed (exit status 0) after 2s",
	}, "\n") + "\n"
	path := filepath.Join(t.TempDir(), "out.txt")
	if err := os.WriteFile(path, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	st := status.Status{Description: "passed in 2s on attempt 2", TargetURL: "https://ci/out.txt"}
	out := attemptReport(path, st)
	for _, want := range []string{
		"| 1/2 | failed (exit status 1) after 1.5s |",
		"| 2/2 | passed (exit status 0) after 2s |",
		"[Full log](https://ci/out.txt)",
	} {
		if !strings.Contains(out.Summary, want) {
			t.Errorf("summary lacks %q:\n%s", want, out.Summary)
		}
	}
	if !strings.Contains(out.Text, "````\n") || !strings.HasSuffix(out.Text, "after 2s\n````\n") {
		t.Errorf("text is not the log's end in a fence longer than its backticks:\n%s", out.Text[max(0, len(out.Text)-300):])
	}
	if len(out.Text) > reportTailBytes+200 {
		t.Errorf("text of %d bytes, want the tail only", len(out.Text))
	}
	if out.Title != st.Description {
		t.Errorf("title %q", out.Title)
	}

	missing := attemptReport(filepath.Join(t.TempDir(), "none.txt"), st)
	if !strings.Contains(missing.Summary, "could not be read") || strings.Contains(missing.Summary, "none.txt") {
		t.Errorf("report of a missing log: %q", missing.Summary)
	}
}
