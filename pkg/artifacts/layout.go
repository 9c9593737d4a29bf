package artifacts

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Layout is where everything of the workspace lives (see the package
// comment): the path of each repository's mirror, each build's checkout,
// each test's and each run's directory and working copy, and the creation
// of those directories without following a symlink. It holds no state
// but the root, so a copy is as good as the original; get one from Open.
type Layout struct {
	root string
}

// Root is the absolute, symlink-free path of the workspace.
func (l Layout) Root() string { return l.root }

func (l Layout) repoDir(owner, repo string) (string, error) {
	if err := ValidateOwner(owner); err != nil {
		return "", err
	}
	if err := ValidateRepo(repo); err != nil {
		return "", err
	}
	return filepath.Join(l.root, owner, repo), nil
}

// MirrorDir is the bare mirror of owner/repo: <owner>/<repo>/source.
func (l Layout) MirrorDir(owner, repo string) (string, error) {
	dir, err := l.repoDir(owner, repo)
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "source"), nil
}

// BuildDir is the directory holding everything of one build:
// <owner>/<repo>/pulls/<pr>/<build>.
func (l Layout) BuildDir(b Build) (string, error) {
	if err := b.Validate(); err != nil {
		return "", err
	}
	return filepath.Join(l.root, b.Owner, b.Repo, "pulls", strconv.Itoa(b.Pull), strconv.Itoa(b.Number)), nil
}

// SourceDir is the build's checkout, where .yci.py is evaluated.
func (l Layout) SourceDir(b Build) (string, error) {
	dir, err := l.BuildDir(b)
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "source"), nil
}

// TestDir is the directory of one test of a build, holding its log and its
// own working copy.
func (l Layout) TestDir(b Build, name string) (string, error) {
	dir, err := l.BuildDir(b)
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
func (l Layout) TestSourceDir(b Build, name string) (string, error) {
	dir, err := l.TestDir(b, name)
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "source"), nil
}

// RepoOf returns the repository whose pull requests' tree holds path (a
// build's checkout, a test's working copy): <root>/<owner>/<repo>/pulls/…;
// ok is false for any other path, the mirror included.
func (l Layout) RepoOf(path string) (owner, repo string, ok bool) {
	rel, err := filepath.Rel(l.root, filepath.Clean(path))
	if err != nil {
		return "", "", false
	}
	parts := strings.Split(rel, string(filepath.Separator))
	if len(parts) < 4 || parts[2] != "pulls" || ValidateOwner(parts[0]) != nil || ValidateRepo(parts[1]) != nil {
		return "", "", false
	}
	return parts[0], parts[1], true
}

// CreateTestDir creates the test's directory (and the build directory above
// it) and returns its path. It refuses to pass through symlinks, so a test
// that replaced a directory of the layout with a link cannot redirect writes.
func (l Layout) CreateTestDir(b Build, name string) (string, error) {
	dir, err := l.TestDir(b, name)
	if err != nil {
		return "", err
	}
	if err := l.ensureDir(dir); err != nil {
		return "", err
	}
	return dir, nil
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
func (l Layout) ensureDir(dir string) error {
	dir = filepath.Clean(dir)
	if !inside(l.root, dir) {
		return fmt.Errorf("%w: %s is outside the workspace", ErrInvalid, dir)
	}
	rel, err := filepath.Rel(l.root, dir)
	if err != nil {
		return fmt.Errorf("locating %s in the workspace: %w", dir, err)
	}
	if rel == "." {
		return nil
	}
	cur := l.root
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
