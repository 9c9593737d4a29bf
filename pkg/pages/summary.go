package pages

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/yourci/yourci/pkg/events"
)

// The summary states, spelled as GitHub spells commit status states.
const (
	Pending = "pending"
	Success = "success"
	Failure = "failure"
	Error   = "error"
)

// Superseded is how pages show a build whose head a newer push replaced
// before it was judged: its Summary is Cancelled.
const Superseded = "superseded"

// Summary is a build as one verdict: the `yci` status of its head commit
// and the headline of its page.
type Summary struct {
	// State is Pending while any test is queued, running or waiting to
	// retry, or while the build is still being prepared (no head, tests
	// or configuration error recorded yet); otherwise Failure when a test
	// failed, Error when none failed but one could not be run or judged
	// (superseded ones included), and Success when all passed (or the
	// plan has none).
	State string
	// Description counts the tests by state, such as "3 passed, 1 failed
	// (1 flaky) of 4"; once tests ended superseded it names the commit
	// that replaced them and counts what ended before, such as "superseded
	// by abc1234; 2 passed, 1 failed before". It is at most 140
	// characters, GitHub's limit.
	Description string
	// Cancelled says the build ended because a newer push superseded it,
	// with no test failed: State is Error, as commit statuses have no
	// state for "not judged", but a check run concludes cancelled and a
	// page shows Superseded rather than a red error.
	Cancelled bool

	Passed, Failed, Errored, Superseded, Running, Retrying, Queued int
	// SupersededBy is the commit that superseded the build: the one
	// named by its most recently superseded test.
	SupersededBy string
	// Flaky counts tests that passed after a failed attempt.
	Flaky int
	Total int
}

// Label is the word pages show for the build: its State, or Superseded
// when it is Cancelled.
func (s Summary) Label() string {
	if s.Cancelled {
		return Superseded
	}
	return s.State
}

// Summarize computes the summary of rec. It is a pure function of the
// record, so every box computes the same summary from the same revision.
func Summarize(rec events.BuildRecord) Summary {
	var s Summary
	var supersededAt time.Time
	for _, t := range rec.Tests {
		s.Total++
		switch t.State {
		case events.TestPassed:
			s.Passed++
		case events.TestFailed:
			s.Failed++
		case events.TestErrored:
			s.Errored++
		case events.TestSuperseded:
			s.Superseded++
			if s.SupersededBy == "" || t.Updated.After(supersededAt) {
				s.SupersededBy, supersededAt = t.SupersededBy, t.Updated
			}
		case events.TestRunning:
			s.Running++
		case events.TestRetrying:
			s.Retrying++
		default:
			s.Queued++
		}
		if t.Flaky {
			s.Flaky++
		}
	}
	switch {
	case s.Running+s.Retrying+s.Queued > 0:
		s.State = Pending
	case s.Failed > 0:
		s.State = Failure
	case s.Errored+s.Superseded > 0:
		s.State = Error
	default:
		s.State = Success
	}
	s.Cancelled = s.State == Error && s.Superseded > 0
	s.Description = s.describe()
	if preparing(rec) {
		s.State, s.Description = Pending, "preparing the build"
	}
	if rec.ConfigError != "" && s.Total == 0 {
		s.State, s.Description = Error, rec.ConfigError
	} else if b := rec.Base; b != nil && !s.Cancelled {
		s.Description = withBase(s.Description, *b)
	}
	return s
}

// preparing says rec is a build the worker has begun but not yet planned:
// the merge is recorded (Base) before .yci.py is evaluated, which may take
// its 30 seconds, and the head (SHA), the tests or the reason there are
// none come only with the plan. Such a record is not "no tests for this
// change", which is a verdict.
func preparing(rec events.BuildRecord) bool {
	return rec.SHA == "" && len(rec.Tests) == 0 && rec.ConfigError == ""
}

// maxDescription is GitHub's limit on a status description.
const maxDescription = 140

