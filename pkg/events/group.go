package events

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// A merge group (GitHub's merge queue asking for checks on its temporary
// gh-readonly-queue/... branch) is built like a pull request's head, and
// it travels through the same messages, records and paths under a number
// of its own: GroupNumber(head sha), drawn from a range no pull request
// reaches. A group has one head commit for its whole life (requeuing makes
// a new group with a new head), so the number is derived from that commit:
// every box gives the same group the same number without asking anyone,
// de-duplication by (repo, number, sha) is de-duplication by head commit,
// and records, subjects and keys of pull requests keep their form. The
// number shows as "merge group <9 hex digits>" (DescribePull), the start
// of the group's head sha.
const (
	// GroupBase is the first group number: 2^40, far above any pull
	// request number GitHub hands out.
	GroupBase = 1 << 40
	// groupDigits is how many hex digits of the head sha a group number
	// holds; 36 bits keep every number under 2^41, exact in JSON
	// readers that hold numbers as doubles.
	groupDigits = 9
	groupEnd    = GroupBase + 1<<(4*groupDigits)
)

// GroupDestroyedAt is the time a destroyed group's head record carries: a
// group never comes back once destroyed, so its record sorts after any
// report of it (HeadRecord.Merge), however late a redelivered
// checks_requested arrives.
var GroupDestroyedAt = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)

// GroupNumber is the number a merge group whose head commit is sha is
// built under. sha must be a valid commit id (ValidateSHA).
func GroupNumber(sha string) (int, error) {
	if err := ValidateSHA(sha); err != nil {
		return 0, fmt.Errorf("numbering a merge group: %w", err)
	}
	n, err := strconv.ParseUint(sha[:groupDigits], 16, 64)
	if err != nil {
		return 0, fmt.Errorf("numbering a merge group from %q: %w", sha, ErrInvalidEvent)
	}
	return GroupBase + int(n), nil
}

// IsGroup reports whether n numbers a merge group rather than a pull
// request.
func IsGroup(n int) bool { return n >= GroupBase && n < groupEnd }

// DescribePull names what number n builds, for logs, pages and the
// queue: "#12" for a pull request, "merge group 1a2b3c4d5" (the start of
// its head sha) for a merge group.
func DescribePull(n int) string {
	if IsGroup(n) {
		return fmt.Sprintf("merge group %0*x", groupDigits, n-GroupBase)
	}
	return "#" + strconv.Itoa(n)
}

// ValidatePullRequest is ValidatePull for a number GitHub gave a pull
// request (a webhook's, a listing's, a comment's): a group number there
// is a forgery. Errors wrap ErrInvalidEvent.
func ValidatePullRequest(n int) error {
	if err := ValidatePull(n); err != nil {
		return err
	}
	if n >= GroupBase {
		return fmt.Errorf("pull request number %d is in the merge groups' range: %w", n, ErrInvalidEvent)
	}
	return nil
}

// validateGroupHead refuses a group number that is not its head's.
func validateGroupHead(n int, sha string) error {
	if !IsGroup(n) || sha == "" {
		return nil
	}
	want, err := GroupNumber(sha)
	if err != nil {
		return err
	}
	if want != n {
		return fmt.Errorf("merge group number %d is not head %.9s's: %w", n, sha, ErrInvalidEvent)
	}
	return nil
}

// GroupRefPrefix is where GitHub's merge queue pushes a group's head:
// refs/heads/gh-readonly-queue/<base branch>/pr-<n>-<sha>.
const GroupRefPrefix = "refs/heads/gh-readonly-queue/"

// maxRefLen bounds a ref a merge group names; git allows more, GitHub's
// queue writes far less.
const maxRefLen = 1024

// ValidateGroupRefs refuses the head and base refs of a merge group that
// no GitHub merge queue writes: a head outside GroupRefPrefix, a base that
// is not a branch, or either holding bytes git refuses in a ref name
// (control characters, space, ~^:?*[\) or "..". Errors wrap
// ErrInvalidEvent. The refs reach git only as arguments after "--" or in
// the test's environment.
func ValidateGroupRefs(headRef, baseRef string) error {
	var errs []string
	if !strings.HasPrefix(headRef, GroupRefPrefix) || len(headRef) == len(GroupRefPrefix) {
		errs = append(errs, fmt.Sprintf("head ref %q is not under %s", truncated(headRef), GroupRefPrefix))
	}
	if !strings.HasPrefix(baseRef, "refs/heads/") || len(baseRef) == len("refs/heads/") {
		errs = append(errs, fmt.Sprintf("base ref %q is not a branch", truncated(baseRef)))
	}
	for _, r := range []string{headRef, baseRef} {
		if len(r) > maxRefLen || strings.Contains(r, "..") || strings.ContainsAny(r, " ~^:?*[\\") || hasControl(r) {
			errs = append(errs, fmt.Sprintf("ref %q is not a ref name git accepts", truncated(r)))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("merge group: %s: %w", strings.Join(errs, "; "), ErrInvalidEvent)
	}
	return nil
}

func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return true
		}
	}
	return false
}
