package status

import (
	"context"
	"strings"
	"unicode/utf8"

	"github.com/google/go-github/v88/github"
)

// Writer shows one state on GitHub: the one interface the two ways of
// reporting share, commit statuses (StatusWriter) and check runs
// (CheckRunWriter), so that callers do not care which is used. Write makes
// one attempt and returns GitHub's answer beside its error; the Reporter
// retries. It must be safe for concurrent use.
type Writer interface {
	Write(ctx context.Context, s Status) (*github.Response, error)
}

// StatusWriter shows states as commit statuses: context Context(s.Test),
// state, description and target URL. Conclusion and Output have no place
// in a commit status and are left out.
type StatusWriter struct {
	Client StatusCreator
}

// Write creates one commit status.
func (w StatusWriter) Write(ctx context.Context, s Status) (*github.Response, error) {
	rs := github.RepoStatus{
		State:       github.Ptr(string(s.State)),
		Context:     github.Ptr(Context(s.Test)),
		Description: github.Ptr(s.Description),
	}
	if s.TargetURL != "" {
		rs.TargetURL = github.Ptr(s.TargetURL)
	}
	_, resp, err := w.Client.CreateStatus(ctx, s.Owner, s.Repo, s.SHA, rs)
	return resp, err
}

// Conclusion refines how a final state shows as a check run.
type Conclusion string

// The conclusions YourCI gives besides those its states imply (success for
// Success, failure for Failure and Error).
const (
	// ConclusionTimedOut: the test reached its time limit.
	ConclusionTimedOut Conclusion = "timed_out"
	// ConclusionCancelled: the test was dropped or stopped (superseded,
	// closed).
	ConclusionCancelled Conclusion = "cancelled"
	// ConclusionNeutral: nothing was judged; GitHub counts it as neither
	// passed nor failed.
	ConclusionNeutral Conclusion = "neutral"
)

func (c Conclusion) valid() bool {
	switch c {
	case "", ConclusionTimedOut, ConclusionCancelled, ConclusionNeutral:
		return true
	}
	return false
}

// GitHub's limits on a check run's output, in characters.
const (
	MaxOutputTitle = 255
	MaxOutputText  = 65535
)

// Output is the report a check run shows: a title, a summary (Markdown)
// and a longer text (Markdown), such as the end of the log.
type Output struct {
	Title, Summary, Text string
}

// fit masks secrets in o and cuts it to GitHub's limits: the title to one
// line of MaxOutputTitle characters, the summary to MaxOutputText keeping
// its start, the text to MaxOutputText keeping its end (it is a log's
// tail: the end says most).
func (o Output) fit(secrets []string) Output {
	return Output{
		Title:   cut(oneLine(mask(o.Title, secrets)), MaxOutputTitle),
		Summary: cut(strings.ToValidUTF8(mask(o.Summary, secrets), "\uFFFD"), MaxOutputText),
		Text:    cutFront(strings.ToValidUTF8(mask(o.Text, secrets), "\uFFFD"), MaxOutputText),
	}
}

// cutFront shortens s to at most n characters by dropping its start, the
// first kept character an ellipsis when anything was dropped.
func cutFront(s string, n int) string {
	count := utf8.RuneCountInString(s)
	if count <= n {
		return s
	}
	i := 0
	for drop := count - (n - 1); drop > 0; drop-- {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	return "…" + s[i:]
}
