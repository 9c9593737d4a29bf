package artifacts

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/yourci/yourci/pkg/pause"
)

// mirrorRefspecs are what a mirror holds. Fetching with --prune removes a
// branch, tag or pull ref deleted upstream, but only under these prefixes:
// our own pins under refs/yci/ are never touched by a fetch.
var mirrorRefspecs = []string{
	"+refs/heads/*:refs/heads/*",
	"+refs/tags/*:refs/tags/*",
	"+refs/pull/*:refs/pull/*",
}

// Mirrors are the bare mirrors of the repositories this box builds, one
// per repository (Layout.MirrorDir): fetching them from the forge, the
// lock every writer of a mirror takes, in this process and across
// processes sharing the root, and the git processes the workspace runs.
// Its methods are safe for concurrent use; get it from Open.
type Mirrors struct {
	layout Layout

	// GitTimeout bounds each git process; zero means DefaultGitTimeout.
	// Set it before the workspace is shared between goroutines.
	GitTimeout time.Duration

	mu    sync.Mutex
	locks map[string]chan struct{} // per-mirror in-process locks
	// swept holds the mirrors whose stale git locks these Mirrors have
	// looked for at least once (see lockMirror).
	swept map[string]bool
	// fetched is when the latest successful fetch (or clone) of each
	// mirror by these Mirrors began; see UpdateMirrorSince.
	fetched map[string]time.Time
	// maintaining holds the mirrors a MaintainMirror is running or
	// waiting for the lock of, and unmaintained those fetched since their
	// last MaintainMirror began; see MaintainMirror.
	maintaining, unmaintained map[string]bool
}

func newMirrors(layout Layout) *Mirrors {
	return &Mirrors{layout: layout, locks: make(map[string]chan struct{}), swept: make(map[string]bool), fetched: make(map[string]time.Time),
		maintaining: make(map[string]bool), unmaintained: make(map[string]bool)}
}

// UpdateMirror brings the mirror of owner/repo up to date with cloneURL:
// created when absent, fetched otherwise, with branches, tags and pull refs
// (refs/pull/<n>/head) mirrored and pruned. cloneURL should be the base
// repository's clone URL as the forge's API gives it, never one a pull
// request author controls, and must not embed credentials.
//
// Calls for one repository are serialized on this box, across goroutines and
// across processes sharing the workspace. A mirror is created in a temporary
// directory and renamed into place, so a crash never leaves a half-made one.
//
// The mirror is a bare repository with no remote configured: every fetch
// names its URL and refspecs, so nothing in its config can go stale, carry a
// secret, or let a hand-run "git fetch" prune our pins. It is the equivalent
// of "git clone --mirror" restricted to the refs above.
//
// After fetching, UpdateMirror runs git's automatic maintenance
// (MaintainMirror) before it returns, as "git fetch" does: the tests' and
// commands' fetches are not on the way to a test's start, and a box that
// only runs tests must still collect its mirror's garbage.
// UpdateMirrorSince, the pull handler's, leaves it to a later
// MaintainMirror.
func (m *Mirrors) UpdateMirror(ctx context.Context, owner, repo, cloneURL string, auth GitAuth) error {
	if _, err := m.UpdateMirrorSince(ctx, owner, repo, cloneURL, auth, time.Time{}); err != nil {
		return err
	}
	return m.MaintainMirror(ctx, owner, repo)
}

