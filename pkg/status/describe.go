package status

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/yourci/yourci/pkg/events"
)

// MaxDescription is the longest description GitHub accepts, in characters;
// it refuses a longer one with a 422.
const MaxDescription = 140

// The helpers below word every description YourCI shows, so that GitHub's
// status list reads the same for every test. Each result is one line of at
// most MaxDescription characters whatever its arguments.

// Queued describes a test published but not yet started.
func Queued() string { return "queued" }

// Running describes attempt (from 1) of attempts while it runs.
func Running(attempt, attempts int) string {
	return truncate("running" + attemptSuffix(attempt, attempts))
}

// RetryingIn describes the wait after a failed attempt, before nextAttempt
// of attempts starts.
func RetryingIn(wait time.Duration, nextAttempt, attempts int) string {
	return truncate("failed; retrying in " + humanDuration(wait) + attemptSuffix(nextAttempt, attempts))
}

// Passed describes a test that passed on attempt (from 1) after running d.
func Passed(d time.Duration, attempt int) string {
	s := "passed in " + humanDuration(d)
	if attempt > 1 {
		s += fmt.Sprintf(" on attempt %d", attempt)
	}
	return truncate(s)
}

// Failed describes a final failed attempt. A negative exitCode means the
// process ended without one (killed by a signal).
func Failed(exitCode, attempt, attempts int, d time.Duration) string {
	how := fmt.Sprintf("failed with exit code %d", exitCode)
	if exitCode < 0 {
		how = "failed: killed by a signal"
	}
	return truncate(how + " after " + humanDuration(d) + attemptSuffix(attempt, attempts))
}

// TimedOut describes an attempt stopped when it reached its time limit.
func TimedOut(limit time.Duration, attempt, attempts int) string {
	return truncate("timed out after " + humanDuration(limit) + attemptSuffix(attempt, attempts))
}

// Errored describes a test YourCI could not run or judge (workspace, git,
// disk): reason is made one line, stripped of the box's paths
// (WithoutPaths) and cut to fit.
func Errored(reason string) string {
	const head = "error: "
	return truncate(head + cutCause(WithoutPaths(oneLine(reason)), MaxDescription-len(head)))
}

// ConfigError describes a .yci.py that could not be evaluated; reason should
// name the line and the fix, and is made one line, stripped of the box's
// paths (WithoutPaths) and cut to fit.
func ConfigError(reason string) string {
	return truncate(".yci.py: " + WithoutPaths(oneLine(reason)))
}

// Superseded describes a test stopped while it ran because newSHA was
// pushed to the pull request; the build's summary says "superseded by" in
// the same words (pages.Summarize).
func Superseded(newSHA string) string {
	return truncate("stopped: superseded by " + events.ShortSHA(oneLine(newSHA)))
}

// SupersededBeforeRun describes a test dropped before any attempt started
// because newSHA was pushed: nothing ran, so nothing was stopped.
func SupersededBeforeRun(newSHA string) string {
	return truncate("not run: superseded by " + events.ShortSHA(oneLine(newSHA)))
}

// PreparingFailed describes a head commit whose build could not be
// prepared (mirror, checkout, .yci.py) on attempt of attempts, and that
// is tried again: reason is made one line, stripped of the box's paths
// (WithoutPaths) and cut so the whole fits.
func PreparingFailed(attempt, attempts int, reason string) string {
	head := fmt.Sprintf("preparing failed (attempt %d of %d): ", attempt, attempts)
	const tail = "; retrying"
	return truncate(head + cutCause(WithoutPaths(oneLine(reason)), MaxDescription-len(head)-len(tail)) + tail)
}

// GaveUpPreparing describes a head commit whose build could not be
// prepared in attempts attempts, and is no longer tried.
func GaveUpPreparing(attempts int) string {
	return truncate(fmt.Sprintf("error: gave up preparing the build after %d attempts; see the preparation log", attempts))
}

// ApprovalNeeded describes a head commit that is not built until someone
// with write access approves it, by commenting /ok-to-test or by adding
// label. An approval covers one commit: after a new push the comment is
// written, or the label (still there) added, again.
func ApprovalNeeded(label string) string {
	return truncate(fmt.Sprintf("not run: needs approval; a writer comments /ok-to-test or adds the %q label (again after a new push)", cut(oneLine(label), 60)))
}

// Approved describes an approved head commit whose build is being
// prepared, replacing ApprovalNeeded.
func Approved(by string) string {
	return truncate(fmt.Sprintf("approved by %s; building", cut(oneLine(by), 60)))
}

// attemptSuffix is " (attempt k/n)", or nothing when a test has no retries.
func attemptSuffix(attempt, attempts int) string {
	if attempts <= 1 || attempt < 1 {
		return ""
	}
	return fmt.Sprintf(" (attempt %d/%d)", attempt, attempts)
}

