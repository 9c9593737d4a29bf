// Package artifacts owns a worker's workspace on disk: the seed's directory
// layout, the git mirror of each repository, the per-build and per-test
// checkouts made from it, the log files and their symlinks, and the cleanup
// of old builds.
//
// The layout, relative to the workspace root, is the seed's:
//
//	<owner>/<repo>/source/                       bare mirror of the repository
//	<owner>/<repo>/pulls/<pr>/<build>/source/    the build's checkout (.yci.py is evaluated here)
//	<owner>/<repo>/pulls/<pr>/<build>/<name>/source/  the test's own working copy
//	<owner>/<repo>/pulls/<pr>/<build>/<name>/out.txt
//	<owner>/<repo>/<pr>-<build>-<name>-out.txt   relative symlink to that out.txt
//	<owner>/<repo>/pulls/<pr>/prepare-<sha>.txt  log of failed attempts to prepare a head commit
//
// Every path is built from validated names only, and directories are created
// without following symlinks, so nothing derived from outside data (owners,
// repositories, test names, numbers) can point outside the root. The package
// is Unix-only: it relies on flock(2) and process groups.
package artifacts

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/yourci/yourci/pkg/events"
)

// ErrInvalid marks input refused by validation: a name, number, commit id,
// URL or path that could not be trusted. Such input will never become valid
// by retrying, so callers may drop the work it came with.
var ErrInvalid = errors.New("invalid workspace input")

// ErrNotMirrored marks a checkout of a commit this box's mirror does not
// hold (or of a repository it has no mirror of yet): UpdateMirror, then
// checking out again, can succeed.
var ErrNotMirrored = errors.New("commit not in this box's mirror")

// DefaultGitTimeout bounds a single git process when the caller's context
// carries no earlier deadline. It is generous because a first mirror clone
// of a large repository is slow.
const DefaultGitTimeout = 30 * time.Minute

// Workspace is the directory tree a worker builds in. Its methods are safe
// for concurrent use, and several processes (or boxes sharing a disk) may
// use the same root: mirror updates are serialized by a file lock.
type Workspace struct {
	root string

	// GitTimeout bounds each git process; zero means DefaultGitTimeout.
	// Set it before the workspace is shared between goroutines.
	GitTimeout time.Duration

	mu    sync.Mutex
	locks map[string]chan struct{} // per-mirror in-process locks
	// fetched is when the latest successful fetch (or clone) of each
	// mirror by this Workspace began; see UpdateMirrorSince.
	fetched map[string]time.Time
	// refs keeps what each build's first checkout on this box read of
	// the mirror's refs; see pinAndListRefs.
	refs buildRefs
}

// Open returns the workspace rooted at root, creating the directory if
// needed. The root is made absolute and its symlinks resolved once, so every
// path the workspace hands out is canonical and comparable.
func Open(root string) (*Workspace, error) {
	if root == "" {
		return nil, fmt.Errorf("opening workspace: %w: empty root", ErrInvalid)
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("creating workspace root: %w", err)
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("resolving workspace root: %w", err)
	}
	resolved, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, fmt.Errorf("resolving workspace root: %w", err)
	}
	return &Workspace{root: resolved, locks: make(map[string]chan struct{}), fetched: make(map[string]time.Time)}, nil
}

// Root is the absolute, symlink-free path of the workspace.
func (w *Workspace) Root() string { return w.root }

// Build identifies one build of a pull request: Number is the build number
// allocated for the pull, starting at 1.
type Build struct {
	Owner, Repo string
	Pull        int
	Number      int
}

// String renders the build as "owner/repo#pull/number" for logs.
func (b Build) String() string {
	return fmt.Sprintf("%s/%s#%d/%d", b.Owner, b.Repo, b.Pull, b.Number)
}

// Validate reports whether every field of b is acceptable in a path.
func (b Build) Validate() error {
	if err := ValidateOwner(b.Owner); err != nil {
		return err
	}
	if err := ValidateRepo(b.Repo); err != nil {
		return err
	}
	if b.Pull <= 0 {
		return fmt.Errorf("%w: pull number %d is not positive", ErrInvalid, b.Pull)
	}
	if b.Number <= 0 {
		return fmt.Errorf("%w: build number %d is not positive", ErrInvalid, b.Number)
	}
	return nil
}

// ValidateOwner accepts what events.Repo.Validate accepts as an owner (the
// one rule every edge shares, my_org included). Errors wrap ErrInvalid.
func ValidateOwner(owner string) error {
	if err := events.ValidateOwner(owner); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}

// ValidateRepo accepts what events.Repo.Validate accepts as a repository
// name (".github" included; never "." or ".."). Errors wrap ErrInvalid.
func ValidateRepo(repo string) error {
	if err := events.ValidateRepoName(repo); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}

// ValidateTestName accepts what events.ValidateTestName accepts as a test
// name, the name of its directory, log symlink and status context (the one
// rule every edge shares). Errors wrap ErrInvalid.
func ValidateTestName(name string) error {
	if err := events.ValidateTestName(name); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}

func (w *Workspace) repoDir(owner, repo string) (string, error) {
	if err := ValidateOwner(owner); err != nil {
		return "", err
	}
	if err := ValidateRepo(repo); err != nil {
		return "", err
	}
	return filepath.Join(w.root, owner, repo), nil
}

// MirrorDir is the bare mirror of owner/repo: <owner>/<repo>/source.
func (w *Workspace) MirrorDir(owner, repo string) (string, error) {
	dir, err := w.repoDir(owner, repo)
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "source"), nil
}

