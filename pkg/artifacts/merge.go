package artifacts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrNoBase means the mirror has no branch of the name a pull request
// merges into, so there is nothing to merge its head with.
var ErrNoBase = errors.New("base branch not in the mirror")

// Merged is what a build tests: a pull request's head merged into a base
// commit, made in the mirror (MergeBuild, RemakeMerge).
type Merged struct {
	// Base is the base branch's commit the head was merged into, and
	// Behind how many of its commits the head lacked.
	Base   string
	Behind int
	// SHA is the commit to test: the merge commit, or the head itself
	// when the base is already in the head (nothing to merge) or merging
	// was not asked for. Empty when Conflicts is not.
	SHA string
	// Conflicts are the paths the merge could not resolve; then there is
	// no commit to test.
	Conflicts []string
	// Changes are the paths the head changes since its merge base with
	// Base (what GitHub's "Files changed" lists), sorted bytewise as git
	// sorts them: added, modified, deleted, and both names of a rename.
	Changes []string
}

// Merges are the commits a build tests, made in the repository's mirror
// under its lock: a pull request's head merged into its base branch's tip
// (MergeBuild), the same merge made again on another box (RemakeMerge),
// and the base tip itself (BranchTip). Get it from Open.
type Merges struct {
	mirrors *Mirrors
}

// MergeBuild finds the tip of branch base in the mirror of owner/repo, as
// the last UpdateMirror fetched it, and merges head into it, unless merge
// is false or there is nothing to merge (then Merged.SHA is head). The
// merge commit is made in the mirror, without a working tree, and is a
// function of head and the base commit alone (author, date and message
// included): any box that makes it again (RemakeMerge) gets the same id.
// A conflict is not an error: Merged.Conflicts names the paths. An error
// wrapping ErrNoBase means the mirror lacks the branch; one wrapping
// ErrNotMirrored that it lacks head.
func (mg Merges) MergeBuild(ctx context.Context, owner, repo, head, base string, merge bool) (Merged, error) {
	if err := validateSHA(head); err != nil {
		return Merged{}, err
	}
	if err := validBranch(base); err != nil {
		return Merged{}, err
	}
	mirror, unlock, err := mg.mirrors.lockExistingMirror(ctx, owner, repo)
	if err != nil {
		return Merged{}, err
	}
	defer unlock()
	// One git process finds the base's tip and reads both commits.
	commits, err := mg.readCommits(ctx, mirror, "refs/heads/"+base+"^{commit}", head+"^{commit}")
	if err != nil {
		return Merged{}, err
	}
	tip, headCommit := commits[0], commits[1]
	if !tip.found {
		return Merged{}, fmt.Errorf("%w: %s of %s/%s", ErrNoBase, base, owner, repo)
	}
	if !headCommit.found {
		return Merged{}, fmt.Errorf("%w: head %s", ErrNotMirrored, head)
	}
	m := Merged{Base: tip.id}
	return m, mg.mergeLocked(ctx, mirror, head, &m, merge, max(tip.time, headCommit.time))
}

// BranchTip is the commit branch points at in the mirror of owner/repo,
// as the last UpdateMirror fetched it: what MergeBuild would merge into
// now. /retest compares it with a build's recorded base to tell whether
// the base moved. An error wraps ErrNoBase when the mirror lacks the
// branch, ErrNotMirrored when there is no mirror.
func (mg Merges) BranchTip(ctx context.Context, owner, repo, branch string) (string, error) {
	if err := validBranch(branch); err != nil {
		return "", err
	}
	mirror, unlock, err := mg.mirrors.lockExistingMirror(ctx, owner, repo)
	if err != nil {
		return "", err
	}
	defer unlock()
	return mg.branchTipLocked(ctx, mirror, owner, repo, branch)
}

// validBranch refuses a branch name git could read as something else.
func validBranch(branch string) error {
	if branch == "" || strings.HasPrefix(branch, "-") || strings.ContainsAny(branch, "\x00\n\r ^:~?*[\\") {
		return fmt.Errorf("%w: base branch %q", ErrInvalid, branch)
	}
	return nil
}

// branchTipLocked is BranchTip holding the mirror's lock.
func (mg Merges) branchTipLocked(ctx context.Context, mirror, owner, repo, branch string) (string, error) {
	out, err := mg.mirrors.git(ctx, GitAuth{}, "--git-dir="+mirror, "rev-parse", "--verify", "--quiet", "--end-of-options", "refs/heads/"+branch+"^{commit}")
	if err != nil {
		return "", fmt.Errorf("%w: %s of %s/%s", ErrNoBase, branch, owner, repo)
	}
	return strings.TrimSpace(string(out)), nil
}

// RemakeMerge makes again, in the mirror of owner/repo, the commit
// MergeBuild made of head and the base commit base (on another box, or
// after garbage collection), and checks that it is want. The changed
// paths are computed too: Merged is what MergeBuild returned.
func (mg Merges) RemakeMerge(ctx context.Context, owner, repo, head, base, want string) (Merged, error) {
	for _, sha := range []string{head, base, want} {
		if err := validateSHA(sha); err != nil {
			return Merged{}, err
		}
	}
	mirror, unlock, err := mg.mirrors.lockExistingMirror(ctx, owner, repo)
	if err != nil {
		return Merged{}, err
	}
	defer unlock()
	commits, err := mg.readCommits(ctx, mirror, head+"^{commit}", base+"^{commit}")
	if err != nil {
		return Merged{}, err
	}
	if !commits[0].found {
		return Merged{}, fmt.Errorf("%w: head %s", ErrNotMirrored, head)
	}
	if !commits[1].found {
		return Merged{}, fmt.Errorf("%w: base %s", ErrNotMirrored, base)
	}
	m := Merged{Base: base}
	if err := mg.mergeLocked(ctx, mirror, head, &m, want != head, max(commits[0].time, commits[1].time)); err != nil {
		return Merged{}, err
	}
	if m.SHA != want {
		return Merged{}, fmt.Errorf("merging %.7s into %.7s again made %q, not %s", head, base, m.SHA, want)
	}
	return m, nil
}

