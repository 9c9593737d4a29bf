package artifacts

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// CleanupReport says what one Cleanup removed.
type CleanupReport struct {
	// Builds are the builds whose directories were removed.
	Builds []Build
	// Pins counts the mirror refs (refs/yci/builds/...) deleted because
	// their build directory is gone.
	Pins int
	// Links are the log symlinks removed, relative to the workspace root.
	Links []string
	// Caches are the repository caches removed (CleanupCaches), as
	// owner/repo.
	Caches []string
	// BytesFreed is the apparent size of the regular files removed.
	BytesFreed int64
}

// Cleaner removes what old builds leave behind: their directories, their
// preparation logs, the log symlinks left dangling and the pins of their
// commits. Get it from Open.
type Cleaner struct {
	layout    Layout
	checkouts *Checkouts
}

// Cleanup removes what old builds leave behind: every build directory
// (<owner>/<repo>/pulls/<pr>/<build>) in which nothing was modified since
// now minus olderThan and for which running reports false, the mirror pins
// of builds whose directory is gone, and log symlinks older than that whose
// target no longer exists. A nil running means no build is running.
//
// It only ever removes entries whose names fit the layout, never descends
// through a symlink, and leaves alone symlinks pointing outside their
// repository directory, so nothing outside the root is touched whatever a
// test left in its checkout. A failure on one entry does not stop the
// others: the report lists what was removed, and the error joins every
// failure. It may run while workers build; a build that is running or was
// touched recently is kept.
func (cl Cleaner) Cleanup(ctx context.Context, olderThan time.Duration, now time.Time, running func(Build) bool) (CleanupReport, error) {
	var rep CleanupReport
	if olderThan < 0 {
		return rep, fmt.Errorf("%w: cleanup age %s is negative", ErrInvalid, olderThan)
	}
	if running == nil {
		running = func(Build) bool { return false }
	}
	cutoff := now.Add(-olderThan)
	owners, err := subdirs(cl.layout.root, func(name string) bool { return ValidateOwner(name) == nil })
	if err != nil {
		return rep, err
	}
	var errs []error
	for _, owner := range owners {
		repos, err := subdirs(filepath.Join(cl.layout.root, owner), func(name string) bool { return ValidateRepo(name) == nil })
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, repo := range repos {
			if err := ctx.Err(); err != nil {
				return rep, errors.Join(append(errs, fmt.Errorf("cleaning up: %w", err))...)
			}
			if err := cl.cleanRepo(ctx, owner, repo, cutoff, running, &rep); err != nil {
				errs = append(errs, fmt.Errorf("cleaning up %s/%s: %w", owner, repo, err))
			}
		}
	}
	return rep, errors.Join(errs...)
}

func (cl Cleaner) cleanRepo(ctx context.Context, owner, repo string, cutoff time.Time, running func(Build) bool, rep *CleanupReport) error {
	repoDir := filepath.Join(cl.layout.root, owner, repo)
	pullsDir := filepath.Join(repoDir, "pulls")
	prs, err := subdirs(pullsDir, isNumber)
	if err != nil {
		return err
	}
	var errs []error
	for _, pr := range prs {
		prDir := filepath.Join(pullsDir, pr)
		builds, err := subdirs(prDir, isNumber)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, build := range builds {
			b := Build{Owner: owner, Repo: repo, Pull: mustNumber(pr), Number: mustNumber(build)}
			if running(b) {
				continue
			}
			if err := removeBuild(filepath.Join(prDir, build), b, cutoff, rep); err != nil {
				errs = append(errs, err)
			}
		}
		if err := removeOldPrepareLogs(prDir, cutoff); err != nil {
			errs = append(errs, err)
		}
		if err := os.Remove(prDir); err != nil && !errors.Is(err, syscall.ENOTEMPTY) && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("removing empty pull directory: %w", err))
		}
	}
	if err := cl.checkouts.unpinRemoved(ctx, owner, repo, running, rep); err != nil {
		errs = append(errs, err)
	}
	if err := removeDanglingLinks(cl.layout.root, repoDir, cutoff, rep); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// removeBuild removes dir if nothing in it is newer than cutoff.