// UpdateMirrorSince is UpdateMirror for a caller that needs the mirror only
// as new as the forge was at since (when the event it handles was sent):
// when a fetch of the mirror by these Mirrors that began after since has
// already succeeded, nothing is fetched again and fetched is false. A burst
// of events for one repository, waiting for the mirror's lock one after the
// other, then costs one fetch, not one each: the first fetch brought what
// every event sent before it began asked for. A zero since always fetches.
// It runs no automatic maintenance (see fetch): call MaintainMirror once
// the build's tests are queued.
// Fetches by other processes sharing the workspace are not known here, so
// they never stand in for one.
func (m *Mirrors) UpdateMirrorSince(ctx context.Context, owner, repo, cloneURL string, auth GitAuth, since time.Time) (fetched bool, err error) {
	mirror, err := m.layout.MirrorDir(owner, repo)
	if err != nil {
		return false, err
	}
	if err := validateCloneURL(cloneURL); err != nil {
		return false, err
	}
	// A fetch that served is known without the lock (one under way
	// counts once it has succeeded: the lock waits for it), as long as
	// the mirror it made is still there.
	if m.fetchedSince(mirror, since) {
		if exists, err := isDir(mirror); err == nil && exists {
			return false, nil
		}
	}
	unlock, err := m.lockMirror(ctx, mirror)
	if err != nil {
		return false, err
	}
	defer unlock()

	exists, err := isDir(mirror)
	if err != nil {
		return false, err
	}
	if exists && m.fetchedSince(mirror, since) {
		return false, nil
	}
	began := time.Now()
	if exists {
		err = m.fetch(ctx, mirror, cloneURL, auth)
	} else {
		err = m.createMirror(ctx, mirror, cloneURL, auth)
	}
	if err != nil {
		verb := "updating"
		if !exists {
			verb = "creating"
		}
		return true, fmt.Errorf("%s mirror of %s/%s: %w", verb, owner, repo, err)
	}
	m.mu.Lock()
	m.fetched[mirror] = began
	m.unmaintained[mirror] = true
	m.mu.Unlock()
	return true, nil
}

// MaintainMirror runs git's automatic maintenance in the mirror of
// owner/repo ("git maintenance run --auto": a garbage collection once
// enough loose objects or packs have piled up, nothing otherwise), the
// work a fetch would have done in the foreground (see fetch). Call it off
// the path to a test's start, once a build's tests are queued. It holds
// the mirror's lock, so it never runs beside another git process that
// writes the mirror, nor beside a pin being made; each git process is
// bounded by GitTimeout. It does nothing unless these Mirrors fetched
// the mirror since the last call began, nor while another call for the
// mirror runs or waits for its lock (that one does the work), so calling
// it after every event costs nothing when there is nothing to do. A
// missing mirror is not an error.
func (m *Mirrors) MaintainMirror(ctx context.Context, owner, repo string) error {
	mirror, err := m.layout.MirrorDir(owner, repo)
	if err != nil {
		return err
	}
	m.mu.Lock()
	due := m.unmaintained[mirror] && !m.maintaining[mirror]
	if due {
		m.maintaining[mirror] = true
		delete(m.unmaintained, mirror)
	}
	m.mu.Unlock()
	if !due {
		return nil
	}
	defer func() {
		m.mu.Lock()
		delete(m.maintaining, mirror)
		m.mu.Unlock()
	}()
	unlock, err := m.lockMirror(ctx, mirror)
	if err != nil {
		return err
	}
	defer unlock()
	if ok, err := isDir(mirror); err != nil || !ok {
		return err
	}
	if _, err := m.git(ctx, GitAuth{}, "--git-dir="+mirror, "maintenance", "run", "--auto", "--quiet"); err != nil {
		return fmt.Errorf("maintaining the mirror of %s/%s: %w", owner, repo, err)
	}
	return nil
}