// mergeLocked fills m (whose Base is set) for head, both commits known
// to be in the mirror: how far behind, what changed, and the commit to
// test, dated date (the later committer date of the two). Only call it
// holding the lock.
func (mg Merges) mergeLocked(ctx context.Context, mirror, head string, m *Merged, merge bool, date int64) error {
	git := func(args ...string) (string, error) {
		out, err := mg.mirrors.git(ctx, GitAuth{}, append([]string{"--git-dir=" + mirror}, args...)...)
		return strings.TrimSpace(string(out)), err
	}
	mergeBase, err := git("merge-base", m.Base, head)
	if err != nil {
		// Exit status 1 with nothing printed: no common history.
		return fmt.Errorf("%w: %.7s and the base %.7s have no common history", ErrInvalid, head, m.Base)
	}
	// The base's tip is in the head's history: the head lacks none of
	// the base's commits, and there is nothing to count (or merge).
	if mergeBase != m.Base {
		behind, err := git("rev-list", "--count", head+".."+m.Base)
		if err != nil {
			return fmt.Errorf("counting the base's new commits: %w", err)
		}
		if m.Behind, err = strconv.Atoi(behind); err != nil {
			return fmt.Errorf("counting the base's new commits: %w", err)
		}
	}
	if m.Changes, err = mg.changedLocked(ctx, mirror, mergeBase, head); err != nil {
		return err
	}
	if !merge || mergeBase == m.Base {
		m.SHA = head
		return nil
	}
	return mg.commitMerge(ctx, mirror, head, m, date)
}

// changedLocked lists the paths that differ between commits from and to,
// as NUL-separated names straight from git: no quoting, any bytes.
// Renames are not detected, so a rename lists both names.
func (mg Merges) changedLocked(ctx context.Context, mirror, from, to string) ([]string, error) {
	out, err := mg.mirrors.git(ctx, GitAuth{}, "--git-dir="+mirror, "diff-tree", "-r", "-z", "--name-only",
		"--no-renames", "--no-commit-id", "--no-ext-diff", "--no-textconv", from, to)
	if err != nil {
		return nil, fmt.Errorf("listing the changed files: %w", err)
	}
	return splitNUL(out), nil
}

// splitNUL splits git's -z output into its names.
func splitNUL(out []byte) []string {
	out = bytes.TrimSuffix(out, []byte{0})
	if len(out) == 0 {
		return nil
	}
	return strings.Split(string(out), "\x00")
}

// mergeIdentity is who the merge commits are by; their date is the later
// committer date of their parents, so that the commit is a function of
// its parents alone.
var mergeIdentity = []string{
	"GIT_AUTHOR_NAME=YourCI", "GIT_AUTHOR_EMAIL=yci@localhost",
	"GIT_COMMITTER_NAME=YourCI", "GIT_COMMITTER_EMAIL=yci@localhost",
}

// commitMerge merges head into m.Base with git merge-tree (no working
// tree, no index) and commits the result with the base as first parent,
// as GitHub's refs/pull/<n>/merge has it, dated date (seconds, UTC). A
// conflict fills m.Conflicts.
func (mg Merges) commitMerge(ctx context.Context, mirror, head string, m *Merged, date int64) error {
	out, err := mg.mirrors.gitWith(ctx, nil, nil, "--git-dir="+mirror, "merge-tree", "--write-tree", "--name-only",
		"--no-messages", "-z", m.Base, head)
	names := splitNUL(out)
	var exit interface{ ExitCode() int }
	if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 1) {
		return fmt.Errorf("merging %.7s into %.7s: %w", head, m.Base, err)
	}
	if err != nil {
		// Exit status 1: conflicts. Their names follow the tree; gitWith
		// keeps git's stdout when it exits 1.
		if len(names) > 1 {
			m.Conflicts = names[1:]
		} else {
			m.Conflicts = []string{"(git named no file)"}
		}
		return nil
	}
	if len(names) == 0 {
		return fmt.Errorf("merging %.7s into %.7s: git printed no tree", head, m.Base)
	}
	tree := names[0]
	stamp := strconv.FormatInt(date, 10) + " +0000"
	env := append([]string{"GIT_AUTHOR_DATE=" + stamp, "GIT_COMMITTER_DATE=" + stamp}, mergeIdentity...)
	msg := fmt.Sprintf("Merge %s into %s\n\nMade by YourCI to test the pull request's head merged into its base.\n", head, m.Base)
	sha, err := mg.mirrors.gitWith(ctx, env, strings.NewReader(msg), "--git-dir="+mirror, "commit-tree", "-p", m.Base, "-p", head, tree)
	if err != nil {
		return fmt.Errorf("committing the merge of %.7s into %.7s: %w", head, m.Base, err)
	}
	m.SHA = strings.TrimSpace(string(sha))
	return validateSHA(m.SHA)
}
