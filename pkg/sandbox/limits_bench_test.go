package sandbox_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/yourci/yourci/pkg/limits"
	"github.com/yourci/yourci/pkg/limits/limitstest"
	"github.com/yourci/yourci/pkg/pipeline"
	"github.com/yourci/yourci/pkg/sandbox"
	"github.com/yourci/yourci/pkg/sandbox/sandboxtest"
)

// armWait bounds the wait for an attacker to begin its attack.
const armWait = time.Minute

// BenchmarkVictim measures a victim pull request's time to its first test
// (evaluate its .yci.py, then run the first test it yields, each confined
// and limited as the worker does) on an idle box and while another
// limited attempt fork-bombs or fills its tmpfs past its memory limit
// again and again. p50-ms is the median time; x-idle is that median
// divided by the idle one (goal: at most 1.5), reported when the idle
// case ran first in the same invocation.
func BenchmarkVictim(b *testing.B) {
	box := sandboxtest.New(b, sandbox.Options{TmpSize: 1 << 30})
	lim := limitstest.Open(b, limits.Config{Memory: 256 << 20, Pids: 64, CPUWeight: 100})
	sb := &sandbox.Limited{Box: box, Limits: lim}
	r := &pipeline.Runner{Sandbox: sb}
	e := confinedEvaluator(b, box, time.Minute)
	e.Sandbox = sb
	victim := checkout(b, `from yci.run import Bash

def test_generator(build_id, pull):
    yield Bash('for i in $(seq 20); do /bin/true; done', name='first')
`)
	var idle float64
	for _, bench := range []struct{ name, attacker string }{
		{"idle", ""},
		{"fork_bomb", "for i in $(seq 100000); do sleep 100 & done"},
		{"memory", "while true; do dd if=/dev/zero of=/tmp/f bs=1M count=400 2>/dev/null; done"},
	} {
		b.Run(bench.name, func(b *testing.B) {
			ctx, cancel := context.WithCancel(b.Context())
			stopped := make(chan struct{})
			if bench.attacker != "" {
				attack(ctx, b, r, bench.attacker, stopped)
			} else {
				close(stopped)
			}
			var took []time.Duration
			for b.Loop() {
				start := time.Now()
				tests, err := e.Evaluate(b.Context(), victim, 1, nil)
				if err != nil || len(tests) != 1 {
					b.Fatalf("victim's evaluation: %v, %v", tests, err)
				}
				a := attempt(b, tests[0].Command)
				res, err := r.Run(b.Context(), a)
				if err != nil || res.Outcome != pipeline.Passed {
					b.Fatalf("victim's first test: %v, %v", res, err)
				}
				took = append(took, time.Since(start))
			}
			cancel()
			<-stopped
			slices.Sort(took)
			p50 := float64(took[len(took)/2]) / float64(time.Millisecond)
			b.ReportMetric(p50, "p50-ms")
			switch {
			case bench.attacker == "":
				idle = p50
			case idle > 0:
				b.ReportMetric(p50/idle, "x-idle")
			}
		})
	}
}

// attack runs attempts of script until ctx ends, and returns only once
// the first one has begun its attack: its first command opens a FIFO
// the benchmark waits on.
func attack(ctx context.Context, b *testing.B, r *pipeline.Runner, script string, stopped chan<- struct{}) {
	first := attempt(b, `[ -p armed ] && echo >armed; `+script)
	fifo := filepath.Join(first.Dir, "armed")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		b.Fatal(err)
	}
	armed := make(chan error, 1)
	go func() {
		f, err := os.Open(fifo) // blocks until the attacker opens it
		if err == nil {
			err = f.Close()
		}
		armed <- err
	}()
	go func() {
		defer close(stopped)
		a := first
		for ctx.Err() == nil {
			a.Test.Timeout = 10 * time.Second
			r.Run(ctx, a)
			a = attempt(b, script)
		}
	}()
	select {
	case err := <-armed:
		if err != nil {
			b.Fatal(err)
		}
	case <-time.After(armWait):
		b.Fatal("the attacker never began")
	}
}