// fetchedSince reports whether a fetch (or clone) of mirror by these
// Mirrors that began after since has succeeded; never for a zero since.
func (m *Mirrors) fetchedSince(mirror string, since time.Time) bool {
	if since.IsZero() {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	last, ok := m.fetched[mirror]
	return ok && last.After(since)
}

// fetch fetches the mirror's refs from cloneURL into gitDir. It runs no
// automatic maintenance afterwards, as a fetch otherwise does (a git
// process of its own, and sometimes a garbage collection, in the
// foreground): the fetch is on the way from a webhook to a test's start,
// and MaintainMirror does the same work once the tests are queued.
func (m *Mirrors) fetch(ctx context.Context, gitDir, cloneURL string, auth GitAuth) error {
	args := []string{"--git-dir=" + gitDir, "fetch", "--quiet", "--prune", "--no-tags", "--no-auto-maintenance",
		"--no-write-fetch-head", "--no-recurse-submodules", "--", cloneURL}
	_, err := m.git(ctx, auth, append(args, mirrorRefspecs...)...)
	return err
}

// createMirror runs with the mirror's lock held: any temporary directory
// beside the mirror is a leftover of a crashed attempt and is removed.
func (m *Mirrors) createMirror(ctx context.Context, mirror, cloneURL string, auth GitAuth) error {
	parent := filepath.Dir(mirror)
	stale, err := filepath.Glob(filepath.Join(parent, ".source.tmp-*"))
	if err != nil {
		return fmt.Errorf("listing leftovers: %w", err)
	}
	for _, dir := range stale {
		if err := removeTree(dir); err != nil {
			return fmt.Errorf("removing leftover of a crashed clone: %w", err)
		}
	}
	tmp, err := os.MkdirTemp(parent, ".source.tmp-")
	if err != nil {
		return fmt.Errorf("making temporary mirror: %w", err)
	}
	if err := m.fillMirror(ctx, tmp, cloneURL, auth); err != nil {
		if rmErr := removeTree(tmp); rmErr != nil {
			err = errors.Join(err, rmErr)
		}
		return err
	}
	if err := os.Rename(tmp, mirror); err != nil {
		return fmt.Errorf("moving mirror into place: %w", err)
	}
	return nil
}

func (m *Mirrors) fillMirror(ctx context.Context, dir, cloneURL string, auth GitAuth) error {
	// The object format is named so that mirrorConfig stays true whatever
	// a later git's default.
	if _, err := m.git(ctx, GitAuth{}, "init", "--quiet", "--bare", "--template=", "--object-format=sha1", "--", dir); err != nil {
		return err
	}
	return m.fetch(ctx, dir, cloneURL, auth)
}

// removeStaleGitLocks removes the *.lock files a git process killed mid-way
// (a worker SIGKILLed during a fetch, a timeout) leaves in a mirror; git
// would otherwise refuse every later update with "cannot lock ref". Only
// call it holding the mirror's lock: every writer of the mirror takes it, so
// any lock file found then is stale.
func removeStaleGitLocks(mirror string) error {
	var stale []string
	for _, name := range []string{"packed-refs.lock", "config.lock", "shallow.lock", "HEAD.lock"} {
		stale = append(stale, filepath.Join(mirror, name))
	}
	err := walkTree(filepath.Join(mirror, "refs"), func(path string, info fs.FileInfo) {
		if info.Mode().IsRegular() && strings.HasSuffix(path, ".lock") {
			stale = append(stale, path)
		}
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("looking for stale git locks: %w", err)
	}
	for _, path := range stale {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("removing stale git lock: %w", err)
		}
	}
	return nil
}

// sweepGitLocks removes mirror's stale git locks when lockMirror says it
// must (f is the lock file, held), and empties f: until the holder
// releases the lock with every git process ended on its own, the mirror
// may hold stale git locks again.
func (m *Mirrors) sweepGitLocks(f *os.File, mirror string) error {
	m.mu.Lock()
	first := !m.swept[mirror]
	m.mu.Unlock()
	var mark [len(lockClean)]byte
	n, _ := f.ReadAt(mark[:], 0) // a short or failed read is not clean
	if first || string(mark[:n]) != lockClean {
		if err := removeStaleGitLocks(mirror); err != nil {
			return err
		}
		m.mu.Lock()
		m.swept[mirror] = true
		m.mu.Unlock()
	}
	if n > 0 {
		if err := f.Truncate(0); err != nil {
			return fmt.Errorf("marking the mirror's lock as held: %w", err)
		}
	}
	return nil
}

// HasCommit reports whether the mirror of owner/repo holds commit sha. It is
// false for invalid input, a missing mirror, or any failure to tell.
func (m *Mirrors) HasCommit(ctx context.Context, owner, repo, sha string) bool {
	mirror, err := m.layout.MirrorDir(owner, repo)
	if err != nil || validateSHA(sha) != nil {
		return false
	}
	if ok, err := isDir(mirror); err != nil || !ok {
		return false
	}
	_, err = m.git(ctx, GitAuth{}, "--git-dir="+mirror, "cat-file", "-e", sha+"^{commit}")
	return err == nil
}

// lockClean is what the lock file beside a mirror holds while no one holds
// the lock and its last holder saw every git process it ran end on its
// own (see lockMirror); anything else, an empty file included, means the
// mirror may hold stale git locks.
const lockClean = "clean\n"

// lockMirror serializes work on one mirror: first among goroutines of this
// process, then among processes through flock(2) on a lock file beside the
// mirror. Waiting ends with ctx. Every write to a mirror happens under this
// lock, so git lock files found once it is taken are stale and removed.
// Looking for them walks the mirror's loose refs, which grow with its pull
// requests and pins, so it is done only when some may be there: the first
// time these Mirrors take the mirror's lock (a process killed earlier may
// have left some), and when the lock file does not say lockClean (its
// last holder was killed while it held the lock, or a git process it ran
// was killed). The returned function releases both locks.
func (m *Mirrors) lockMirror(ctx context.Context, mirror string) (func(), error) {
	m.mu.Lock()
	sem, ok := m.locks[mirror]
	if !ok {
		sem = make(chan struct{}, 1)
		m.locks[mirror] = sem
	}
	m.mu.Unlock()
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for the lock of %s: %w", mirror, ctx.Err())
	}
	release := func() { <-sem }

	if err := m.layout.ensureDir(filepath.Dir(mirror)); err != nil {
		release()
		return nil, err
	}
	lockPath := filepath.Join(filepath.Dir(mirror), ".source.lock")
	f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o644)
	if err != nil {
		release()
		return nil, fmt.Errorf("opening lock file: %w", err)
	}
	if err := flock(ctx, f); err != nil {
		f.Close()
		release()
		return nil, fmt.Errorf("locking %s: %w", lockPath, err)
	}
	killed := gitKilled.Load()
	unlock := func() {
		// The mark is written only when no git process was killed
		// meanwhile (in any mirror: the count is the process's); a failed
		// write leaves the file empty, which only costs a look.
		if gitKilled.Load() == killed {
			_, _ = f.WriteAt([]byte(lockClean), 0)
		}
		// Closing the descriptor releases the flock; a failure to close a
		// lock file has no consequence.
		f.Close()
		release()
	}
	if err := m.sweepGitLocks(f, mirror); err != nil {
		unlock()
		return nil, err
	}
	if err := resetMirror(mirror); err != nil {
		unlock()
		return nil, err
	}
	return unlock, nil
}

