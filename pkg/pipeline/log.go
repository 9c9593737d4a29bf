package pipeline

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// LogPrefix starts every line the runner itself writes to a test's log, so
// that readers and tools can tell them from the test's output.
const LogPrefix = "[yci] "

// logWriter is a test's log as the runner sees it: it counts the bytes
// written, remembers the last one, so notes can start on a line of their
// own, and its first error, after which it refuses every write and failed
// is closed.
type logWriter struct {
	w      io.Writer
	n      int64
	last   byte
	err    error
	failed chan struct{}
}

// newLogWriter returns a logWriter for w, whose last byte so far is last.
func newLogWriter(w io.Writer, last byte) *logWriter {
	return &logWriter{w: w, last: last, failed: make(chan struct{})}
}

func (l *logWriter) Write(p []byte) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	n, err := l.w.Write(p)
	l.n += int64(n)
	if n > 0 {
		l.last = p[n-1]
	}
	if err != nil {
		l.err = err
		close(l.failed)
	}
	return n, err
}

// capWriter passes a test's output to its log until limit bytes of log are
// used, then writes the truncation line once and drops the rest, reporting
// it written so the test is never blocked.
type capWriter struct {
	log       *logWriter
	limit     int64
	left      int64
	truncated bool
}

func (c *capWriter) Write(p []byte) (int, error) {
	if c.truncated {
		return len(p), nil
	}
	if int64(len(p)) <= c.left {
		n, err := c.log.Write(p)
		c.left -= int64(n)
		return n, err
	}
	if _, err := c.log.Write(p[:c.left]); err != nil {
		return 0, err
	}
	c.left, c.truncated = 0, true
	note := fmt.Sprintf("%slog truncated at %d bytes; the test keeps running\n", LogPrefix, c.limit)
	if c.log.last != '\n' {
		note = "\n" + note
	}
	if _, err := io.WriteString(c.log, note); err != nil {
		return 0, err
	}
	return len(p), nil
}

// writeNotes writes the runner's own text through the masking writer m and
// flushes it.
func writeNotes(m *MaskingWriter, text string) error {
	if _, err := io.WriteString(m, text); err != nil {
		return err
	}
	return m.Flush()
}

// renderHeader is the block written before an attempt's output.
func renderHeader(a Attempt, start time.Time, timeout time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%stest %s, attempt %d/%d, started %s\n",
		LogPrefix, a.Test.Name, a.Number, attempts(a.Test), start.UTC().Format(time.RFC3339))
	for i, line := range strings.Split(a.Test.Command, "\n") {
		label := "command: "
		if i > 0 {
			label = "         "
		}
		b.WriteString(LogPrefix + label + line + "\n")
	}
	if len(a.Test.Env) > 0 {
		b.WriteString(LogPrefix + "env:")
		for _, name := range slices.Sorted(maps.Keys(a.Test.Env)) {
			b.WriteString(" " + name + "=" + quoteValue(a.Test.Env[name]))
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "%stimeout: %s\n", LogPrefix, timeout)
	return b.String()
}

// renderFooter is the block written after an attempt's output: the
// runner's notes, the result and, when the attempt is to be retried, when.
func renderFooter(a Attempt, res Result, notes []string, retry bool, wait time.Duration) string {
	var footer string
	for _, n := range notes {
		footer += LogPrefix + n + "\n"
	}
	footer += fmt.Sprintf("%sattempt %d/%d %s\n", LogPrefix, a.Number, attempts(a.Test), res)
	if retry {
		footer += fmt.Sprintf("%sretry: attempt %d/%d in %s\n", LogPrefix, a.Number+1, attempts(a.Test), wait)
	}
	return footer
}

// attempts is how many attempts a test gets at most.
func attempts(t Test) int {
	return max(t.Retries, 0) + 1
}

// quoteValue shows an env value as it is when that is unambiguous, quoted
// as Go would otherwise.
func quoteValue(v string) string {
	if v != "" && strings.IndexFunc(v, func(r rune) bool {
		return !strings.ContainsRune("_-.,/:@%+=", r) && (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && (r < '0' || r > '9')
	}) < 0 {
		return v
	}
	return strconv.Quote(v)
}