// humanDuration writes d the way people read a status: "350ms", "45s",
// "2m13s", "10m", "1h5m"; seconds are dropped past an hour.
func humanDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Hour:
		d = d.Round(time.Second)
		m, s := int(d/time.Minute), int(d%time.Minute/time.Second)
		switch {
		case m == 0:
			return fmt.Sprintf("%ds", s)
		case s == 0:
			return fmt.Sprintf("%dm", m)
		}
		return fmt.Sprintf("%dm%ds", m, s)
	}
	d = d.Round(time.Minute)
	h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
	if m == 0 {
		return fmt.Sprintf("%dh", h)
	}
	return fmt.Sprintf("%dh%dm", h, m)
}

// cleanDescription is what the Reporter sends: secrets masked first (so
// cutting cannot leave part of one behind), then one line, then cut.
func cleanDescription(s string, secrets []string) string {
	return truncate(oneLine(mask(s, secrets)))
}

// mask replaces every occurrence of every secret with "***", longest
// first so a secret containing another is hidden whole.
func mask(s string, secrets []string) string {
	if len(secrets) == 0 {
		return s
	}
	sorted := slices.Clone(secrets)
	slices.SortFunc(sorted, func(a, b string) int { return len(b) - len(a) })
	for _, secret := range sorted {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, "***")
		}
	}
	return s
}

// boxPath is an absolute path of two parts or more in an error's text: one
// that starts the text or a word, or follows a quote, a bracket or "=".
// A URL's path follows its host, not one of those, and a command such as
// /retest has one part: neither is taken for a path.
var boxPath = regexp.MustCompile(`(^|[\s'"(\[<=])/[^\s'"()\[\]<>,;:]+(/[^\s'"()\[\]<>,;:]*)+`)

// ErrorReason is err's text for GitHub: the first *fs.PathError and
// *os.LinkError in err worded as "op: cause" (the box's paths are of no
// use there, and can push the cause, "no space left on device", past the
// 140 characters a description may have), and every path left in free
// text (git's, a tool's) cut by WithoutPaths.
func ErrorReason(err error) string {
	text := err.Error()
	var pe *fs.PathError
	if errors.As(err, &pe) {
		text = strings.Replace(text, pe.Error(), pe.Op+": "+pe.Err.Error(), 1)
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		text = strings.Replace(text, le.Error(), le.Op+": "+le.Err.Error(), 1)
	}
	return WithoutPaths(text)
}

// WithoutPaths is an error's text with every absolute path cut to its
// last part ("open …/out.txt: permission denied"): the cause is kept, but
// GitHub never learns how the box lays out its workspace, mirrors or
// tools, whatever step (git, exec, the file system, the sandbox) wrote the
// text. Callers that hold the error itself word it better with
// ErrorReason; this catches what free text carries, in a description or
// in a comment's reply.
func WithoutPaths(s string) string {
	return boxPath.ReplaceAllStringFunc(s, func(m string) string {
		i := strings.IndexByte(m, '/')
		return m[:i] + "…/" + path.Base(m[i:])
	})
}

// oneLine turns every run of white space and control characters into a
// single space and repairs invalid UTF-8, so tracebacks fit a status.
func oneLine(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	space := false
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
	}
	return b.String()
}

// truncate cuts s to MaxDescription characters, ending with "…" when cut.
func truncate(s string) string {
	return cut(s, MaxDescription)
}

// cut shortens s to at most n characters (runes), the last of them an
// ellipsis when anything was dropped.
func cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	i, kept := 0, 0
	for i < len(s) && kept < n-1 {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
		kept++
	}
	return strings.TrimRightFunc(s[:i], unicode.IsSpace) + "…"
}

// cutCause shortens an error's text, made of contexts wrapping a cause
// ("claiming a build number: claiming build of …: nats: timeout"), to at
// most n characters, keeping its first context and as much of its end as
// fits: the cause is what a reader needs, and a plain cut drops it.
func cutCause(reason string, n int) string {
	if utf8.RuneCountInString(reason) <= n {
		return reason
	}
	first, rest, ok := strings.Cut(reason, ": ")
	const gap = ": …: "
	room := n - utf8.RuneCountInString(first) - utf8.RuneCountInString(gap)
	if !ok || room <= 0 {
		return cut(reason, n)
	}
	for tail := rest; ; {
		_, next, more := strings.Cut(tail, ": ")
		if !more {
			break
		}
		tail = next
		if utf8.RuneCountInString(tail) <= room {
			return first + gap + tail
		}
	}
	return cut(reason, n)
}

// MergeConflict describes a head that does not merge into the tip of its
// base branch baseRef (at baseSHA): no test ran, and what to do about it.
// files counts the conflicting paths.
func MergeConflict(baseRef, baseSHA string, files int) string {
	ref := cut(oneLine(baseRef), 30)
	what := "1 file"
	if files != 1 {
		what = fmt.Sprintf("%d files", files)
	}
	return truncate(fmt.Sprintf("merge conflict with %s at %s in %s; no test ran: merge %s into the branch, resolve, push",
		ref, events.ShortSHA(oneLine(baseSHA)), what, ref))
}
