package worker

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/yourci/yourci/pkg/artifacts"
	"github.com/yourci/yourci/pkg/pipeline"
	"github.com/yourci/yourci/pkg/status"
)

// Bounds of a check run's report: what is read of the log, and how much
// of its end is shown. The Reporter cuts the output to GitHub's limits
// anyway; these keep it readable.
const (
	reportTailLines = 60
	reportTailBytes = 48 << 10
	maxAttemptLines = 50
)

// attemptReport is the check run output of a test's final state: the
// result, every attempt with its result and duration as the log's footers
// record them, and the last lines of the log. The log is already masked by
// the runner; the Reporter masks it again with its own secrets. A log that
// cannot be read gives a report that says so.
func attemptReport(logPath string, st status.Status) *status.Output {
	out := &status.Output{Title: st.Description}
	var summary strings.Builder
	fmt.Fprintf(&summary, "**%s**\n", st.Description)
	attempts, tail, err := readLog(logPath)
	if err != nil {
		fmt.Fprintf(&summary, "\nThe log could not be read: %s\n", status.ErrorReason(err))
		out.Summary = summary.String()
		return out
	}
	if len(attempts) > 0 {
		summary.WriteString("\n| attempt | result |\n|---|---|\n")
		for _, a := range attempts {
			n, result, _ := strings.Cut(a, " ")
			fmt.Fprintf(&summary, "| %s | %s |\n", markdownCell(n), markdownCell(result))
		}
	}
	if st.TargetURL != "" {
		fmt.Fprintf(&summary, "\n[Full log](%s)\n", st.TargetURL)
	}
	out.Summary = summary.String()
	if tail != "" {
		fence := codeFence(tail)
		out.Text = fmt.Sprintf("Last lines of the log:\n\n%s\n%s\n%s\n", fence, tail, fence)
	}
	return out
}

// attemptFooter starts the line the runner ends each attempt with:
// "[yci] attempt 2/3 failed (exit status 1) after 1.2s".
const attemptFooter = pipeline.LogPrefix + "attempt "

// readLog reads a test's log for its report: the attempt footers ("2/3
// passed (exit status 0) after 1.2s"), the last of them if there are very
// many, and the log's last lines.
func readLog(path string) (attempts []string, tail string, err error) {
	// A log put in place by something else (a link to a secret, a FIFO,
	// a device that never ends) has no report: it would leak the secret
	// into GitHub, or never finish.
	// The error names no path: the report is public.
	f, err := artifacts.OpenHostile(path)
	var pe *fs.PathError
	switch {
	case errors.Is(err, artifacts.ErrInvalid):
		return nil, "", errors.New("the log is not a regular file")
	case errors.As(err, &pe):
		return nil, "", pe
	case err != nil:
		return nil, "", errors.New("the log could not be opened")
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 64<<10)
	for {
		line, err := r.ReadSlice('\n')
		if bytes.HasPrefix(line, []byte(attemptFooter)) && !errors.Is(err, bufio.ErrBufferFull) {
			attempts = append(attempts, strings.TrimSpace(string(line[len(attemptFooter):])))
			if len(attempts) > maxAttemptLines {
				attempts = attempts[1:]
			}
		}
		for errors.Is(err, bufio.ErrBufferFull) {
			_, err = r.ReadSlice('\n') // the rest of a long line
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, "", err
		}
	}
	tail, err = logTail(f)
	return attempts, tail, err
}

// logTail is the last reportTailLines lines of f, from at most its last
// reportTailBytes bytes.
func logTail(f *os.File) (string, error) {
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	start := max(fi.Size()-reportTailBytes, 0)
	buf := make([]byte, fi.Size()-start)
	if _, err := f.ReadAt(buf, start); err != nil && err != io.EOF {
		return "", err
	}
	text := strings.ToValidUTF8(strings.TrimRight(string(buf), "\n"), "\uFFFD")
	lines := strings.Split(text, "\n")
	if start > 0 && len(lines) > 1 {
		lines = lines[1:] // the first was cut in the middle
	}
	if len(lines) > reportTailLines {
		lines = lines[len(lines)-reportTailLines:]
	}
	return strings.Join(lines, "\n"), nil
}

// codeFence is a Markdown fence longer than any run of backticks in text,
// so that a log cannot close it and have the rest read as Markdown.
func codeFence(text string) string {
	longest, run := 0, 0
	for _, c := range text {
		if c == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	return strings.Repeat("`", max(3, longest+1))
}

// markdownCell makes s safe inside a Markdown table cell.
func markdownCell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}
