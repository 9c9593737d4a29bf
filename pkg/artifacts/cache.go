package artifacts

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// cacheRoot holds the per-repository caches, <root>/.cache/<owner>/<repo>.
// Its name starts with a dot, which no owner may: Cleanup never walks it,
// nginx never serves it (see deploy/nginx/yourci.conf), and no repository's
// directory can collide with it.
const cacheRoot = ".cache"

// cacheStamps holds, beside the caches and out of the sandbox's sight, one
// stamp file per repository cache, <root>/.cache/.used/<owner>/<repo>:
// its mtime is when a command last used the cache, and its flock is held
// shared by every command using the cache and exclusively by
// CleanupCaches while it removes the cache. No owner's name starts with a
// dot, so it cannot collide with a cache.
const cacheStamps = ".used"

// Caches are the per-repository caches tests keep their downloads and
// build caches in from one build to the next, and the lock through which
// a command using one (UseCache) keeps CleanupCaches from removing it,
// across processes sharing the root. Get it from Open.
type Caches struct {
	layout Layout
}

// CacheDir is owner/repo's cache directory, <root>/.cache/<owner>/<repo>,
// created if missing. Tests of that repository, and only of that
// repository, keep their downloads and build caches there from one build
// to the next (see pkg/sandbox). Cleanup leaves it alone, CleanupCaches
// removes it once unused for long; deleting it is always safe when no
// command uses it. Commands should get it from UseCache.
func (c Caches) CacheDir(owner, repo string) (string, error) {
	if _, err := c.layout.repoDir(owner, repo); err != nil {
		return "", err
	}
	dir := filepath.Join(c.layout.root, cacheRoot, owner, repo)
	if err := c.layout.ensureDir(dir); err != nil {
		return "", err
	}
	return dir, nil
}

// UseCache returns owner/repo's cache directory, created if missing, for
// a command that uses it until it calls release, exactly once. Until
// then CleanupCaches, in this process or another, leaves that cache alone;
// UseCache waits, until ctx ends, while CleanupCaches is removing it.
// Both the start and the release count as a use.
func (c Caches) UseCache(ctx context.Context, owner, repo string) (dir string, release func(), err error) {
	if _, err := c.layout.repoDir(owner, repo); err != nil {
		return "", nil, err
	}
	stamps := filepath.Join(c.layout.root, cacheRoot, cacheStamps, owner)
	if err := c.layout.ensureDir(stamps); err != nil {
		return "", nil, err
	}
	stamp := filepath.Join(stamps, repo)
	f, err := openStamp(stamp)
	if err != nil {
		return "", nil, err
	}
	if err := flockMode(ctx, f, syscall.LOCK_SH); err != nil {
		f.Close()
		return "", nil, fmt.Errorf("waiting for the cache of %s/%s: %w", owner, repo, err)
	}
	dir, err = c.CacheDir(owner, repo)
	if err == nil {
		err = touch(stamp)
	}
	if err != nil {
		unlockAndClose(f)
		return "", nil, err
	}
	return dir, func() {
		// Best effort: a stamp left older only makes the cache go sooner.
		touch(stamp)
		unlockAndClose(f)
	}, nil
}

// unlockAndClose releases f's lock, then closes f. Closing alone releases
// it only once every copy of the descriptor is closed, and a process
// forked elsewhere in the worker holds a copy until its exec; an explicit
// unlock releases it at once.
func unlockAndClose(f *os.File) {
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN) // best effort: Close releases it too
	f.Close()
}

// CleanupCaches removes every repository cache whose last use (UseCache)
// is older than now minus unusedFor, or lies in the future, and that no
// command uses at the moment. A cache from before the stamps existed is
// judged by its directory's mtime. Stamps are kept: they are empty files,
// one per repository. The report lists the caches removed, as owner/repo,
// and the bytes freed; the error joins every failure, each of which
// leaves its cache in place.
func (c Caches) CleanupCaches(ctx context.Context, unusedFor time.Duration, now time.Time) (CleanupReport, error) {
	var rep CleanupReport
	if unusedFor <= 0 {
		return rep, fmt.Errorf("%w: cache age %s must be positive", ErrInvalid, unusedFor)
	}
	cutoff := now.Add(-unusedFor)
	root := filepath.Join(c.layout.root, cacheRoot)
	owners, err := subdirs(root, func(name string) bool { return ValidateOwner(name) == nil })
	if err != nil {
		return rep, err
	}
	var errs []error
	for _, owner := range owners {
		repos, err := subdirs(filepath.Join(root, owner), func(name string) bool { return ValidateRepo(name) == nil })
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, repo := range repos {
			if err := ctx.Err(); err != nil {
				return rep, errors.Join(append(errs, fmt.Errorf("cleaning up caches: %w", err))...)
			}
			if err := c.removeUnusedCache(owner, repo, cutoff, now, &rep); err != nil {
				errs = append(errs, fmt.Errorf("cleaning up the cache of %s/%s: %w", owner, repo, err))
			}
		}
	}
	return rep, errors.Join(errs...)
}

// removeUnusedCache removes owner/repo's cache if it was last used before
// cutoff (or after now) and nobody uses it.
func (c Caches) removeUnusedCache(owner, repo string, cutoff, now time.Time, rep *CleanupReport) error {
	dir := filepath.Join(c.layout.root, cacheRoot, owner, repo)
	stamps := filepath.Join(c.layout.root, cacheRoot, cacheStamps, owner)
	if err := c.layout.ensureDir(stamps); err != nil {
		return err
	}
	stamp := filepath.Join(stamps, repo)
	judged := stamp
	if _, err := os.Lstat(stamp); errors.Is(err, os.ErrNotExist) {
		judged = dir
	}
	f, err := openStamp(stamp)
	if err != nil {
		return err
	}
	defer unlockAndClose(f)
	if busy, err := lockIfFree(f); err != nil {
		return fmt.Errorf("locking %s: %w", stamp, err)
	} else if busy {
		return nil // in use
	}
	info, err := os.Lstat(judged)
	if err != nil {
		return err
	}
	if used := info.ModTime(); !used.Before(cutoff) && !used.After(now.Add(time.Minute)) {
		return nil
	}
	var size int64
	if err := walkTree(dir, func(_ string, info os.FileInfo) {
		if info.Mode().IsRegular() {
			size += info.Size()
		}
	}); err != nil {
		return fmt.Errorf("inspecting: %w", err)
	}
	if err := removeTree(dir); err != nil {
		return fmt.Errorf("removing: %w", err)
	}
	rep.Caches = append(rep.Caches, owner+"/"+repo)
	rep.BytesFreed += size
	return nil
}

// lockIfFree takes f's exclusive lock unless a user holds it. Users unlock
// explicitly (unlockAndClose), but one that dies leaves its lock to the
// close of its descriptor, which a process forked elsewhere in the worker
// may hold a copy of until its exec: a busy lock is tried a few times.
func lockIfFree(f *os.File) (busy bool, err error) {
	for try := 0; ; try++ {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return false, err
		}
		if try == 4 {
			return true, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// openStamp opens (creating) a cache's stamp file, never through a symlink.
func openStamp(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening cache stamp: %w", err)
	}
	return f, nil
}

func touch(path string) error {
	now := time.Now()
	if err := os.Chtimes(path, now, now); err != nil {
		return fmt.Errorf("stamping the cache's use: %w", err)
	}
	return nil
}
