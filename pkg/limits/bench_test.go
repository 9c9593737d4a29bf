package limits_test

import (
	"os/exec"
	"testing"

	"github.com/yourci/yourci/pkg/limits"
	"github.com/yourci/yourci/pkg/limits/limitstest"
)

// BenchmarkAttempt measures a trivial command run through Wrap (create the
// cgroups, join through the shim, read the counters, remove) against the
// same command run directly: the difference is the added cost per attempt.
func BenchmarkAttempt(b *testing.B) {
	truePath, err := exec.LookPath("true")
	if err != nil {
		b.Fatal(err)
	}
	b.Run("direct", func(b *testing.B) {
		for b.Loop() {
			if err := exec.Command(truePath).Run(); err != nil {
				b.Fatal(err)
			}
		}
	})
	l := limitstest.Open(b, limits.Config{Memory: 256 << 20, Pids: 64, CPUWeight: 100})
	b.Run("cgroup", func(b *testing.B) {
		for b.Loop() {
			cmd := exec.Command(truePath)
			g, err := l.Group()
			if err != nil {
				b.Fatal(err)
			}
			if err := g.Start(cmd); err != nil {
				b.Fatal(err)
			}
			if err := cmd.Wait(); err != nil {
				b.Fatal(err)
			}
			if err := g.Close(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