// BuildDir is the directory holding everything of one build:
// <owner>/<repo>/pulls/<pr>/<build>.
func (w *Workspace) BuildDir(b Build) (string, error) {
	if err := b.Validate(); err != nil {
		return "", err
	}
	return filepath.Join(w.root, b.Owner, b.Repo, "pulls", strconv.Itoa(b.Pull), strconv.Itoa(b.Number)), nil
}

// SourceDir is the build's checkout, where .yci.py is evaluated.
func (w *Workspace) SourceDir(b Build) (string, error) {
	dir, err := w.BuildDir(b)
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "source"), nil
}

// TestDir is the directory of one test of a build, holding its log and its
// own working copy.
func (w *Workspace) TestDir(b Build, name string) (string, error) {
	dir, err := w.BuildDir(b)
	if err != nil {
		return "", err
	}
	if err := ValidateTestName(name); err != nil {
		return "", err
	}
	return filepath.Join(dir, name), nil
}

// TestSourceDir is the test's own working copy, so that tests of one build
// running at once cannot disturb each other's files.
func (w *Workspace) TestSourceDir(b Build, name string) (string, error) {
	dir, err := w.TestDir(b, name)
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "source"), nil
}

// LogPath is the test's log file, out.txt in its test directory.
func (w *Workspace) LogPath(b Build, name string) (string, error) {
	dir, err := w.TestDir(b, name)
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "out.txt"), nil
}

// LogLink is where LinkLog puts the test's log symlink:
// <owner>/<repo>/<pr>-<build>-<name>-out.txt.
func (w *Workspace) LogLink(b Build, name string) (string, error) {
	if _, err := w.TestDir(b, name); err != nil {
		return "", err
	}
	return filepath.Join(w.root, b.Owner, b.Repo, linkName(b, name)), nil
}

func linkName(b Build, name string) string {
	return fmt.Sprintf("%d-%d-%s-out.txt", b.Pull, b.Number, name)
}

// LogURL is the address under which the test's log is served:
// httpRoot + "/<owner>/<repo>/pulls/<pr>/<build>/<name>/out.txt", with each
// segment path-escaped and no doubled slash at the join.
func (w *Workspace) LogURL(httpRoot string, b Build, name string) (string, error) {
	if _, err := w.TestDir(b, name); err != nil {
		return "", err
	}
	segments := []string{b.Owner, b.Repo, "pulls", strconv.Itoa(b.Pull), strconv.Itoa(b.Number), name, "out.txt"}
	for i, s := range segments {
		segments[i] = url.PathEscape(s)
	}
	return strings.TrimRight(httpRoot, "/") + "/" + strings.Join(segments, "/"), nil
}

// CreateTestDir creates the test's directory (and the build directory above
// it) and returns its path. It refuses to pass through symlinks, so a test
// that replaced a directory of the layout with a link cannot redirect writes.
func (w *Workspace) CreateTestDir(b Build, name string) (string, error) {
	dir, err := w.TestDir(b, name)
	if err != nil {
		return "", err
	}
	if err := w.ensureDir(dir); err != nil {
		return "", err
	}
	return dir, nil
}

// LinkLog points the test's symlink at its out.txt, replacing any previous
// link atomically, so a reader never sees the link missing. The target is
// relative, so the workspace may be moved or served from another mount. The
// log itself need not exist yet.
func (w *Workspace) LinkLog(b Build, name string) error {
	link, err := w.LogLink(b, name)
	if err != nil {
		return err
	}
	if err := w.ensureDir(filepath.Dir(link)); err != nil {
		return err
	}
	target := filepath.Join("pulls", strconv.Itoa(b.Pull), strconv.Itoa(b.Number), name, "out.txt")
	tmp := link + ".tmp-" + rand.Text()
	if err := os.Symlink(target, tmp); err != nil {
		return fmt.Errorf("linking log of %s %s: %w", b, name, err)
	}
	if err := os.Rename(tmp, link); err != nil {
		if rmErr := os.Remove(tmp); rmErr != nil {
			err = errors.Join(err, rmErr)
		}
		return fmt.Errorf("linking log of %s %s: %w", b, name, err)
	}
	return nil
}

// inside reports whether path is dir itself or below it, lexically.
func inside(dir, path string) bool {
	rel, err := filepath.Rel(dir, path)
	if err != nil {
		return false
	}
	return rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// ensureDir creates dir and its parents below the root, one component at a
// time, refusing any existing component that is a symlink or not a
// directory.
func (w *Workspace) ensureDir(dir string) error {
	dir = filepath.Clean(dir)
	if !inside(w.root, dir) {
		return fmt.Errorf("%w: %s is outside the workspace", ErrInvalid, dir)
	}
	rel, err := filepath.Rel(w.root, dir)
	if err != nil {
		return fmt.Errorf("locating %s in the workspace: %w", dir, err)
	}
	if rel == "." {
		return nil
	}
	cur := w.root
	for _, part := range strings.Split(rel, string(filepath.Separator)) {
		cur = filepath.Join(cur, part)
		if err := mkdirNoFollow(cur); err != nil {
			return err
		}
	}
	return nil
}

func mkdirNoFollow(path string) error {
	err := os.Mkdir(path, 0o755)
	if err == nil {
		return nil
	}
	if !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("creating %s: %w", path, err)
	}
	// Mkdir does not follow a symlink at path; Lstat tells what is there.
	info, err := os.Lstat(path)
	if err != nil {
		return fmt.Errorf("inspecting %s: %w", path, err)
	}
	if !info.IsDir() {
		return fmt.Errorf("%w: %s is not a directory (%s)", ErrInvalid, path, info.Mode().Type())
	}
	return nil
}
