package pipeline

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
)

// starterBox is a Sandbox and Starter that confines nothing: it marks the
// command's environment at Start, or fails it, and counts done.
type starterBox struct {
	fail    error
	started atomic.Int32
	done    atomic.Int32
}

func (s *starterBox) Confine(*exec.Cmd, []string, []string) (func() error, error) {
	return func() error { s.done.Add(1); return nil }, nil
}

func (s *starterBox) Start(cmd *exec.Cmd) error {
	s.started.Add(1)
	if s.fail != nil {
		return s.fail
	}
	cmd.Env = append(cmd.Env, "STARTED_BY=starter")
	return cmd.Start()
}

// TestStarterStartsConfinedCommands: a Sandbox that is a Starter starts
// every test and evaluation itself, once, and a failed start is the
// worker's error with the sandbox's done still called.
func TestStarterStartsConfinedCommands(t *testing.T) {
	t.Parallel()
	broken := errors.New("cgroup gone")
	tests := []struct {
		name     string
		fail     error
		evaluate bool
		want     string // in the log, or in the evaluation's error
	}{
		{name: "test_started_by_the_starter", want: "started by starter"},
		{name: "failed_start_errors_the_attempt", fail: broken, want: "cgroup gone"},
		{name: "evaluation_started_by_the_starter", evaluate: true},
		{name: "failed_start_is_the_evaluations_error", fail: broken, evaluate: true, want: "cgroup gone"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			box := &starterBox{fail: tt.fail}
			var got string
			if tt.evaluate {
				e := Evaluator{Python: evalPython(), Sandbox: box}
				_, err := e.Evaluate(context.Background(), evalCheckout(t, "matrix.py"), 1, evalPull(t))
				var cfg *ConfigError
				switch {
				case tt.fail == nil && err != nil:
					t.Fatalf("Evaluate: %v", err)
				case tt.fail != nil && (err == nil || errors.As(err, &cfg)):
					t.Fatalf("Evaluate = %v; want the worker's error", err)
				case err != nil:
					got = err.Error()
				}
			} else {
				r := &Runner{Sandbox: box}
				res, log := runOK(t, r, attemptIn(t, "echo started by $STARTED_BY"))
				if (res.Outcome == Errored) != (tt.fail != nil) {
					t.Fatalf("outcome %v; want errored only when the start fails", res)
				}
				got = log + res.Reason
			}
			if !strings.Contains(got, tt.want) {
				t.Errorf("got %q; want %q in it", got, tt.want)
			}
			if s, d := box.started.Load(), box.done.Load(); s != 1 || d != 1 {
				t.Errorf("Start called %d times, done %d; want 1 and 1", s, d)
			}
		})
	}
}
