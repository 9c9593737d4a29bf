package worker

import (
	"context"
	"errors"
	"testing"

	"github.com/yourci/yourci/pkg/events"
)

// headShows is what the summary record of ev's head commit has the
// projector show as its yci, written "yci: <state> <description> <link>",
// or "" when it shows nothing (no summary, or a build took over). The
// projector's own tests show that it writes exactly this to GitHub.
func headShows(t *testing.T, w *Worker, ev events.PullEvent) string {
	t.Helper()
	store, ok := w.opts.Records.(interface {
		HeadSummary(context.Context, events.HeadKey) (events.HeadSummary, error)
	})
	if !ok {
		t.Fatalf("%T cannot read head summaries", w.opts.Records)
	}
	h, err := store.HeadSummary(context.Background(), events.HeadKey{Repo: ev.Repo, Pull: ev.Number, SHA: ev.HeadSHA})
	if errors.Is(err, events.ErrNoHeadSummary) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	if !h.Visible() {
		return ""
	}
	return "yci: " + h.State + " " + h.Description + " <" + h.TargetURL + ">"
}
