package artifacts

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ErrNoBaseGiven means a local run was given no base to compare with, and
// its checkout has neither an upstream branch nor origin/HEAD to default to.
var ErrNoBaseGiven = errors.New("no base to compare with: give -base REF (the branch the change will merge into)")

// LocalChange is what a local run's change touches, as a pull request of
// it would show.
type LocalChange struct {
	// Base is the ref compared with (as given, or the default found) and
	// From the commit compared from: the merge base of Base and HEAD.
	Base, From string
	// Files are the paths changed from From to the working tree:
	// committed, staged, unstaged and untracked (not ignored) changes;
	// both names of a rename; sorted bytewise, as git sorts them.
	Files []string
}

// ReadLocalChange computes the change of the checkout whose top level is
// dir against base, a ref or commit; "" means defaultLocalBase, else
// ErrNoBaseGiven. Git runs
// as the worker runs it (gitEnv) and writes nothing to the repository
// (GIT_OPTIONAL_LOCKS=0: not even the index's refreshed stat data).
func ReadLocalChange(ctx context.Context, dir, base string) (LocalChange, error) {
	git := func(args ...string) ([]byte, error) {
		return runGitWith(ctx, DefaultGitTimeout, dir, GitAuth{}, []string{"GIT_OPTIONAL_LOCKS=0"}, nil, args...)
	}
	if base == "" {
		if base = defaultLocalBase(git); base == "" {
			return LocalChange{}, ErrNoBaseGiven
		}
	}
	if strings.HasPrefix(base, "-") {
		return LocalChange{}, fmt.Errorf("%w: base %q", ErrInvalid, base)
	}
	out, err := git("merge-base", "--end-of-options", base, "HEAD")
	if err != nil {
		// git checkout finds a branch that exists only as origin/<name>;
		// merge-base does not, so say which name would do.
		if _, e := git("rev-parse", "--verify", "--quiet", "--end-of-options", "refs/remotes/origin/"+base); e == nil {
			return LocalChange{}, fmt.Errorf("finding where HEAD left %s (did you mean origin/%s?): %w", base, base, err)
		}
		return LocalChange{}, fmt.Errorf("finding where HEAD left %s: %w", base, err)
	}
	c := LocalChange{Base: base, From: strings.TrimSpace(string(out))}
	tracked, err := git("diff", "--name-only", "-z", "--no-renames", "--no-ext-diff", "--no-textconv", c.From, "--")
	if err != nil {
		return LocalChange{}, fmt.Errorf("listing the changed files: %w", err)
	}
	untracked, err := git("ls-files", "-z", "--others", "--exclude-standard")
	if err != nil {
		return LocalChange{}, fmt.Errorf("listing the untracked files: %w", err)
	}
	c.Files = append(splitNUL(tracked), splitNUL(untracked)...)
	slices.Sort(c.Files)
	c.Files = slices.Compact(c.Files)
	return c, nil
}

// defaultLocalBase is the branch a pull request of the checked-out branch
// would merge into: its upstream (@{upstream}) when that is another
// branch, as after `git checkout -b fix --track origin/release`; else
// origin/HEAD; else "". An upstream of the branch's own name is where the
// branch is pushed (`git push -u origin fix`), not what it merges into:
// comparing with it would leave out everything already pushed.
func defaultLocalBase(git func(args ...string) ([]byte, error)) string {
	resolve := func(rev string) string {
		out, err := git("rev-parse", "--verify", "--quiet", "--symbolic-full-name", rev)
		if err != nil {
			return ""
		}
		return strings.TrimPrefix(strings.TrimSpace(string(out)), "refs/remotes/")
	}
	if up := resolve("@{upstream}"); up != "" && !upstreamIsOwnName(git) {
		return up
	}
	return resolve("origin/HEAD")
}

// upstreamIsOwnName says the checked-out branch's upstream is a branch of
// the same name (branch.<name>.merge is refs/heads/<name>).
func upstreamIsOwnName(git func(args ...string) ([]byte, error)) bool {
	head, err := git("symbolic-ref", "--quiet", "HEAD")
	if err != nil {
		return false
	}
	ref := strings.TrimSpace(string(head))
	merge, err := git("config", "--get", "branch."+strings.TrimPrefix(ref, "refs/heads/")+".merge")
	return err == nil && strings.TrimSpace(string(merge)) == ref
}
