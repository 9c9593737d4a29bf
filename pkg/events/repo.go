package events

import (
	"errors"
	"fmt"
	"strings"
)

// Bounds on names, from GitHub's rules. A login on github.com is at most
// 39 characters, but Enterprise Managed Users carry an "_<shortcode>"
// suffix on top of it, so owners get the repository's bound.
const (
	MaxOwnerLen = 100
	MaxRepoLen  = 100
)

// Validate reports whether r can name a repository on GitHub. It is the one
// definition every edge uses (the receiver, reconcile, the workspace and
// the queue), so what one of them accepts no other refuses. Errors wrap
// ErrInvalidEvent and say what is wrong; such input never becomes valid by
// retrying.
//
// An owner is 1 to MaxOwnerLen letters, digits, '-' and '_', starting with
// a letter or digit. github.com itself lets personal and organisation
// accounts use letters, digits and single hyphens only, but Enterprise
// Managed Users' logins end in "_<shortcode>" and such users own
// repositories, so '_' is a real owner character; it is also harmless in a
// path, a git URL and a NATS subject. GitHub has no login with '.', so an
// owner never reads as a path step or a hidden directory.
//
// A repository name is 1 to MaxRepoLen letters, digits, '.', '_' and '-',
// not "." or "..", and not starting with '-' (git could read it as an
// option). A leading '.' is allowed: ".github" is a real repository.
func (r Repo) Validate() error {
	return errors.Join(ValidateOwner(r.Owner), ValidateRepoName(r.Name))
}

// ValidateOwner is Repo.Validate's rule for the owner alone.
func ValidateOwner(owner string) error {
	if err := checkName(owner, MaxOwnerLen, "-_", false); err != nil {
		return fmt.Errorf("owner %q: %w", truncated(owner), err)
	}
	return nil
}

// ValidateRepoName is Repo.Validate's rule for the repository name alone.
func ValidateRepoName(name string) error {
	if err := checkName(name, MaxRepoLen, ".-_", true); err != nil {
		return fmt.Errorf("repository name %q: %w", truncated(name), err)
	}
	return nil
}

// ValidatePull reports whether n can number what a build builds: a pull
// request (GitHub numbers issues and pull requests from 1) or a merge
// group (IsGroup; GroupNumber). Where the number is GitHub's own, use
// ValidatePullRequest. Errors wrap ErrInvalidEvent.
func ValidatePull(n int) error {
	if n < 1 {
		return fmt.Errorf("pull request number %d is below 1: %w", n, ErrInvalidEvent)
	}
	if n >= groupEnd {
		return fmt.Errorf("pull request number %d is too large: %w", n, ErrInvalidEvent)
	}
	return nil
}

// ValidateSHA reports whether sha is a full commit id as GitHub writes it:
// 40 (SHA-1) or 64 (SHA-256) lower-case hex digits, so one commit has one
// spelling everywhere. Errors wrap ErrInvalidEvent.
func ValidateSHA(sha string) error {
	if len(sha) != 40 && len(sha) != 64 {
		return fmt.Errorf("commit id %q is not 40 or 64 hex digits: %w", truncated(sha), ErrInvalidEvent)
	}
	for i := 0; i < len(sha); i++ {
		if c := sha[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return fmt.Errorf("commit id %q is not lower-case hex: %w", truncated(sha), ErrInvalidEvent)
		}
	}
	return nil
}

// checkName applies the shared shape of owner and repository names: the
// length bound, letters and digits plus extra, no leading '-', and a
// leading letter or digit unless leadingDot (repositories may start with
// '.' or '_').
func checkName(s string, maxLen int, extra string, leadingDot bool) error {
	switch {
	case s == "":
		return fmt.Errorf("is empty: %w", ErrInvalidEvent)
	case len(s) > maxLen:
		return fmt.Errorf("is longer than %d characters: %w", maxLen, ErrInvalidEvent)
	case s == "." || s == "..":
		return fmt.Errorf("is a path step, not a name: %w", ErrInvalidEvent)
	case s[0] == '-':
		return fmt.Errorf("must not start with '-': %w", ErrInvalidEvent)
	case !leadingDot && !alnum(s[0]):
		return fmt.Errorf("must start with a letter or digit: %w", ErrInvalidEvent)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; alnum(c) || strings.IndexByte(extra, c) >= 0 {
			continue
		}
		return fmt.Errorf("has %q, which GitHub does not allow here (letters, digits and %q only): %w", s[i], extra, ErrInvalidEvent)
	}
	return nil
}

func alnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// truncated bounds outside text quoted in errors.
func truncated(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}
