package sandbox_test

import (
	"context"
	"testing"
	"time"

	"github.com/yourci/yourci/pkg/limits"
	"github.com/yourci/yourci/pkg/limits/limitstest"
	"github.com/yourci/yourci/pkg/pipeline"
	"github.com/yourci/yourci/pkg/sandbox"
	"github.com/yourci/yourci/pkg/sandbox/sandboxtest"
)

// BenchmarkVictim measures a victim's confined attempt (a short bash loop
// that forks) on an idle box and while another limited attempt fork-bombs
// or fills its tmpfs past its memory limit again and again.
func BenchmarkVictim(b *testing.B) {
	box := sandboxtest.New(b, sandbox.Options{TmpSize: 1 << 30})
	lim := limitstest.Open(b, limits.Config{Memory: 256 << 20, Pids: 64, CPUWeight: 100})
	r := &pipeline.Runner{Sandbox: &sandbox.Limited{Box: box, Limits: lim}}
	victim := "for i in $(seq 20); do /bin/true; done"
	for _, bench := range []struct{ name, attacker string }{
		{"idle", ""},
		{"fork_bomb", "for i in $(seq 100000); do sleep 100 & done"},
		{"memory", "while true; do dd if=/dev/zero of=/tmp/f bs=1M count=400 2>/dev/null; done"},
	} {
		b.Run(bench.name, func(b *testing.B) {
			ctx, cancel := context.WithCancel(b.Context())
			stopped := make(chan struct{})
			if bench.attacker != "" {
				go func() {
					defer close(stopped)
					for ctx.Err() == nil {
						a := attempt(b, bench.attacker)
						a.Test.Timeout = 10 * time.Second
						r.Run(ctx, a)
					}
				}()
			} else {
				close(stopped)
			}
			for b.Loop() {
				res, err := r.Run(b.Context(), attempt(b, victim))
				if err != nil || res.Outcome != pipeline.Passed {
					b.Fatalf("victim: %v, %v", res, err)
				}
			}
			cancel()
			<-stopped
		})
	}
}