// lockExistingMirror takes the lock of owner/repo's mirror, which must
// exist (else the error wraps ErrNotMirrored), and returns its path.
func (m *Mirrors) lockExistingMirror(ctx context.Context, owner, repo string) (string, func(), error) {
	mirror, err := m.layout.MirrorDir(owner, repo)
	if err != nil {
		return "", nil, err
	}
	if ok, err := isDir(mirror); err != nil || !ok {
		return "", nil, errors.Join(fmt.Errorf("%w: no mirror of %s/%s yet", ErrNotMirrored, owner, repo), err)
	}
	unlock, err := m.lockMirror(ctx, mirror)
	if err != nil {
		return "", nil, err
	}
	return mirror, unlock, nil
}

// mirrorConfig is the whole config of a mirror, as "git init --bare
// --object-format=sha1" writes it. A mirror needs nothing more: every fetch
// names its URL and refspecs.
const mirrorConfig = "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = true\n"

// mirrorHead is a mirror's HEAD as git init writes it. Nothing reads it,
// but git refuses a repository whose HEAD is missing or garbled.
const mirrorHead = "ref: refs/heads/master\n"

// plantable are the files of a mirror that only a test (running
// unsandboxed, as the worker's user) could have written, each of which
// changes what later git commands in the mirror do: hooks run code;
// commondir moves the repository (config included) elsewhere; alternates
// borrow objects from elsewhere; grafts and shallow rewrite history.
var plantable = []string{"hooks", "commondir", "info/grafts", "shallow",
	"objects/info/alternates", "objects/info/http-alternates"}

