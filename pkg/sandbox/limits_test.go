package sandbox_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/yourci/yourci/pkg/limits"
	"github.com/yourci/yourci/pkg/limits/limitstest"
	"github.com/yourci/yourci/pkg/pipeline"
	"github.com/yourci/yourci/pkg/sandbox"
	"github.com/yourci/yourci/pkg/sandbox/sandboxtest"
)

func TestRunnerWithLimits(t *testing.T) {
	box := sandboxtest.New(t, sandbox.Options{TmpSize: 1 << 30})
	lim := limitstest.Open(t, limits.Config{Memory: 200 << 20, Pids: 64, CPUWeight: 100})
	r := &pipeline.Runner{Sandbox: &sandbox.Limited{Box: box, Limits: lim}}
	t.Run("filling_tmpfs_past_the_memory_limit_fails_with_the_reason", func(t *testing.T) {
		a := attempt(t, "dd if=/dev/zero of=/tmp/fill bs=1M count=600 && echo filled")
		res, log := run(t, r, t.Context(), a)
		want := "killed: used more than 200 MiB of memory"
		if res.Outcome != pipeline.Failed || !strings.Contains(res.Reason, want) || !strings.Contains(log, want) || strings.Contains(log, "\nfilled") {
			t.Fatalf("result %v; log:\n%s", res, log)
		}
	})
	t.Run("fork_bomb_stops_at_the_process_limit_errors_and_leaves_nothing", func(t *testing.T) {
		// A sleep time no other process has, to find leftovers by.
		sleep := fmt.Sprintf("100.%09d", rand.IntN(1e9))
		a := attempt(t, "for i in $(seq 100000); do sleep "+sleep+" & done")
		// bash retries a failed fork for 15 s, so the bomb runs until
		// the test's own timeout ends it. 64 forks take well under a
		// second; the timeout leaves a loaded machine ten times that to
		// reach the limit before it ends the bomb.
		a.Test.Timeout = 10 * time.Second
		res, log := run(t, r, t.Context(), a)
		if res.Outcome != pipeline.Errored || !strings.Contains(res.Reason, "limit of 64 processes") || !strings.Contains(log, "limit of 64 processes") {
			t.Fatalf("result %v; log:\n%s", res, log)
		}
		// A SIGKILL takes effect asynchronously: wait, with a deadline.
		waitNoneRunning(t, "sleep "+sleep)
	})
}

// TestEvaluateWithLimits: a .yci.py that fills its memory is the pull
// request's configuration error, with the reason, not the worker's.
func TestEvaluateWithLimits(t *testing.T) {
	box := sandboxtest.New(t, sandbox.Options{TmpSize: 1 << 30})
	lim := limitstest.Open(t, limits.Config{Memory: 128 << 20, Pids: 64, CPUWeight: 100})
	e := confinedEvaluator(t, box, time.Minute)
	e.Sandbox = &sandbox.Limited{Box: box, Limits: lim}
	dir := checkout(t, `def test_generator(build_id, pull):
    hog = b'x' * (400 << 20)
    yield from ()
`)
	_, err := e.Evaluate(t.Context(), dir, 1, nil)
	var cfg *pipeline.ConfigError
	if !errors.As(err, &cfg) || !strings.Contains(err.Error()+cfg.Output, "more than 128 MiB of memory") {
		t.Fatalf("Evaluate = %v; want a ConfigError naming the memory limit", err)
	}
}
