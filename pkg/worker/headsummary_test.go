package worker

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-github/v88/github"

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

// failingAuth is the stand-in with the token, whose installation cannot
// be authenticated for the worker while down is set; the projector's own
// credentials work.
type failingAuth struct {
	tokenGitHub
	down *atomic.Bool
}

func (f failingAuth) Installation(ctx context.Context, id int64) (Installation, error) {
	if f.down.Load() {
		return Installation{}, errors.New("token endpoint down")
	}
	return f.tokenGitHub.Installation(ctx, id)
}

// TestFailedPreparationReachesGitHubThroughTheProjector runs a worker
// whose authentication fails once, with the real projector: GitHub shows
// the pending "preparing failed" summary linking the preparation log, as
// a handler used to write it, and the build's own summary takes over once
// a delivery gets through.
func TestFailedPreparationReachesGitHubThroughTheProjector(t *testing.T) {
	t.Parallel()
	down := &atomic.Bool{}
	down.Store(true)
	r := newRig(t, func(o *Options) { o.GitHub = failingAuth{o.GitHub.(tokenGitHub), down} })
	pr := r.openPull(t, map[string]string{".yci.py": oneTest})
	sha := pr.GetHead().GetSHA()
	r.publish(t, pr.GetNumber(), sha, "d1")
	failed := r.waitFor(t, sha, func(m map[string]github.RepoStatus) bool { s := m["yci"]; return s.GetState() != "" })["yci"]
	wantURL := httpRoot + owner + "/" + repoName + "/pulls/1/prepare-" + sha + ".txt"
	if failed.GetState() != "pending" || !strings.HasPrefix(failed.GetDescription(), "preparing failed (attempt 1 of ") ||
		!strings.Contains(failed.GetDescription(), "token endpoint down") || failed.GetTargetURL() != wantURL {
		t.Errorf("yci %s %q -> %q, want pending preparing failed, linking %s", failed.GetState(), failed.GetDescription(), failed.GetTargetURL(), wantURL)
	}
	// Another delivery of the head (the sweep's) gets through.
	down.Store(false)
	r.publish(t, pr.GetNumber(), sha, "reconcile")
	if s := r.waitFinal(t, sha, "yci/t", "yci")["yci"]; s.GetState() != "success" || !buildSummary(s) {
		t.Errorf("yci %s %q -> %q, want the build's success", s.GetState(), s.GetDescription(), s.GetTargetURL())
	}
}