// resetMirror undoes whatever a test may have changed in the mirror's
// configuration: it makes config and HEAD ours again (resetFile) and
// removes the plantable files. A missing mirror is left alone. Only call it holding the mirror's
// lock, before git runs there. The objects and refs are not checked: the
// sandbox is what keeps tests from reaching the mirror at all; this keeps
// a test that did reach it from running code as the worker.
func resetMirror(mirror string) error {
	if ok, err := isDir(mirror); err != nil || !ok {
		return err
	}
	for _, f := range []struct{ name, content string }{{"config", mirrorConfig}, {"HEAD", mirrorHead}} {
		if err := resetFile(filepath.Join(mirror, f.name), f.content); err != nil {
			return fmt.Errorf("resetting the mirror's %s: %w", f.name, err)
		}
	}
	for _, name := range plantable {
		if err := removeTree(filepath.Join(mirror, filepath.FromSlash(name))); err != nil {
			return fmt.Errorf("removing a mirror's %s: %w", name, err)
		}
	}
	return nil
}

// resetFile makes path a regular file holding content: one that already
// is, with no other link to it, is left as it is (creating a file costs
// far more than reading one, and every use of the mirror resets it);
// anything else is replaced (replaceFile).
func resetFile(path, content string) error {
	if holds(path, content) {
		return nil
	}
	return replaceFile(path, content)
}

// holds reports whether path is a regular file, not a link and with no
// other name, whose content is content. Any failure to tell is false.
func holds(path, content string) bool {
	f, err := OpenHostile(path)
	if err != nil {
		return false
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil || info.Size() != int64(len(content)) {
		return false
	}
	if st, ok := info.Sys().(*syscall.Stat_t); !ok || st.Nlink != 1 {
		return false
	}
	buf := make([]byte, len(content)+1)
	n, err := io.ReadFull(f, buf)
	return errors.Is(err, io.ErrUnexpectedEOF) && n == len(content) && string(buf[:n]) == content
}

// replaceFile atomically replaces path (whatever it was: a file, a symlink)
// with a regular file holding content.
func replaceFile(path, content string) error {
	tmp := path + ".yci-tmp-" + rand.Text()
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return errors.Join(err, os.Remove(tmp))
	}
	return nil
}

// flock takes an exclusive lock on f, polling so that ctx can end the wait.
func flock(ctx context.Context, f *os.File) error {
	return flockMode(ctx, f, syscall.LOCK_EX)
}

// flockMode is flock with how, LOCK_EX or LOCK_SH.
func flockMode(ctx context.Context, f *os.File, how int) error {
	delay := 5 * time.Millisecond
	for {
		err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			return err
		}
		if err := pause.For(ctx, delay); err != nil {
			return err
		}
		delay = min(2*delay, 200*time.Millisecond)
	}
}

// isDir reports whether path is a real directory (not a symlink to one).
func isDir(path string) (bool, error) {
	info, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("inspecting %s: %w", path, err)
	}
	if !info.IsDir() {
		return false, fmt.Errorf("%w: %s is not a directory", ErrInvalid, path)
	}
	return true, nil
}
