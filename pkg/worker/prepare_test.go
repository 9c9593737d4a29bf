package worker

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/google/go-github/v88/github"

	"github.com/yourci/yourci/pkg/artifacts"
	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/events/memrecords"
	"github.com/yourci/yourci/pkg/pipeline"
)

// closedPort is a local TCP port nothing listens on: it was free a moment
// ago, so a connection to it is refused.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return port
}

// TestFailedPreparationIsLoggedAndShown prepares a head whose base clone
// URL points at a closed port, with real git and a real workspace: each
// failed attempt is appended to the head's preparation log with its steps
// and git's reason, secrets masked, and the yci summary links to that log
// at once; the give-up links to the same log.
func TestFailedPreparationIsLoggedAndShown(t *testing.T) {
	t.Parallel()
	const secret = "s3cr3t-token-value"
	ws, err := artifacts.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	pull := openPull("open", decideSHA, "alice")
	cloneURL := fmt.Sprintf("http://127.0.0.1:%d/%s/widget.git", closedPort(t), secret)
	pull.Base.Repo.CloneURL = github.Ptr(cloneURL)
	inst := Installation{Pulls: &fakePulls{pull: pull}, Permissions: fakePermissions{level: "write"}}
	w, err := New(Options{
		Workspace: ws, Evaluator: &pipeline.Evaluator{}, Runner: &pipeline.Runner{Secrets: []string{secret}},
		GitHub: fakeGitHub{inst: inst}, Queue: newFakeQueue(), Records: memrecords.New(),
		HTTPRoot: httpRoot,
		Logger:   slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	ev := events.PullEvent{Repo: events.Repo{Owner: "acme", Name: "widget"}, Number: 3, HeadSHA: decideSHA}
	ctx := context.Background()

	// What the head's summary shows after each delivery: the projector
	// shows each on GitHub (see TestHeadSummariesReachGitHub).
	var got []string
	for k := uint64(1); k <= 2; k++ {
		if v := w.pulls.decide(ctx, w.log, ev, prepAttempt{delivered: k, maxDeliver: 3}); v.Outcome != HandBack {
			t.Fatalf("attempt %d: verdict %v (%v), want HandBack", k, v.Outcome, v.Err)
		}
		got = append(got, headShows(t, w, ev))
	}
	if v := w.pulls.decide(ctx, w.log, ev, prepAttempt{delivered: 3, maxDeliver: 3}); v.Outcome != Done {
		t.Fatalf("last delivery: verdict %v (%v), want Done", v.Outcome, v.Err)
	}
	got = append(got, headShows(t, w, ev))
	// A mirror that cannot be updated is the box's failure, counted.
	if got := counterValue(t, w.opts.Metrics.InfraErrors.WithLabelValues(InfraMirror)); got != 2 {
		t.Errorf("mirror infrastructure errors counted %v, want 2", got)
	}

	path, err := ws.PrepareLogPath("acme", "widget", 3, decideSHA)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading the preparation log: %v", err)
	}
	log := string(data)
	for _, want := range []string{
		"[yci] attempt 1 of 2 at ",
		"[yci] attempt 2 of 2 at ",
		"[yci] reading pull request #3\n",
		"[yci] claiming a build number\n",
		"[yci] updating the mirror from http://127.0.0.1:",
		"/***/widget.git\n",
		"[yci] failed: updating mirror: ",
		"[yci] trying again in 15s\n",
		"[yci] trying again in 30s\n",
		"[yci] gave up after 2 attempts",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("preparation log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, secret) {
		t.Errorf("preparation log shows the secret:\n%s", log)
	}
	if strings.Contains(log, "checking out") {
		t.Errorf("preparation log says it checked out although the mirror failed:\n%s", log)
	}

	url := strings.TrimSuffix(httpRoot, "/") + "/acme/widget/pulls/3/prepare-" + decideSHA + ".txt"
	want := []string{
		"yci: pending preparing failed (attempt 1 of 2): updating mirror: ",
		"yci: pending preparing failed (attempt 2 of 2): updating mirror: ",
		"yci: error error: gave up preparing the build after 2 attempts; see the preparation log <" + url + ">",
	}
	if len(got) != len(want) {
		t.Fatalf("the head's summary showed:\n%s\nwant %d", strings.Join(got, "\n"), len(want))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) || !strings.HasSuffix(got[i], "<"+url+">") || strings.Contains(got[i], secret) {
			t.Errorf("summary %d = %q, want %q… linking %s without the secret", i, got[i], want[i], url)
		}
	}
}
