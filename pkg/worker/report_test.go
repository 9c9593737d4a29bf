package worker

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
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

// A log replaced by something else (a link to a secret, a FIFO, a device)
// makes no report of its content: the check run's output never carries
// what the link points at, and the read never blocks or runs for ever.
func TestAttemptReportRefusesWhatIsNotItsLog(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	secret := filepath.Join(dir, "app-key.pem")
	if err := os.WriteFile(secret, []byte("-----BEGIN PRIVATE KEY----- s3cr3t\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		plant func(path string) error
	}{
		{"link to a secret", func(p string) error { return os.Symlink(secret, p) }},
		{"link to a device", func(p string) error { return os.Symlink("/dev/zero", p) }},
		{"fifo", func(p string) error { return syscall.Mkfifo(p, 0o644) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "out.txt")
			if err := tt.plant(path); err != nil {
				t.Fatal(err)
			}
			out := attemptReport(path, status.Status{Description: "failed"})
			if strings.Contains(out.Summary+out.Text, "s3cr3t") {
				t.Fatalf("the report carries what the link points at:\n%s\n%s", out.Summary, out.Text)
			}
			if !strings.Contains(out.Summary, "The log could not be read") {
				t.Errorf("summary does not say the log could not be read:\n%s", out.Summary)
			}
		})
	}
}
