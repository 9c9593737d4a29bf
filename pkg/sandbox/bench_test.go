package sandbox_test

import (
	"testing"

	"github.com/yourci/yourci/pkg/pipeline"
	"github.com/yourci/yourci/pkg/sandbox"
	"github.com/yourci/yourci/pkg/sandbox/sandboxtest"
)

// BenchmarkSandboxOverhead runs trivial attempts ("true") with the runner,
// bare and in the sandbox; the difference of ns/op is what the sandbox
// costs per attempt.
func BenchmarkSandboxOverhead(b *testing.B) {
	box := sandboxtest.New(b, sandbox.Options{})
	for _, bm := range []struct {
		name string
		box  pipeline.Sandbox
	}{{"bare", nil}, {"bwrap", box}} {
		b.Run(bm.name, func(b *testing.B) {
			r := &pipeline.Runner{Sandbox: bm.box}
			dir := b.TempDir()
			for i := 0; b.Loop(); i++ {
				a := pipeline.Attempt{Test: pipeline.Test{Name: "unit", Command: "true"}, Number: i + 1,
					Dir: dir, LogPath: dir + "/../out.txt"}
				res, err := r.Run(b.Context(), a)
				if err != nil || res.Outcome != pipeline.Passed {
					b.Fatalf("attempt: %v, %v", res, err)
				}
			}
		})
	}
}
