package pipeline

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// BenchmarkRunnerOverhead runs N trivial tests through the Runner, each with
// its own log, then the same N commands directly: in a shell loop (the
// x-overhead ratio), in a shell loop that also gives each its own log
// directory and file (x-overhead-vs-logged-loop: the same work), and from
// Go with os/exec (x-overhead-vs-exec). On a box whose file system is slow
// to create directories the first ratio measures the file system.
func BenchmarkRunnerOverhead(b *testing.B) {
	dir := b.TempDir()
	src := filepath.Join(dir, "source")
	if err := os.Mkdir(src, 0o755); err != nil {
		b.Fatal(err)
	}
	r := &Runner{}
	a := Attempt{Test: Test{Name: "true", Command: "true"}, Number: 1, Dir: src}
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		a.LogPath = filepath.Join(dir, "logs", strconv.Itoa(i), "out.txt")
		res, err := r.Run(b.Context(), a)
		if err != nil || res.Outcome != Passed {
			b.Fatalf("Run = %v, %v", res, err)
		}
	}
	viaRunner := time.Since(start)
	b.StopTimer()

	start = time.Now()
	loop := exec.CommandContext(b.Context(), "bash", "-c", fmt.Sprintf("for ((i = 0; i < %d; i++)); do bash -c true; done", b.N))
	loop.Dir = src
	if out, err := loop.CombinedOutput(); err != nil {
		b.Fatalf("shell loop: %v: %s", err, out)
	}
	shellLoop := time.Since(start)

	// The same loop writing each test's output to a log of its own in a
	// directory of its own, as the runner does: the floor for the same work.
	start = time.Now()
	logged := exec.CommandContext(b.Context(), "bash", "-c", fmt.Sprintf(
		"for ((i = 0; i < %d; i++)); do mkdir -p ../shell-logs/$i && bash -c true >> ../shell-logs/$i/out.txt 2>&1; done", b.N))
	logged.Dir = src
	if out, err := logged.CombinedOutput(); err != nil {
		b.Fatalf("logged shell loop: %v: %s", err, out)
	}
	loggedLoop := time.Since(start)

	start = time.Now()
	for range b.N {
		cmd := exec.CommandContext(b.Context(), "bash", "-c", "true")
		cmd.Dir = src
		if err := cmd.Run(); err != nil {
			b.Fatal(err)
		}
	}
	goExec := time.Since(start)

	b.ReportMetric(float64(viaRunner)/float64(shellLoop), "x-overhead")
	b.ReportMetric(float64(viaRunner)/float64(loggedLoop), "x-overhead-vs-logged-loop")
	b.ReportMetric(float64(viaRunner)/float64(goExec), "x-overhead-vs-exec")
	b.ReportMetric(float64(shellLoop.Nanoseconds())/float64(b.N), "shell-loop-ns/op")
}

// BenchmarkLogGiB runs a test writing 1 GiB of lines through the Runner,
// with a secret to mask, and reports the process's peak resident memory
// during the run (peak-MiB) and the Go heap's (peak-heap-MiB).
func BenchmarkLogGiB(b *testing.B) {
	if testing.Short() {
		b.Skip("writes 1 GiB per iteration")
	}
	const size = 1 << 30
	dir := b.TempDir()
	src := filepath.Join(dir, "source")
	if err := os.Mkdir(src, 0o755); err != nil {
		b.Fatal(err)
	}
	r := &Runner{LogLimit: 2 * size, Secrets: []string{"hunter22-absent-from-output"}}
	a := Attempt{
		Test:    Test{Name: "gib", Command: fmt.Sprintf("yes 'a line of output, as a chatty test writes it' | head -c %d", size)},
		Number:  1,
		Dir:     src,
		LogPath: filepath.Join(dir, "gib", "out.txt"),
	}
	b.SetBytes(size)
	var peakRSS, peakHeap uint64
	for range b.N {
		if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
			b.Logf("cannot reset the peak RSS, so peak-MiB covers the whole process life: %v", err)
		}
		stop := sampleHeapInuse()
		res, err := r.Run(b.Context(), a)
		peakHeap = max(peakHeap, stop())
		if err != nil || res.Outcome != Passed {
			b.Fatalf("Run = %v, %v", res, err)
		}
		peakRSS = max(peakRSS, vmHWM(b))
		fi, err := os.Stat(a.LogPath)
		if err != nil || fi.Size() < size {
			b.Fatalf("log is %v bytes (%v), want more than 1 GiB", fi.Size(), err)
		}
		if err := os.Remove(a.LogPath); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(peakRSS)/(1<<20), "peak-MiB")
	b.ReportMetric(float64(peakHeap)/(1<<20), "peak-heap-MiB")
}

// sampleHeapInuse samples the Go heap in use every 10ms until the returned
// function is called, which returns the largest sample.
func sampleHeapInuse() func() uint64 {
	done := make(chan struct{})
	result := make(chan uint64)
	go func() {
		var peak uint64
		var ms runtime.MemStats
		ticker := time.NewTicker(10 * time.Millisecond)
		defer ticker.Stop()
		for {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			select {
			case <-done:
				result <- peak
				return
			case <-ticker.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		return <-result
	}
}

// vmHWM returns the process's peak resident set size in bytes.
func vmHWM(b *testing.B) uint64 {
	b.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := bytes.CutPrefix(s.Bytes(), []byte("VmHWM:")); ok {
			kb, err := strconv.ParseUint(string(bytes.TrimSpace(bytes.TrimSuffix(bytes.TrimSpace(rest), []byte("kB")))), 10, 64)
			if err != nil {
				b.Fatalf("parsing VmHWM: %v", err)
			}
			return kb << 10
		}
	}
	b.Fatalf("no VmHWM in /proc/self/status: %v", s.Err())
	return 0
}

// BenchmarkEvaluationFlood evaluates a .yci.py that writes without end to
// every descriptor it has (stdout, stderr, the result and the stacks
// pipes) until its 5 s limit, and reports the worker's peak resident
// memory (peak-MiB) and Go heap (peak-heap-MiB) meanwhile. The goal is
// under 64 MiB: each channel is read into a bounded buffer and the rest
// dropped.
func BenchmarkEvaluationFlood(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "source")
	if err := os.Mkdir(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	yci := `import os, threading
def spew(fd):
    chunk = b'x' * 65536
    while True:
        os.write(fd, chunk)
for fd in (1, 2, 3, 4):
    threading.Thread(target=spew, args=(fd,), daemon=True).start()
def test_generator(build_id, pull):
    while True:
        pass
    yield None
`
	if err := os.WriteFile(filepath.Join(dir, ConfigFile), []byte(yci), 0o644); err != nil {
		b.Fatal(err)
	}
	e := &Evaluator{Timeout: 5 * time.Second}
	var peakRSS, peakHeap uint64
	for range b.N {
		if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
			b.Logf("cannot reset the peak RSS, so peak-MiB covers the whole process life: %v", err)
		}
		stop := sampleHeapInuse()
		_, err := e.Evaluate(b.Context(), dir, 1, nil)
		peakHeap = max(peakHeap, stop())
		var cerr *ConfigError
		if !errors.As(err, &cerr) {
			b.Fatalf("Evaluate = %v, want a *ConfigError", err)
		}
		peakRSS = max(peakRSS, vmHWM(b))
	}
	b.ReportMetric(float64(peakRSS)/(1<<20), "peak-MiB")
	b.ReportMetric(float64(peakHeap)/(1<<20), "peak-heap-MiB")
}
