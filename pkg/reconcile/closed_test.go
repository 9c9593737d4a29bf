package reconcile_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-github/v88/github"

	"github.com/yourci/yourci/pkg/artifacts"
	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/githubauth"
	"github.com/yourci/yourci/pkg/pause"
	"github.com/yourci/yourci/pkg/pipeline"
	"github.com/yourci/yourci/pkg/projector"
	"github.com/yourci/yourci/pkg/worker"
)

// workerGitHub gives the worker the env's token client.
type workerGitHub struct{ auth *githubauth.Clients }

func (g workerGitHub) Installation(ctx context.Context, id int64) (worker.Installation, error) {
	c, err := g.auth.ForInstallation(ctx, id)
	if err != nil {
		return worker.Installation{}, err
	}
	return worker.Installation{Pulls: c}, nil
}

// Tests queued for a pull request that has since closed are dropped: the
// sweep does not queue closed pulls (TestSweepDoesNotQueueClosedPulls),
// and a real worker that picks up a test or a pull event queued before
// the close settles it without running anything.
func TestWorkerDropsJobsOfAPullClosedSinceTheyWereQueued(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testContext(t)
	r := repo("acme", "widgets")
	sha := e.repoWithPulls(t, r.Owner, r.Name, 1)[0]
	if err := e.bus.Queue().PublishPull(ctx, events.PullEvent{Repo: r, Number: 1, HeadSHA: sha, Delivery: "before-close"}); err != nil {
		t.Fatal(err)
	}
	job := events.TestJob{Repo: r, Number: 1, HeadSHA: sha, Build: 1, Attempt: 1,
		Test: events.TestSpec{Name: "foo-x", Command: "touch ran"}}
	if err := e.bus.Queue().PublishTest(ctx, job); err != nil {
		t.Fatal(err)
	}
	if err := e.gh.ClosePull(r.Owner, r.Name, 1); err != nil {
		t.Fatal(err)
	}

	stop := e.startWorker(t)

	waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err := e.gh.WaitStatuses(waitCtx, r.Owner, r.Name, sha, func(latest map[string]github.RepoStatus) bool {
		st, ok := latest["yci/foo-x"]
		return ok && st.GetState() != ""
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := pause.Poll(waitCtx, 20*time.Millisecond, func() bool { return e.streamMessages(t) == 0 }); err != nil {
		t.Logf("the stream still holds messages: %v", err)
	}
	stop()

	st := e.gh.LatestStatuses(r.Owner, r.Name, sha)["yci/foo-x"]
	if st.GetState() != "error" || !strings.Contains(st.GetDescription(), "closed") {
		t.Errorf("yci/foo-x is %s %q, want an error saying the pull request is closed", st.GetState(), st.GetDescription())
	}
	if n := e.streamMessages(t); n != 0 {
		t.Errorf("%d jobs still queued, want both dropped", n)
	}
	if _, built, err := e.bus.Registry().BuildOf(ctx, r, 1, sha); err != nil || built {
		t.Errorf("closed pull got a build (%v, %v), want none", built, err)
	}
}

// streamMessages is how many jobs the stream holds.
func (e *env) streamMessages(t *testing.T) uint64 {
	t.Helper()
	stream, err := e.js.Stream(testContext(t), events.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// startWorker runs a real worker on the env's queue until the returned
// function is called; it fails the test if the worker stops with an error.
func (e *env) startWorker(t *testing.T) (stop func()) {
	t.Helper()
	ws, err := artifacts.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	auth, err := githubauth.New(e.auth)
	if err != nil {
		t.Fatal(err)
	}
	w, err := worker.New(worker.Options{
		Workspace: ws, Evaluator: &pipeline.Evaluator{}, Runner: &pipeline.Runner{},
		GitHub: workerGitHub{auth}, Queue: workerQueue{e.bus.Queue(), e.bus.Registry(), e.bus.Heads()}, Records: e.bus.Records(), Logger: testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	// The worker changes records only; its projector writes GitHub.
	proj, err := projector.New(projector.Options{Records: e.bus.Records(), Clients: workerGitHub{auth}, Holder: t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(testContext(t))
	slots := events.NewSlots(2)
	done := make(chan error, 3)
	go func() { done <- e.bus.Queue().ConsumePulls(ctx, slots, w.HandlePull) }()
	go func() { done <- e.bus.Queue().ConsumeTests(ctx, slots, w.HandleTest) }()
	go func() { done <- proj.Run(ctx) }()
	return func() {
		cancel()
		for range 3 {
			if err := <-done; err != nil {
				t.Errorf("worker: %v", err)
			}
		}
	}
}

// Client is projector.Clients: the projector writes through the same
// token client the worker reads with.
func (g workerGitHub) Client(ctx context.Context, id int64) (projector.Client, error) {
	c, err := g.auth.ForInstallation(ctx, id)
	if err != nil {
		return projector.Client{}, err
	}
	return projector.Client{Statuses: c.Repositories}, nil
}
