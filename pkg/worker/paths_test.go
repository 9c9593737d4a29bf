package worker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/yourci/yourci/pkg/artifacts"
	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/pipeline"
	"github.com/yourci/yourci/pkg/status"
)

// boxErrors are real errors of a workspace in dir, as the file system,
// exec, the kernel and git word them: each names a path under dir.
func boxErrors(t *testing.T, dir string) map[string]error {
	t.Helper()
	ctx := context.Background()
	errs := map[string]error{}
	_, errs["path_error"] = os.Open(filepath.Join(dir, "builds", "missing", "out.txt"))
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	for _, p := range []string{a, b} {
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	errs["link_error"] = fmt.Errorf("linking the build's log: %w", os.Link(a, b))
	errs["syscall_error"] = fmt.Errorf("statfs %s: %w", dir, os.NewSyscallError("statfs", syscall.ENOSPC))
	errs["exec_error"] = fmt.Errorf("starting the sandbox: %w", exec.CommandContext(ctx, filepath.Join(dir, "tools", "bwrap")).Run())
	out, err := exec.CommandContext(ctx, "git", "--git-dir", filepath.Join(dir, "mirrors", "acme", "widget.git"), "rev-parse", "HEAD").CombinedOutput()
	errs["git_error"] = fmt.Errorf("updating the mirror: git rev-parse: %w: %s", err, out)
	ws, err := artifacts.Open(filepath.Join(dir, "artifacts"))
	if err != nil {
		t.Fatal(err)
	}
	errs["workspace_checkout"] = ws.Checkout(ctx, build(events.Repo{Owner: "acme", Name: "widget"}, 3, 1), decideSHA, "main", filepath.Join(dir, "src"))
	errs["joined"] = errors.Join(errs["path_error"], errs["git_error"])
	errs["wrapped_twice"] = permanent(fmt.Errorf("preparing: %w", classifyPrepare(errs["exec_error"])))
	for name, err := range errs {
		if err == nil || !strings.Contains(err.Error(), dir) {
			t.Fatalf("%s: %v names no path under %s: the test would prove nothing", name, err, dir)
		}
	}
	return errs
}

// TestDescriptionsCarryNoPaths feeds real errors naming the workspace to
// every place an error becomes a status description, and fails if the
// workspace's path reaches one.
func TestDescriptionsCarryNoPaths(t *testing.T) {
	t.Parallel()
	// The workspace's last part may show ("statfs …/ws"); where it lies
	// on the box, its parent, must not.
	parent := t.TempDir()
	dir := filepath.Join(parent, "ws")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	job := events.TestJob{Repo: events.Repo{Owner: "acme", Name: "widget"}, Number: 3, HeadSHA: decideSHA, Build: 1, Attempt: 1}
	describers := map[string]func(err error) string{
		"preparing_failed": func(err error) string {
			return planPrepFailure(prepFailureFacts{attempt: prepAttempt{delivered: 1, maxDeliver: 5}, build: 1, now: now,
				verdict: Verdict{Outcome: HandBack, Delay: time.Second, Err: err}}).description
		},
		"runner_error": func(err error) string {
			return planAttemptEnd(attemptFacts{job: job, test: pipeline.Test{Name: "unit"}, runErr: err, now: now}).description
		},
		"result_reason": func(err error) string {
			res := pipeline.Result{Outcome: pipeline.Errored, Reason: err.Error()}
			return planAttemptEnd(attemptFacts{job: job, test: pipeline.Test{Name: "unit"}, res: res, now: now}).description
		},
		"abandoned_for_disk": func(err error) string {
			return status.Errored(planTestStart(testStartFacts{job: job, lastChance: true, delivered: 5, diskLow: err}).why)
		},
		"prepare_failed":  func(err error) string { return status.Errored("cannot prepare the test: " + status.ErrorReason(err)) },
		"infra_retrying":  func(err error) string { return infraRetrying(InfraDisk, err) },
		"infra_gave_up":   func(err error) string { return infraGaveUp(time.Hour, err) },
		"config_error":    func(err error) string { return status.ConfigError(err.Error()) },
		"without_paths":   func(err error) string { return status.Errored(status.ErrorReason(err)) },
		"head_summary_up": func(err error) string { return status.PreparingFailed(2, 4, err.Error()) },
		"retest_reply_broken_config": func(err error) string {
			_, o, _ := planTests(&commandFacts{tests: &buildTests{broken: err.Error()}}, 1)
			return o.refusal
		},
	}
	for name, err := range boxErrors(t, dir) {
		t.Run(name, func(t *testing.T) {
			for where, describe := range describers {
				d := describe(err)
				if d == "" {
					t.Fatalf("%s: no description", where)
				}
				if strings.Contains(d, parent) {
					t.Errorf("%s shows the workspace's path: %q", where, d)
				}
			}
		})
	}
}