func removeBuild(dir string, b Build, cutoff time.Time, rep *CleanupReport) error {
	var newest time.Time
	var size int64
	err := walkTree(dir, func(_ string, info fs.FileInfo) {
		if info.ModTime().After(newest) {
			newest = info.ModTime()
		}
		if info.Mode().IsRegular() {
			size += info.Size()
		}
	})
	if err != nil {
		return fmt.Errorf("inspecting build %s: %w", b, err)
	}
	if newest.After(cutoff) {
		return nil
	}
	if err := removeTree(dir); err != nil {
		return fmt.Errorf("removing build %s: %w", b, err)
	}
	rep.Builds = append(rep.Builds, b)
	rep.BytesFreed += size
	return nil
}

// removeDanglingLinks removes the log symlinks of repoDir (and leftovers of
// interrupted LinkLog calls) that are older than cutoff and whose target is
// gone. Links pointing outside repoDir are not ours and are left alone.
func removeDanglingLinks(root, repoDir string, cutoff time.Time, rep *CleanupReport) error {
	entries, err := os.ReadDir(repoDir)
	if err != nil {
		return fmt.Errorf("listing %s: %w", repoDir, err)
	}
	var errs []error
	for _, e := range entries {
		name := e.Name()
		if e.Type()&fs.ModeSymlink == 0 || !(strings.HasSuffix(name, "-out.txt") || strings.Contains(name, "-out.txt.tmp-")) {
			continue
		}
		link := filepath.Join(repoDir, name)
		target, err := os.Readlink(link)
		if err != nil {
			errs = append(errs, fmt.Errorf("reading link: %w", err))
			continue
		}
		resolved := filepath.Join(repoDir, target)
		if filepath.IsAbs(target) || !inside(repoDir, resolved) {
			continue
		}
		if _, err := os.Lstat(resolved); !errors.Is(err, fs.ErrNotExist) {
			continue
		}
		info, err := e.Info()
		if err != nil || info.ModTime().After(cutoff) {
			continue
		}
		if err := os.Remove(link); err != nil {
			errs = append(errs, fmt.Errorf("removing dangling link: %w", err))
			continue
		}
		rel, err := filepath.Rel(root, link)
		if err != nil {
			rel = link
		}
		rep.Links = append(rep.Links, rel)
	}
	return errors.Join(errs...)
}

// subdirs lists the real directories (not symlinks) in dir whose names keep
// returns true for. A missing dir has none.
func subdirs(dir string, keep func(string) bool) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", dir, err)
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() && keep(e.Name()) {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// parseNumber accepts the canonical decimal form of a positive int, the only
// form the layout writes, so a name maps back to exactly one build.
func parseNumber(s string) (int, bool) {
	n, err := strconv.Atoi(s)
	return n, err == nil && n > 0 && strconv.Itoa(n) == s
}

func isNumber(s string) bool {
	_, ok := parseNumber(s)
	return ok
}

// mustNumber converts a name that subdirs already filtered with isNumber.
func mustNumber(s string) int {
	n, ok := parseNumber(s)
	if !ok {
		panic("artifacts: " + strconv.Quote(s) + " was not checked with isNumber")
	}
	return n
}

// walkTree calls fn for path and everything below it, never following
// symlinks. A directory it may not read is made readable first: everything
// in the workspace is ours, even where a test removed the permissions.
func walkTree(path string, fn func(string, fs.FileInfo)) error {
	info, err := os.Lstat(path)
	if err != nil {
		return err
	}
	fn(path, info)
	if !info.IsDir() {
		return nil
	}
	entries, err := os.ReadDir(path)
	if errors.Is(err, fs.ErrPermission) {
		if chErr := os.Chmod(path, 0o700); chErr != nil {
			return errors.Join(err, chErr)
		}
		entries, err = os.ReadDir(path)
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := walkTree(filepath.Join(path, e.Name()), fn); err != nil {
			return err
		}
	}
	return nil
}

// removeTree removes path and everything below it without following
// symlinks, first restoring write permission on directories when a plain
// removal is refused (tests and Go's module cache leave read-only trees).
func removeTree(path string) error {
	if err := os.RemoveAll(path); err == nil {
		return nil
	}
	var chmodErr error
	walkErr := walkTree(path, func(p string, info fs.FileInfo) {
		if info.IsDir() && info.Mode().Perm()&0o700 != 0o700 {
			if err := os.Chmod(p, 0o700); err != nil && chmodErr == nil {
				chmodErr = err
			}
		}
	})
	if err := os.RemoveAll(path); err != nil {
		return errors.Join(err, walkErr, chmodErr)
	}
	return nil
}
