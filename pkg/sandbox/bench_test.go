package sandbox_test

import (
	"syscall"
	"testing"

	"github.com/yourci/yourci/pkg/pipeline"
	"github.com/yourci/yourci/pkg/sandbox"
	"github.com/yourci/yourci/pkg/sandbox/sandboxtest"
)

// BenchmarkSandboxOverhead runs trivial attempts ("true") with the runner,
// bare and in the sandbox; the difference of ns/op is what the sandbox
// costs per attempt. child-cpu-ns/op is the CPU time of the attempts'
// processes, which the load of a shared box inflates far less than the
// wall time: most of bwrap's wall time is spent waiting in the kernel
// (namespace setup, pivot_root's unmount of the old root).
func BenchmarkSandboxOverhead(b *testing.B) {
	box := sandboxtest.New(b, sandbox.Options{})
	for _, bm := range []struct {
		name string
		box  pipeline.Sandbox
	}{{"bare", nil}, {"bwrap", box}} {
		b.Run(bm.name, func(b *testing.B) {
			r := &pipeline.Runner{Sandbox: bm.box}
			dir := b.TempDir()
			before := childCPU(b)
			for i := 0; b.Loop(); i++ {
				a := pipeline.Attempt{Test: pipeline.Test{Name: "unit", Command: "true"}, Number: i + 1,
					Dir: dir, LogPath: dir + "/../out.txt"}
				res, err := r.Run(b.Context(), a)
				if err != nil || res.Outcome != pipeline.Passed {
					b.Fatalf("attempt: %v, %v", res, err)
				}
			}
			b.ReportMetric(float64(childCPU(b)-before)/float64(b.N), "child-cpu-ns/op")
		})
	}
}

// childCPU is the user and system time of this process's waited-for
// children so far, in nanoseconds.
func childCPU(b *testing.B) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
