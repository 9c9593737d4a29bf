package worker

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// writeFile writes n bytes of non-zero data (so the blocks are allocated).
func writeFile(t *testing.T, path string, n int) {
	t.Helper()
	if err := os.WriteFile(path, []byte(strings.Repeat("x", n)), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestMeasureCountsBlocksAndEntriesWithoutFollowingLinks(t *testing.T) {
	t.Parallel()
	outside := t.TempDir()
	writeFile(t, filepath.Join(outside, "big"), 4<<20)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a"), 1<<20)
	// A sparse file claims 1 GiB but holds nothing.
	f, err := os.Create(filepath.Join(dir, "sparse"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1 << 30); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.Symlink(outside, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if err := os.WriteFile(filepath.Join(dir, "empty", strconv.Itoa(i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	u, err := measure(dir, usage{})
	if err != nil {
		t.Fatal(err)
	}
	// dir, a, sparse, link, empty and its 100 files.
	if u.entries != 105 {
		t.Errorf("entries = %d, want 105", u.entries)
	}
	if u.bytes < 1<<20 || u.bytes > 2<<20 {
		t.Errorf("bytes = %d, want about 1 MiB: the link's target or the sparse file's size was counted", u.bytes)
	}
	t.Run("stops_early_past_the_limit", func(t *testing.T) {
		u, err := measure(dir, usage{entries: 10})
		if err != nil {
			t.Fatal(err)
		}
		if u.entries != 11 {
			t.Errorf("entries = %d, want the walk to stop at 11", u.entries)
		}
	})
}

func TestBelowFloor(t *testing.T) {
	t.Parallel()
	const gib = 1 << 30
	cases := []struct {
		name       string
		minFree    int64
		size, free uint64
		below      bool
	}{
		{"default_is_2GiB_on_a_small_disk", 0, 10 * gib, 2*gib + 1, false},
		{"default_is_2GiB_on_a_small_disk_below", 0, 10 * gib, 2*gib - 1, true},
		{"default_is_5_percent_on_a_big_disk", 0, 1000 * gib, 49 * gib, true},
		{"default_is_5_percent_on_a_big_disk_above", 0, 1000 * gib, 51 * gib, false},
		{"explicit_floor", 100 << 20, 10 * gib, 99 << 20, true},
		{"explicit_floor_above", 100 << 20, 10 * gib, 101 << 20, false},
		{"no_floor", -1, 10 * gib, 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := &DiskGuard{Root: "/ws", MinFree: c.minFree, Statfs: func(string) (FSStat, error) {
				return FSStat{Size: c.size, Free: c.free}, nil
			}}
			err := g.BelowFloor()
			if got := err != nil; got != c.below {
				t.Fatalf("BelowFloor() = %v, want below %v", err, c.below)
			}
			if c.below && (!errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "below the floor")) {
				t.Errorf("BelowFloor() = %v, want ENOSPC naming the floor", err)
			}
		})
	}
	t.Run("statfs_failure_is_returned", func(t *testing.T) {
		boom := errors.New("boom")
		g := &DiskGuard{Root: "/ws", Statfs: func(string) (FSStat, error) { return FSStat{}, boom }}
		if err := g.BelowFloor(); !errors.Is(err, boom) {
			t.Errorf("BelowFloor() = %v, want the statfs error", err)
		}
	})
	t.Run("nil_guard_guards_nothing", func(t *testing.T) {
		var g *DiskGuard
		if err := g.BelowFloor(); err != nil {
			t.Error(err)
		}
	})
}

// watchStopped waits for ctx to end and returns its disk stop.
func watchStopped(t *testing.T, ctx context.Context) diskStop {
	t.Helper()
	select {
	case <-ctx.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the attempt was never stopped")
	}
	stop, ok := diskStopCause(ctx)
	if !ok {
		t.Fatalf("stopped for %v, not for disk", context.Cause(ctx))
	}
	return stop
}

func TestBudgetStopsAnAttemptThatWritesTooMuch(t *testing.T) {
	t.Parallel()
	roomy := func(string) (FSStat, error) { return FSStat{Size: 100 << 30, Free: 90 << 30}, nil }
	cases := []struct {
		name  string
		write func(t *testing.T, dir string)
		want  string
	}{
		{"bytes", func(t *testing.T, dir string) { writeFile(t, filepath.Join(dir, "fill"), 2<<20) },
			"stopped: wrote more than 1 MiB into its working copy"},
		{"empty_files", func(t *testing.T, dir string) {
			for i := range 300 { // the 1 MiB budget allows 256 entries
				if err := os.WriteFile(filepath.Join(dir, strconv.Itoa(i)), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}, "stopped: made more than 256 files and directories in its working copy"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			// The checkout is there before the attempt: it is not charged.
			writeFile(t, filepath.Join(dir, "checkout"), 3<<20)
			g := &DiskGuard{Root: dir, Budget: 1 << 20, Interval: 10 * time.Millisecond, Statfs: roomy}
			ctx, done := g.Watch(context.Background(), dir)
			defer done()
			c.write(t, dir)
			if stop := watchStopped(t, ctx); stop.reason != c.want || stop.kind != "budget" {
				t.Errorf("stopped %q (%s), want %q", stop.reason, stop.kind, c.want)
			}
		})
	}
	t.Run("within_the_budget_runs_on", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "checkout"), 3<<20)
		g := &DiskGuard{Root: dir, Budget: 1 << 20, Interval: time.Hour, Statfs: roomy}
		ctx, done := g.Watch(context.Background(), dir)
		defer done()
		writeFile(t, filepath.Join(dir, "small"), 256<<10)
		g.mu.Lock()
		var a *guardedAttempt
		for a = range g.attempts {
		}
		g.mu.Unlock()
		g.check(a)
		if ctx.Err() != nil {
			t.Fatalf("stopped within the budget: %v", context.Cause(ctx))
		}
	})
}

func TestFloorStopsTheAttemptThatWroteMost(t *testing.T) {
	t.Parallel()
	var free atomic.Uint64
	free.Store(50 << 30)
	g := &DiskGuard{MinFree: 1 << 30, Interval: time.Hour, Statfs: func(string) (FSStat, error) {
		return FSStat{Size: 100 << 30, Free: free.Load()}, nil
	}}
	small, big := t.TempDir(), t.TempDir()
	g.Root = small
	smallCtx, doneSmall := g.Watch(context.Background(), small)
	defer doneSmall()
	bigCtx, doneBig := g.Watch(context.Background(), big)
	defer doneBig()
	writeFile(t, filepath.Join(small, "f"), 1<<20)
	writeFile(t, filepath.Join(big, "f"), 3<<20)
	attempt := map[string]*guardedAttempt{}
	g.mu.Lock()
	for a := range g.attempts {
		attempt[a.dir] = a
	}
	g.mu.Unlock()
	// Above the floor nothing is stopped; each check records what its
	// attempt wrote.
	g.check(attempt[small])
	g.check(attempt[big])
	if smallCtx.Err() != nil || bigCtx.Err() != nil {
		t.Fatal("an attempt was stopped above the floor")
	}
	free.Store(512 << 20)
	g.check(attempt[small])
	if smallCtx.Err() != nil {
		t.Fatalf("the attempt that wrote less was stopped: %v", context.Cause(smallCtx))
	}
	g.check(attempt[big])
	stop := watchStopped(t, bigCtx)
	if stop.kind != "floor" || !strings.Contains(stop.reason, "below its free-space floor") || !strings.Contains(stop.reason, "3 MiB") {
		t.Errorf("stopped %q (%s), want the floor with what it wrote", stop.reason, stop.kind)
	}
}

func TestFormatBytes(t *testing.T) {
	t.Parallel()
	for n, want := range map[int64]string{512: "512 B", 4 << 30: "4 GiB", 3 << 19: "1.5 MiB", 0: "0 B"} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// BenchmarkMeasure is the cost of one measurement of a working copy of
// 10,000 files in 100 directories, the guard's work per attempt and
// interval.
func BenchmarkMeasure(b *testing.B) {
	dir := b.TempDir()
	for d := range 100 {
		sub := filepath.Join(dir, strconv.Itoa(d))
		if err := os.Mkdir(sub, 0o755); err != nil {
			b.Fatal(err)
		}
		for f := range 100 {
			if err := os.WriteFile(filepath.Join(sub, strconv.Itoa(f)), []byte("package x\n"), 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ResetTimer()
	for b.Loop() {
		u, err := measure(dir, usage{})
		if err != nil || u.entries != 10101 {
			b.Fatalf("measure = %+v, %v", u, err)
		}
	}
}
