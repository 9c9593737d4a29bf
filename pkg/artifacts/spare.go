package artifacts

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// spareName is the build directory's entry holding its spare copy: a test
// name cannot start with a dot, so no test's directory can be called so.
const spareName = ".spare-source"

// SpareSourceDir is the build's spare working copy: a checkout of the
// build's commit made while its .yci.py is evaluated, which the first test
// of the build to start takes (TakeSpare) instead of checking out its own.
func (l Layout) SpareSourceDir(b Build) (string, error) {
	dir, err := l.BuildDir(b)
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, spareName), nil
}

// MakeSpare checks out sha of build b as its spare copy (Checkout's sha and
// base), for a test to take later. Nothing but TakeSpare ever reads or
// writes the spare: unlike the build's source, which the evaluation of
// .yci.py reads (and, unsandboxed, could write), it stays the clean
// checkout a test must start from. A spare already made is kept.
func (c *Checkouts) MakeSpare(ctx context.Context, b Build, sha, base string) error {
	dir, err := c.layout.SpareSourceDir(b)
	if err != nil {
		return err
	}
	return c.Checkout(ctx, b, sha, base, dir)
}

// TakeSpare moves build b's spare copy, when there is one, to dest, which
// must lie in the build's directory and not exist, and tells whether it
// did. The move is a rename: it costs no copy, and of tests taking the
// spare at once exactly one gets it, the others none. The caller still
// checks the copy's commit (Checkout reuses a complete copy at its sha and
// refuses one at another).
func (c *Checkouts) TakeSpare(b Build, dest string) (bool, error) {
	spare, err := c.layout.SpareSourceDir(b)
	if err != nil {
		return false, err
	}
	if dest, err = c.layout.inBuild(b, dest); err != nil {
		return false, fmt.Errorf("taking the spare checkout: %w", err)
	}
	if _, err := os.Lstat(dest); !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("taking the spare checkout: %s exists or cannot be read: %v", dest, err)
	}
	if err := c.layout.ensureDir(filepath.Dir(dest)); err != nil {
		return false, err
	}
	if err := os.Rename(spare, dest); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil // no spare, or another test took it
		}
		return false, fmt.Errorf("taking the spare checkout: %w", err)
	}
	return true, nil
}

// DropSpare removes build b's spare copy, if there is one: the build
// queued no test to take it (its .yci.py was refused, or chose none).
func (c *Checkouts) DropSpare(b Build) error {
	dir, err := c.layout.SpareSourceDir(b)
	if err != nil {
		return err
	}
	if err := removeTree(dir); err != nil {
		return fmt.Errorf("removing the spare checkout: %w", err)
	}
	return nil
}
