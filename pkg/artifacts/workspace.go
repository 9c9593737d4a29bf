// Package artifacts owns a worker's workspace on disk: the seed's directory
// layout, the git mirror of each repository, the per-build and per-test
// checkouts made from it, the log files and their symlinks, and the cleanup
// of old builds.
//
// The layout, relative to the workspace root, is the seed's:
//
//	<owner>/<repo>/source/                       bare mirror of the repository
//	<owner>/<repo>/pulls/<pr>/<build>/source/    the build's checkout (.yci.py is evaluated here)
//	<owner>/<repo>/pulls/<pr>/<build>/.spare-source/  a second checkout the first test to start takes
//	<owner>/<repo>/pulls/<pr>/<build>/<name>/source/  the test's own working copy
//	<owner>/<repo>/pulls/<pr>/<build>/<name>/out.txt
//	<owner>/<repo>/<pr>-<build>-<name>-out.txt   relative symlink to that out.txt
//	<owner>/<repo>/pulls/<pr>/prepare-<sha>.txt  log of failed attempts to prepare a head commit
//
// Every path is built from validated names only, and directories are created
// without following symlinks, so nothing derived from outside data (owners,
// repositories, test names, numbers) can point outside the root. The package
// is Unix-only: it relies on flock(2) and process groups.
//
// A Workspace is made of parts with one job each, which a caller needing
// only one may take alone: Layout (where everything lives), Logs (the
// files a reader follows a test through), Mirrors (fetching, and the lock
// every writer of a mirror takes), Merges (the commits a build tests),
// Checkouts (working copies, the spare a build's first test takes, and
// the pins keeping their commits alive),
// Caches (per-repository caches and their lock) and Cleaner (removing
// old builds).
package artifacts

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
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

// Workspace is the directory tree a worker builds in: its parts, each with
// one job, embedded so that a caller holding a Workspace reaches every
// part's methods. Its methods are safe for concurrent use, and several
// processes (or boxes sharing a disk) may use the same root: mirror
// updates are serialized by a file lock. The parts share one Layout and
// one Mirrors, so the in-process locks and the memory of fetches are the
// same whichever part a caller goes through.
type Workspace struct {
	Layout
	Logs
	*Mirrors
	Merges
	*Checkouts
	Caches
	Cleaner
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
	layout := Layout{root: resolved}
	mirrors := newMirrors(layout)
	checkouts := &Checkouts{layout: layout, mirrors: mirrors}
	return &Workspace{
		Layout:    layout,
		Logs:      Logs{layout: layout},
		Mirrors:   mirrors,
		Merges:    Merges{mirrors: mirrors},
		Checkouts: checkouts,
		Caches:    Caches{layout: layout},
		Cleaner:   Cleaner{layout: layout, checkouts: checkouts},
	}, nil
}

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