// withBase adds what was tested of the base to a summary's description,
// the branch's name cut (to 40 bytes at most) so that the whole fits in
// maxDescription; when even a short name would not fit, it adds nothing.
func withBase(desc string, b events.TestedBase) string {
	whole := desc + "; " + testedOn(b, 0)
	if len(whole) <= maxDescription && len(b.Ref) <= 40 {
		return whole
	}
	room := min(40, maxDescription-(len(whole)-len(b.Ref)))
	if room < 8 {
		return desc
	}
	return desc + "; " + testedOn(b, room)
}

// testedOn says what a build tested of its base: "tested merged into main
// at abc1234" or "head tested alone, not merged into main", with the
// branch's name cut to at most maxRef bytes (0: whole).
func testedOn(b events.TestedBase, maxRef int) string {
	ref := b.Ref
	if maxRef > 0 && len(ref) > maxRef {
		ref = strings.ToValidUTF8(ref[:maxRef-3], "") + "..."
	}
	if b.Queued {
		return "merge group onto " + ref + " at " + events.ShortSHA(b.SHA)
	}
	if !b.Merged {
		return "head tested alone, not merged into " + ref
	}
	return "tested merged into " + ref + " at " + events.ShortSHA(b.SHA)
}

// BaseLine describes, for a build page, what the build tested of its
// base branch and how far behind it the head was; "" for a record that
// does not say.
func BaseLine(rec events.BuildRecord) string {
	b := rec.Base
	if b == nil {
		return ""
	}
	if len(b.Conflicts) > 0 {
		return fmt.Sprintf("did not merge into %s at %s: %s conflicted; no test ran", b.Ref, events.ShortSHA(b.SHA), countPaths(len(b.Conflicts)))
	}
	line := testedOn(*b, 0)
	if b.Queued {
		return line + "; tested as the queue made it"
	}
	if !b.Merged {
		line += fmt.Sprintf(" (at %s)", events.ShortSHA(b.SHA))
	}
	switch b.Behind {
	case 0:
		return line + "; the head was up to date with it"
	case 1:
		return line + "; the head was 1 commit behind it"
	}
	return line + fmt.Sprintf("; the head was %d commits behind it", b.Behind)
}

func countPaths(n int) string {
	if n == 1 {
		return "1 file"
	}
	return strconv.Itoa(n) + " files"
}

func (s Summary) describe() string {
	if s.Total == 0 {
		return "no tests for this change"
	}
	if s.Superseded > 0 && s.State != Pending {
		return s.describeSuperseded()
	}
	var parts []string
	for _, c := range []struct {
		n    int
		word string
	}{
		{s.Passed, "passed"}, {s.Failed, "failed"}, {s.Errored, "errored"}, {s.Superseded, "superseded"},
		{s.Running, "running"}, {s.Retrying, "retrying"}, {s.Queued, "queued"},
	} {
		if c.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c.n, c.word))
		}
	}
	d := strings.Join(parts, ", ")
	if s.Flaky > 0 {
		d += fmt.Sprintf(" (%d flaky)", s.Flaky)
	}
	// Seven counts and a total of at most ten digits each stay far below
	// GitHub's 140 characters.
	return d + fmt.Sprintf(" of %d", s.Total)
}

// describeSuperseded words an ended build that a newer push superseded
// the way a superseded test's status does (status.Superseded), followed
// by what its other tests reached before.
func (s Summary) describeSuperseded() string {
	d := "superseded by a newer commit"
	if s.SupersededBy != "" {
		d = "superseded by " + events.ShortSHA(s.SupersededBy)
	}
	var parts []string
	for _, c := range []struct {
		n    int
		word string
	}{{s.Passed, "passed"}, {s.Failed, "failed"}, {s.Errored, "errored"}} {
		if c.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c.n, c.word))
		}
	}
	if len(parts) > 0 {
		d += "; " + strings.Join(parts, ", ") + " before"
	}
	if s.Flaky > 0 {
		d += fmt.Sprintf(" (%d flaky)", s.Flaky)
	}
	return d
}
