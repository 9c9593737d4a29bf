package reconcile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"time"

	"github.com/yourci/yourci/pkg/artifacts"
	"github.com/yourci/yourci/pkg/events"
)

// DefaultRunningWindow is how recently a file of a build must have changed
// for the build to count as running whatever the queue says: a test that
// runs writes its log, and a box whose queue cannot answer for one of its
// builds (a test stopped by a worker that then died, handed back to
// another box) still finishes within the longest attempt plus its retry
// wait, which two hours covers by default.
const DefaultRunningWindow = 2 * time.Hour

// Workspace is what Cleanup needs of the workspace: its build directories
// (Layout), the removal of old builds (Cleaner) and of unused caches
// (Caches); artifacts.Workspace has it.
type Workspace interface {
	BuildDir(b artifacts.Build) (string, error)
	Cleanup(ctx context.Context, olderThan time.Duration, now time.Time, running func(artifacts.Build) bool) (artifacts.CleanupReport, error)
	CleanupCaches(ctx context.Context, unusedFor time.Duration, now time.Time) (artifacts.CleanupReport, error)
}

// CleanupOptions configure Cleanup.
type CleanupOptions struct {
	// OlderThan is the age past which an untouched build is removed.
	OlderThan time.Duration
	// RunningWindow is DefaultRunningWindow when zero.
	RunningWindow time.Duration
	// CacheUnusedFor, when positive, also removes every repository cache
	// no test used for that long (artifacts.Caches.CleanupCaches);
	// zero keeps them all.
	CacheUnusedFor time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Cleanup removes from ws every build (and dangling log symlink) in which
// nothing changed for OlderThan, never one that is running. A build is
// running when the queue holds a test of it (queued, running, or waiting
// for a retry, which may leave its files untouched for hours), or when a
// file in it changed within RunningWindow. Nothing outside ws is touched
// (see artifacts.Cleaner.Cleanup).
func Cleanup(ctx context.Context, ws Workspace, backlog Backlog, opts CleanupOptions) (artifacts.CleanupReport, error) {
	if opts.OlderThan <= 0 {
		return artifacts.CleanupReport{}, fmt.Errorf("cleanup age %s must be positive", opts.OlderThan)
	}
	if opts.RunningWindow <= 0 {
		opts.RunningWindow = DefaultRunningWindow
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	jobs, err := backlog.Jobs(ctx, events.Repo{})
	if err != nil {
		return artifacts.CleanupReport{}, fmt.Errorf("asking the queue which builds run: %w", err)
	}
	now := opts.Now()
	recentCutoff := now.Add(-opts.RunningWindow)
	running := func(b artifacts.Build) bool {
		if jobs.BuildLive(events.Repo{Owner: b.Owner, Name: b.Repo}, b.Pull, b.Number) {
			return true
		}
		// Cleanup itself keeps anything changed within OlderThan; only a
		// shorter age needs the window checked here.
		if opts.OlderThan >= opts.RunningWindow {
			return false
		}
		dir, err := ws.BuildDir(b)
		return err != nil || changedSince(dir, recentCutoff)
	}
	rep, err := ws.Cleanup(ctx, opts.OlderThan, now, running)
	if opts.CacheUnusedFor <= 0 {
		return rep, err
	}
	caches, cerr := ws.CleanupCaches(ctx, opts.CacheUnusedFor, now)
	rep.Caches, rep.BytesFreed = caches.Caches, rep.BytesFreed+caches.BytesFreed
	return rep, errors.Join(err, cerr)
}

// DefaultCacheUnusedFor is how long a repository's cache may go unused
// before the cleanup removes it: a month, so a repository built every few
// weeks keeps its downloads.
const DefaultCacheUnusedFor = 30 * 24 * time.Hour

// errRecent ends a walk at the first recent file.
var errRecent = errors.New("recently changed")

// changedSince reports whether anything under dir (symlinks not followed)
// changed after cutoff. An unreadable tree counts as changed: when unsure,
// keep.
func changedSince(dir string, cutoff time.Time) bool {
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.ModTime().After(cutoff) {
			return errRecent
		}
		return nil
	})
	return err != nil
}

// WriteCleanupReport prints what Cleanup removed.
func WriteCleanupReport(w io.Writer, rep artifacts.CleanupReport) error {
	for _, b := range rep.Builds {
		if _, err := fmt.Fprintf(w, "removed build %s\n", b); err != nil {
			return err
		}
	}
	for _, c := range rep.Caches {
		if _, err := fmt.Fprintf(w, "removed cache %s\n", c); err != nil {
			return err
		}
	}
	for _, l := range rep.Links {
		if _, err := fmt.Fprintf(w, "removed dangling log link %s\n", l); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(w, "cleanup: %d builds, %d log links and %d mirror pins removed, %s freed\n",
		len(rep.Builds), len(rep.Links), rep.Pins, humanBytes(rep.BytesFreed))
	return err
}

// humanBytes writes a size in binary units: "512 B", "3.2 MiB".
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
