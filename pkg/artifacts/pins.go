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
	"time"
)

// pinPrefix holds one ref per build, keeping the build's commit (and
// everything its checkouts borrow) alive in the mirror after a force-push
// and garbage collection.
const pinPrefix = "refs/yci/builds/"

func pinRef(b Build) string {
	return pinPrefix + strconv.Itoa(b.Pull) + "/" + strconv.Itoa(b.Number)
}

// pin records sha as build b's commit in the mirror. Pinning again with the
// same commit is a no-op; a different commit for the same build is refused;
// a commit the mirror lacks is an error wrapping ErrNotMirrored. Only call
// it holding the mirror's lock.
func (c *Checkouts) pin(ctx context.Context, mirror string, b Build, sha string) error {
	ref := pinRef(b)
	// The empty old value makes git refuse if the ref exists already.
	_, createErr := c.mirrors.git(ctx, GitAuth{}, "--git-dir="+mirror, "update-ref", "--no-deref", ref, sha, "")
	if createErr == nil {
		return nil
	}
	out, err := c.mirrors.git(ctx, GitAuth{}, "--git-dir="+mirror, "for-each-ref", "--format=%(objectname)", "--", ref)
	if err != nil {
		return fmt.Errorf("pinning %s of %s: %w", sha, b, errors.Join(createErr, err))
	}
	switch current := strings.TrimSpace(string(out)); current {
	case sha:
		return nil
	case "":
		if _, err := c.mirrors.git(ctx, GitAuth{}, "--git-dir="+mirror, "cat-file", "-e", sha+"^{commit}"); err != nil {
			return fmt.Errorf("%w: pinning %s of %s: %w", ErrNotMirrored, sha, b, createErr)
		}
		return fmt.Errorf("pinning %s of %s: %w", sha, b, createErr)
	default:
		return fmt.Errorf("%w: build %s is pinned to %s, not %s", ErrInvalid, b, current, sha)
	}
}

// pinAndListRefs pins sha as build b's commit (see pin) and returns the
// packed-refs file of a checkout (see Checkout), both under the mirror's
// lock, so that git reads the mirror only after resetMirror. One git
// process lists the branches, the tags and the pin together: a test's
// checkout finds its build's pin, made by the build's own checkout, and
// pins nothing. What the first checkout of a build on this box listed is
// kept a while (buildRefs): the build's other checkouts, its tests, take
// their refs from there, with neither the lock nor git; those that come
// while it lists them wait for it. An error wrapping
// ErrNotMirrored means the mirror lacks sha.
//
// checkout, the git process filling the work tree, runs alongside the
// listing and pinning rather than after them: they are on the way from a
// webhook to a test's start. It starts once the lock is held and the
// mirror reset (it reads the mirror's objects); pinAndListRefs returns
// only once it has ended, with the pin's error first when both fail. The
// order is safe: the only thing that removes objects from the mirror is
// garbage collection, which this package runs only under the same lock
// (MaintainMirror's, and a fetch's automatic maintenance in a process
// that predates it), so none can run between the checkout's start and
// the pin; once the pin is written (update-ref refuses a commit the mirror
// lacks) and the lock released, the commit is reachable for as long as
// the build's directory lives, and the checkout finishing after the
// unlock reads objects no collection may remove.
func (c *Checkouts) pinAndListRefs(ctx context.Context, mirror string, b Build, sha, base string, checkout func() error) ([]byte, error) {
	ref := pinRef(b)
	out, ok, listed, err := c.refs.list(ctx, mirror, ref, sha)
	if err != nil {
		return nil, err
	}
	if ok {
		return cloneRefs(out, base), checkout()
	}
	defer listed()
	unlock, err := c.mirrors.lockMirror(ctx, mirror)
	if err != nil {
		return nil, err
	}
	checkedOut := make(chan error, 1)
	go func() { checkedOut <- checkout() }()
	at := time.Now()
	out, err = c.listAndPinLocked(ctx, mirror, b, sha)
	unlock()
	if checkoutErr := <-checkedOut; err == nil && checkoutErr != nil {
		return nil, checkoutErr
	}
	if err != nil {
		return nil, err
	}
	c.refs.put(mirror, ref, sha, out, at)
	return cloneRefs(out, base), nil
}

// listAndPinLocked lists the mirror's branches, tags and b's pin, and
// pins sha as b's commit unless it is already (see pin); it returns
// for-each-ref's "<id> <ref>" lines. Only call it holding the lock.
func (c *Checkouts) listAndPinLocked(ctx context.Context, mirror string, b Build, sha string) ([]byte, error) {
	ref := pinRef(b)
	out, err := c.mirrors.git(ctx, GitAuth{}, "--git-dir="+mirror, "for-each-ref",
		"--format=%(objectname) %(refname)", "refs/heads/", "refs/tags/", ref)
	if err != nil {
		return nil, fmt.Errorf("listing the mirror's branches and tags: %w", err)
	}
	switch pinned := pinnedIn(out, ref); pinned {
	case sha:
	case "":
		if err := c.pin(ctx, mirror, b, sha); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%w: build %s is pinned to %s, not %s", ErrInvalid, b, pinned, sha)
	}
	return out, nil
}

// pinnedIn is the commit for-each-ref's "<id> <ref>" lines give ref, or
// "" when they do not list it.
func pinnedIn(refs []byte, ref string) string {
	for line := range strings.Lines(string(refs)) {
		if id, name, ok := strings.Cut(strings.TrimSuffix(line, "\n"), " "); ok && name == ref {
			return id
		}
	}
	return ""
}

// unpinRemoved deletes the pins of builds whose directory no longer exists.
func (c *Checkouts) unpinRemoved(ctx context.Context, owner, repo string, running func(Build) bool, rep *CleanupReport) error {
	mirror := filepath.Join(c.layout.root, owner, repo, "source")
	if ok, err := isDir(mirror); err != nil || !ok {
		return err
	}
	unlock, err := c.mirrors.lockMirror(ctx, mirror)
	if err != nil {
		return err
	}
	defer unlock()
	out, err := c.mirrors.git(ctx, GitAuth{}, "--git-dir="+mirror, "for-each-ref", "--format=%(refname)", "--", pinPrefix)
	if err != nil {
		return fmt.Errorf("listing pins: %w", err)
	}
	var errs []error
	for _, ref := range strings.Fields(string(out)) {
		prName, buildName, _ := strings.Cut(strings.TrimPrefix(ref, pinPrefix), "/")
		pr, okPR := parseNumber(prName)
		build, okBuild := parseNumber(buildName)
		if !okPR || !okBuild {
			continue
		}
		b := Build{Owner: owner, Repo: repo, Pull: pr, Number: build}
		dir, err := c.layout.BuildDir(b)
		if err != nil {
			continue
		}
		if _, err := os.Lstat(dir); !errors.Is(err, fs.ErrNotExist) || running(b) {
			continue
		}
		if _, err := c.mirrors.git(ctx, GitAuth{}, "--git-dir="+mirror, "update-ref", "--no-deref", "-d", ref); err != nil {
			errs = append(errs, fmt.Errorf("unpinning %s: %w", b, err))
			continue
		}
		c.refs.forget(mirror, ref)
		rep.Pins++
	}
	return errors.Join(errs...)
}
