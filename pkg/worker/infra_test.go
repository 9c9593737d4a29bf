package worker

import (
	"errors"
	"fmt"
	"io/fs"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/google/go-github/v88/github"

	"github.com/yourci/yourci/pkg/fakegithub"
)

func TestClassifyPrepare(t *testing.T) {
	t.Parallel()
	other := errors.New("checking out abc: exit status 128: fatal: reference is not a tree")
	cases := []struct {
		name string
		err  error
		kind string // "" when err is not an infrastructure error
	}{
		{"enospc_in_the_chain", fmt.Errorf("creating run dir: %w", &fs.PathError{Op: "mkdir", Path: "/ws/x", Err: syscall.ENOSPC}), InfraDisk},
		{"quota", fmt.Errorf("x: %w", syscall.EDQUOT), InfraDisk},
		{"gits_message", errors.New("checking out abc: exit status 128: fatal: cannot create directory: No space left on device"), InfraDisk},
		{"already_classified_keeps_its_kind", infrastructure(InfraMirror, errors.New("no space left on device")), InfraMirror},
		{"other_errors_unchanged", other, ""},
		{"nil", nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := classifyPrepare(c.err)
			var infra infraError
			isInfra := errors.As(got, &infra)
			switch {
			case c.kind == "" && (isInfra || got != c.err):
				t.Errorf("classifyPrepare(%v) = %v, want it unchanged", c.err, got)
			case c.kind != "" && (!isInfra || infra.kind != c.kind || !errors.Is(got, c.err)):
				t.Errorf("classifyPrepare(%v) = %#v, want a %s infrastructure error wrapping it", c.err, got, c.kind)
			}
		})
	}
}

// flakySandbox fails to set up its first failures confinements, as
// bubblewrap does when the kernel refuses a namespace for a while, and
// then runs commands unconfined.
type flakySandbox struct {
	failures int32
	calls    atomic.Int32
}

func (s *flakySandbox) Confine(*exec.Cmd, []string, []string) (func() error, error) {
	if s.calls.Add(1) <= s.failures {
		return nil, errors.New("bwrap: creating new namespace failed: Resource temporarily unavailable")
	}
	return func() error { return nil }, nil
}

func TestASandboxThatCannotBeSetUpIsRetriedNotBlamedOnTheCode(t *testing.T) {
	t.Parallel()
	box := &flakySandbox{failures: 1}
	r := newRig(t, func(o *Options) { o.Runner.Sandbox = box })
	pr := r.openBranchPull(t, fakegithub.PullSpec{Head: "boxed"}, map[string]string{".yci.py": testRunning("echo hi", "", 0)})
	sha := pr.GetHead().GetSHA()
	r.publish(t, pr.GetNumber(), sha, "d1")
	s := r.waitFinal(t, sha, "yci/t")["yci/t"]
	if s.GetState() != "error" || !strings.Contains(s.GetDescription(), "infrastructure (sandbox), retrying: confining the test: bwrap") {
		t.Fatalf("yci/t: %s %q, want error naming the sandbox", s.GetState(), s.GetDescription())
	}
	r.waitFor(t, sha, func(m map[string]github.RepoStatus) bool { s := m["yci/t"]; return s.GetState() == "success" })
	if got := counterValue(t, r.w.opts.Metrics.InfraErrors.WithLabelValues(InfraSandbox)); got != 1 {
		t.Errorf("sandbox infrastructure errors counted %v, want 1", got)
	}
	if n := box.calls.Load(); n != 2 {
		t.Errorf("the sandbox was asked %d times, want 2 (one failure, one run)", n)
	}
}
