package projector

import (
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/yourci/yourci/pkg/events"
)

// The plan is what a build will run, as its .yci.py decided: every test
// with its command and how many attempts it may have, and the changed
// files .yci.py saw. It is the summary check run's report (a GitHub App
// shows it under `yci` from the moment the build is queued); commit
// statuses have no place for it.

// planBudget bounds the plan's Markdown in bytes, below GitHub's 65535
// characters for a check run's summary; testsBudget is the part the
// tests may take, so that the changed files always have room.
const (
	planBudget  = 60000
	testsBudget = 40000
)

// renderPlan returns rec's plan as Markdown, or "" when the record holds
// none (written before commands and changes were kept). Commands and
// paths are author-controlled: each goes into a fenced code block, where
// GitHub renders nothing (no HTML, links or mentions), one line each with
// control characters written as escapes, so no text can end the block or
// pass for another test's line.
func renderPlan(rec events.BuildRecord) string {
	hasCommands := false
	for _, t := range rec.Tests {
		hasCommands = hasCommands || t.Command != ""
	}
	if !hasCommands && rec.Changes == nil {
		return ""
	}
	var b strings.Builder
	if hasCommands {
		writeTests(&b, rec.Tests)
	}
	if rec.Changes != nil {
		if b.Len() > 0 {
			b.WriteString("\n")
		}
		writeChanges(&b, *rec.Changes, planBudget-b.Len())
	}
	return b.String()
}

// writeTests writes the tests' part of the plan within testsBudget.
func writeTests(b *strings.Builder, tests []events.TestRecord) {
	width := 0
	for _, t := range tests {
		width = max(width, len(t.Name)) // names are ASCII (events.ValidateTestName)
	}
	lines := make([]string, 0, len(tests))
	used := 0
	for _, t := range tests {
		line := fmt.Sprintf("%-*s  %-16s  %s", width, t.Name, attemptsAllowed(t.MaxAttempts), visible(t.Command))
		if used+len(line)+1 > testsBudget {
			break
		}
		used += len(line) + 1
		lines = append(lines, line)
	}
	fmt.Fprintf(b, "**Tests** (%d), as `.yci.py` gave them:\n\n", len(tests))
	writeBlock(b, lines)
	if left := len(tests) - len(lines); left > 0 {
		fmt.Fprintf(b, "\n… and %d more (see the build page).\n", left)
	}
}

// writeChanges writes the changed files' part of the plan within budget
// bytes: the paths the record keeps, then how many it left out.
func writeChanges(b *strings.Builder, c events.Changes, budget int) {
	fmt.Fprintf(b, "**Changed files** (%d), as `.yci.py` saw them:\n\n", c.Total)
	if len(c.Files) == 0 {
		b.WriteString("none\n")
		return
	}
	lines := make([]string, 0, len(c.Files))
	used := 200 // the heading, the fences and the count below
	for _, f := range c.Files {
		line := visible(f)
		if used+len(line)+1 > budget {
			break
		}
		used += len(line) + 1
		lines = append(lines, line)
	}
	writeBlock(b, lines)
	if left := c.Total - len(lines); left > 0 {
		fmt.Fprintf(b, "\n… and %d more.\n", left)
	}
}

// writeBlock writes lines as a fenced code block whose fence is longer
// than any run of backticks in them, so none can close it.
func writeBlock(b *strings.Builder, lines []string) {
	run := 0
	for _, l := range lines {
		n := 0
		for _, r := range l {
			if r == '`' {
				n++
				run = max(run, n)
			} else {
				n = 0
			}
		}
	}
	fence := strings.Repeat("`", max(3, run+1))
	b.WriteString(fence + "\n")
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
	b.WriteString(fence + "\n")
}

// attemptsAllowed words a test's MaxAttempts.
func attemptsAllowed(n int) string {
	switch {
	case n <= 0:
		return ""
	case n == 1:
		return "1 attempt"
	}
	return "up to " + strconv.Itoa(n) + " attempts"
}

// visible is s on one line: every character that does not print (line
// breaks, tabs, terminal controls, direction overrides) written as its Go
// escape, and every byte that is not UTF-8 as \xNN.
func visible(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == ' ' || unicode.IsPrint(r):
			b.WriteRune(r)
		default:
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		}
		i += size
	}
	return b.String()
}

// planMark identifies a plan in the summary's mark: a record whose plan
// changes owes GitHub the summary again. It is empty for no plan, so a
// record written before plans were kept keeps the mark it was shown with.
func planMark(plan string) string {
	if plan == "" {
		return ""
	}
	h := fnv.New64a()
	h.Write([]byte(plan)) // a hash.Hash never fails to write
	return "|plan:" + strconv.FormatUint(h.Sum64(), 16)
}
