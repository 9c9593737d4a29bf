package worker

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/pipeline"
	"github.com/yourci/yourci/pkg/status"
)

// A test can fill the workspace's filesystem from its own working copy,
// and the queue's store (embedded by default, under the workspace) lives
// on the same disk. No kernel quota bounds an arbitrary directory on ext4
// without setup, so DiskGuard measures: each running attempt's working
// copy every Interval (bytes by st_blocks, and entries, so a million empty
// files count too), and the filesystem's free space.

// Disk defaults.
const (
	DefaultAttemptDisk  = 4 << 30
	DefaultMinFreeBytes = 2 << 30
	// DefaultMinFreePercent of the filesystem's size is the floor when
	// that is more than DefaultMinFreeBytes.
	DefaultMinFreePercent = 5
	DefaultDiskInterval   = 2 * time.Second
	// bytesPerEntry sizes an attempt's entry budget from its byte budget:
	// 4 GiB allow a million files and directories.
	bytesPerEntry = 4 << 10
)

// FSStat is what statfs(2) says of a filesystem, in bytes.
type FSStat struct{ Size, Free uint64 }

// Statfs answers for the filesystem holding path; StatfsOf is the real one.
type Statfs func(path string) (FSStat, error)

// StatfsOf asks the kernel. Free counts what an unprivileged user may
// still write (f_bavail), not the blocks reserved for root.
func StatfsOf(path string) (FSStat, error) {
	var s syscall.Statfs_t
	if err := syscall.Statfs(path, &s); err != nil {
		return FSStat{}, fmt.Errorf("statfs %s: %w", path, err)
	}
	return FSStat{Size: s.Blocks * uint64(s.Bsize), Free: s.Bavail * uint64(s.Bsize)}, nil
}

// DiskGuard bounds what attempts write into their working copies and keeps
// a free-space floor on the workspace's filesystem. Its methods may be
// called concurrently. A nil *DiskGuard guards nothing.
type DiskGuard struct {
	// Root is a path on the workspace's filesystem.
	Root string
	// Budget is how many bytes an attempt may add to its working copy;
	// it may also add Budget/4 KiB entries. Zero means no budget.
	Budget int64
	// MinFree is the floor in bytes; zero means the larger of
	// DefaultMinFreeBytes and MinFreePercent of the filesystem; negative
	// means no floor.
	MinFree int64
	// MinFreePercent, when MinFree is zero, is the floor's share of the
	// filesystem's size; zero means DefaultMinFreePercent.
	MinFreePercent int
	// Interval is how often a running attempt is measured; zero means
	// DefaultDiskInterval. A tree whose walk takes more than a twentieth
	// of it is measured less often, twenty walks' time apart.
	Interval time.Duration
	// Statfs is asked for free space; nil means StatfsOf.
	Statfs Statfs

	mu       sync.Mutex
	attempts map[*guardedAttempt]struct{}
}

// diskStop is why an attempt was stopped for disk: the cancel cause of
// its context, and the reason its log and status give.
type diskStop struct{ kind, reason string }

func (e diskStop) Error() string { return e.reason }

// diskStopCause returns why ctx was cancelled for disk, if it was.
func diskStopCause(ctx context.Context) (diskStop, bool) {
	var s diskStop
	ok := errors.As(context.Cause(ctx), &s)
	return s, ok
}

type guardedAttempt struct {
	dir      string
	base     usage
	written  int64 // bytes added since the start, as last measured
	stop     context.CancelCauseFunc
	stopping bool
}

// usage is what a directory tree holds.
type usage struct{ bytes, entries int64 }

