package sandbox_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/yourci/yourci/pkg/pipeline"
	"github.com/yourci/yourci/pkg/sandbox"
	"github.com/yourci/yourci/pkg/sandbox/sandboxtest"
)

// brokenShares makes every command's sandbox fail to build after the probe
// passed: a bind source that does not exist, as when a mirror's objects
// vanish between Confine and bwrap's start. It counts the releases.
func brokenShares(t *testing.T, released *int) func(string) (sandbox.Shares, bool, error) {
	missing := filepath.Join(t.TempDir(), "gone", "objects")
	return func(string) (sandbox.Shares, bool, error) {
		return sandbox.Shares{Objects: []string{missing}, Release: func() { *released++ }}, true, nil
	}
}

// TestSetupFailureIsNotTheTests: a sandbox bwrap cannot build makes the
// attempt Errored with the reason and bwrap's message in the log, while a
// test of its own failing stays Failed; the evaluation of .yci.py returns
// ErrSetup instead of a verdict on the file. Either way the shares are
// released once.
func TestSetupFailureIsNotTheTests(t *testing.T) {
	t.Parallel()
	sandboxtest.New(t, sandbox.Options{})
	released := 0
	box, err := sandbox.New(sandbox.Options{SharesOf: brokenShares(t, &released)})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("attempt_is_errored", func(t *testing.T) {
		before := released
		res, log := run(t, &pipeline.Runner{Sandbox: box}, t.Context(), attempt(t, "echo ran; exit 1"))
		if res.Outcome != pipeline.Errored || !strings.Contains(res.Reason, "sandbox could not be set up") {
			t.Errorf("result = %+v, want Errored saying the sandbox could not be set up", res)
		}
		if !strings.Contains(log, "bwrap: Can't find source path") || strings.Contains(log, "ran\n") {
			t.Errorf("log should hold bwrap's message and nothing of the test:\n%s", log)
		}
		if released != before+1 {
			t.Errorf("shares released %d times, want 1", released-before)
		}
	})
	t.Run("failing_test_in_a_working_sandbox_stays_failed", func(t *testing.T) {
		good := sandboxtest.New(t, sandbox.Options{})
		res, _ := run(t, &pipeline.Runner{Sandbox: good}, t.Context(), attempt(t, "exit 1"))
		if res.Outcome != pipeline.Failed || res.Reason != "exit status 1" {
			t.Errorf("result = %+v, want Failed with exit status 1", res)
		}
	})
	t.Run("evaluation_returns_ErrSetup", func(t *testing.T) {
		before := released
		e := confinedEvaluator(t, box, 30*time.Second)
		_, err := e.Evaluate(t.Context(), checkout(t, "def test_generator(build_id, pull):\n    yield 'true'\n"), 1, nil)
		var cerr *pipeline.ConfigError
		if !errors.Is(err, sandbox.ErrSetup) || errors.As(err, &cerr) {
			t.Errorf("Evaluate error = %v, want ErrSetup and no verdict on .yci.py", err)
		}
		if released != before+1 {
			t.Errorf("shares released %d times, want 1", released-before)
		}
	})
}

// TestTmpSizeLimitsTmpAndHome: with TmpSize, writing past it into /tmp or
// HOME fails inside the test with ENOSPC; the test sees the error and the
// runner reports the test's own exit.
func TestTmpSizeLimitsTmpAndHome(t *testing.T) {
	t.Parallel()
	box := sandboxtest.New(t, sandbox.Options{TmpSize: 1 << 20})
	for _, dir := range []string{"/tmp", "$HOME"} {
		t.Run(strings.Trim(dir, "/$"), func(t *testing.T) {
			t.Parallel()
			script := `head -c 512K /dev/zero > ` + dir + `/fits && echo fits
				head -c 2M /dev/zero > ` + dir + `/big || { echo "refused: $?"; exit 7; }`
			res, log := run(t, &pipeline.Runner{Sandbox: box}, t.Context(), attempt(t, script))
			if res.Outcome != pipeline.Failed || res.ExitCode != 7 {
				t.Errorf("result = %+v, want the test's exit 7", res)
			}
			for _, want := range []string{"fits\n", "No space left on device", "refused: 1\n"} {
				if !strings.Contains(log, want) {
					t.Errorf("log lacks %q:\n%s", want, log)
				}
			}
		})
	}
}
