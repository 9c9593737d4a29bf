package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestReceiverLinksNoEvaluator keeps the receiver small and its attack
// surface narrow: it verifies, decodes and publishes webhooks, so it must
// not link the Python evaluator (pkg/pipeline), nor the worker's sandbox,
// workspace or runner. Test names are checked by events.ValidateTestName,
// the one rule the evaluator shares.
func TestReceiverLinksNoEvaluator(t *testing.T) {
	t.Parallel()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command to list dependencies: %v", err)
	}
	out, err := exec.Command(gobin, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) == 0 || !slices.Contains(deps, "github.com/yourci/yourci/pkg/events") {
		t.Fatalf("go list -deps listed %d packages without pkg/events; the check would prove nothing", len(deps))
	}
	for _, banned := range []string{"pipeline", "sandbox", "artifacts", "worker"} {
		t.Run(banned, func(t *testing.T) {
			if pkg := "github.com/yourci/yourci/pkg/" + banned; slices.Contains(deps, pkg) {
				t.Errorf("the receiver links %s", pkg)
			}
		})
	}
}