// measure walks dir without following symbolic links and adds up its
// entries' allocated blocks (st_blocks, so sparse files count what they
// hold) and their number. It stops early, with what it counted so far,
// once the count passes stopAt (when stopAt.bytes or .entries > 0), so a
// tree far past the budget costs no more than one at the budget. Entries
// that vanish during the walk are skipped: the test is still running.
func measure(dir string, stopAt usage) (usage, error) {
	var u usage
	errEnough := errors.New("enough")
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
				return nil
			}
			return err
		}
		u.entries++
		info, err := d.Info() // lstat: WalkDir does not follow links
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			u.bytes += st.Blocks * 512
		} else {
			u.bytes += info.Size()
		}
		if (stopAt.bytes > 0 && u.bytes > stopAt.bytes) || (stopAt.entries > 0 && u.entries > stopAt.entries) {
			return errEnough
		}
		return nil
	})
	if err != nil && !errors.Is(err, errEnough) {
		return u, fmt.Errorf("measuring %s: %w", dir, err)
	}
	return u, nil
}

// entryBudget is how many entries an attempt may add.
func (g *DiskGuard) entryBudget() int64 { return g.Budget / bytesPerEntry }

// floor is the free-space floor of a filesystem of the given size, 0 when
// there is none.
func (g *DiskGuard) floor(size uint64) uint64 {
	switch {
	case g.MinFree < 0:
		return 0
	case g.MinFree > 0:
		return uint64(g.MinFree)
	}
	pct := g.MinFreePercent
	if pct <= 0 {
		pct = DefaultMinFreePercent
	}
	return max(DefaultMinFreeBytes, size/100*uint64(pct))
}

// BelowFloor returns a non-nil error, saying how much is free against the
// floor, when the workspace's filesystem has less free space than the
// floor; a failed statfs is returned as is.
func (g *DiskGuard) BelowFloor() error {
	if g == nil || g.MinFree < 0 {
		return nil
	}
	statfs := g.Statfs
	if statfs == nil {
		statfs = StatfsOf
	}
	st, err := statfs(g.Root)
	if err != nil {
		return err
	}
	if floor := g.floor(st.Size); st.Free < floor {
		return fmt.Errorf("%w: %s free on the workspace disk, below the floor of %s", syscall.ENOSPC, formatBytes(int64(st.Free)), formatBytes(int64(floor)))
	}
	return nil
}

// Free reports the workspace filesystem's free bytes and the floor, for
// metrics and /healthz; a nil guard reports an error.
func (g *DiskGuard) Free() (free, floor uint64, err error) {
	if g == nil {
		return 0, 0, errors.New("no disk guard")
	}
	statfs := g.Statfs
	if statfs == nil {
		statfs = StatfsOf
	}
	st, err := statfs(g.Root)
	if err != nil {
		return 0, 0, err
	}
	return st.Free, g.floor(st.Size), nil
}

// Watch guards an attempt whose working copy is dir until the returned
// function is called (which waits for the watch to end). The attempt runs
// under the returned context, which is cancelled with a diskStop cause
// when the attempt adds more than the budget to dir, or when the
// filesystem falls below the floor and this attempt has written the most
// of those running. What dir holds when Watch is called (the checkout) is
// not charged to the attempt.
func (g *DiskGuard) Watch(ctx context.Context, dir string) (context.Context, func()) {
	if g == nil {
		return ctx, func() {}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	a := &guardedAttempt{dir: dir, stop: cancel}
	if base, err := measure(dir, usage{}); err == nil {
		a.base = base
	}
	g.mu.Lock()
	if g.attempts == nil {
		g.attempts = map[*guardedAttempt]struct{}{}
	}
	g.attempts[a] = struct{}{}
	g.mu.Unlock()
	interval := g.Interval
	if interval <= 0 {
		interval = DefaultDiskInterval
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		timer := time.NewTimer(interval)
		defer timer.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
				began := time.Now()
				g.check(a)
				// A big tree is measured less often: the walk takes at
				// most a twentieth of one core per attempt.
				timer.Reset(max(interval, 20*time.Since(began)))
			}
		}
	}()
	return ctx, func() {
		cancel(nil)
		<-done
		g.mu.Lock()
		delete(g.attempts, a)
		g.mu.Unlock()
	}
}

// check measures a once, and stops it if it is past its budget, or if the
// filesystem is below its floor and a has written the most.
func (g *DiskGuard) check(a *guardedAttempt) {
	stopAt := usage{}
	if g.Budget > 0 {
		stopAt = usage{bytes: a.base.bytes + g.Budget, entries: a.base.entries + g.entryBudget()}
	}
	u, err := measure(a.dir, stopAt)
	if err != nil {
		return // the next tick measures again
	}
	g.mu.Lock()
	a.written = u.bytes - a.base.bytes
	g.mu.Unlock()
	switch {
	case g.Budget > 0 && u.bytes > stopAt.bytes:
		g.stop(a, "budget", fmt.Sprintf("stopped: wrote more than %s into its working copy", formatBytes(g.Budget)))
		return
	case g.Budget > 0 && u.entries > stopAt.entries:
		g.stop(a, "budget", fmt.Sprintf("stopped: made more than %d files and directories in its working copy", g.entryBudget()))
		return
	}
	if err := g.BelowFloor(); err != nil && errors.Is(err, syscall.ENOSPC) && g.writesMost(a) {
		g.stop(a, "floor", fmt.Sprintf("stopped: the workspace disk fell below its free-space floor and this test had written most (%s)", formatBytes(max(a.written, 0))))
	}
}

// writesMost tells whether a has written the most of the attempts not
// already being stopped.
func (g *DiskGuard) writesMost(a *guardedAttempt) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for o := range g.attempts {
		if o != a && !o.stopping && o.written > a.written {
			return false
		}
	}
	return true
}

func (g *DiskGuard) stop(a *guardedAttempt, kind, reason string) {
	g.mu.Lock()
	a.stopping = true
	g.mu.Unlock()
	a.stop(diskStop{kind: kind, reason: reason})
}

// formatBytes writes n in the largest binary unit that keeps it at least
// 1, with one decimal unless whole: "4 GiB", "1.5 MiB", "512 B".
func formatBytes(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	v, i := float64(n), 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if v == float64(int64(v)) {
		return fmt.Sprintf("%d %s", int64(v), units[i])
	}
	return fmt.Sprintf("%.1f %s", v, units[i])
}

// stoppedForDisk reports an attempt the DiskGuard stopped: the reason
// closes its log and is its error status; it is not retried (the same
// test would write as much again), and its working copy is removed at
// once to give the space back.
func (h *testHandler) stoppedForDisk(ctx context.Context, log *slog.Logger, st status.Status, job events.TestJob, a pipeline.Attempt, res pipeline.Result, stop diskStop) error {
	removeWorkCopy(log, a.Dir)
	h.metrics.DiskStops.WithLabelValues(stop.kind).Inc()
	h.metrics.attemptDone(res)
	log.Warn("stopped test for disk", "reason", stop.reason)
	if err := appendLogLine(a.LogPath, pipeline.LogPrefix+stop.reason+"\n"); err != nil {
		log.Warn("writing the stop's reason to the log", "err", err)
	}
	res.Reason = stop.reason
	st.State, st.Description = status.Error, status.Errored(stop.reason)
	st.Output = attemptReport(a.LogPath, st)
	return h.rec.recordFinal(ctx, job, st, &res)
}

// appendLogLine appends line to the log at path, which the worker owns
// (the sandbox writes only the working copy beside it).
func appendLogLine(path, line string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return fmt.Errorf("opening log: %w", err)
	}
	if _, err := f.WriteString(line); err != nil {
		f.Close()
		return fmt.Errorf("writing log: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("closing log: %w", err)
	}
	return nil
}

// removeWorkCopy removes a test's working copy once no attempt needs it;
// its log, beside it, stays. A failure is logged: the cleanup removes
// what is left with the build.
func removeWorkCopy(log *slog.Logger, dir string) {
	if err := os.RemoveAll(dir); err != nil {
		log.Warn("removing the test's working copy", "err", err)
	}
}
