package worker

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-github/v88/github"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/yourci/yourci/pkg/artifacts"
	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/fakegithub"
	"github.com/yourci/yourci/pkg/natsserver"
	"github.com/yourci/yourci/pkg/pipeline"
	"github.com/yourci/yourci/pkg/projector"
)

const (
	owner    = "acme"
	repoName = "widget.go"
	httpRoot = "http://logs.example/ci/"
)

// seedMatrix is the seed design's example in valid Python, with a short
// retry increment so a flaky configuration retries within a test.
const seedMatrix = `from yci.retry import IncrementalRetry
from yci.run import Bash

def test_generator(build_id, pull):
    for x in ['foo', 'bar']:
        for y in ['x', 'y']:
            yield IncrementalRetry(Bash('./test.sh', env={'ENV_VAR_1': x, 'ENV_VAR_2': y}),
                                   retries=2, retry_increment=1)
`

// testScript passes, except bar-y, which fails on its first attempt: the
// marker it leaves lives outside the per-attempt working copy.
const testScript = `#!/bin/bash
echo "running $ENV_VAR_1 $ENV_VAR_2 on $YCI_SHA build $YCI_BUILD"
if [ "$ENV_VAR_1-$ENV_VAR_2" = bar-y ] && [ ! -e "../../flaky-$YCI_SHA" ]; then
  touch "../../flaky-$YCI_SHA"; echo "flaking"; exit 1
fi
`

// rig is one worker wired to a real JetStream, a real workspace and the
// GitHub stand-in, consuming until the test ends.
type rig struct {
	gh  *fakegithub.Server
	bus *events.Bus
	js  jetstream.JetStream // the test's own view of the stream
	ws  *artifacts.Workspace
	// published counts the pull events published, for settled.
	published atomic.Uint64
	w         *Worker
}

type tokenGitHub struct{ gh *fakegithub.Server }

func (t tokenGitHub) Installation(context.Context, int64) (Installation, error) {
	base := t.gh.URL() + "/"
	c, err := github.NewClient(github.WithURLs(&base, &base), github.WithAuthToken(t.gh.Token()))
	if err != nil {
		return Installation{}, err
	}
	return Installation{Pulls: c, Permissions: c.Repositories, Issues: c.Issues,
		Git: artifacts.GitAuth{Username: "x-access-token", Password: t.gh.Token()}}, nil
}

// Client is projector.Clients for the stand-in with the token: statuses.
func (t tokenGitHub) Client(context.Context, int64) (projector.Client, error) {
	base := t.gh.URL() + "/"
	c, err := github.NewClient(github.WithURLs(&base, &base), github.WithAuthToken(t.gh.Token()))
	if err != nil {
		return projector.Client{}, err
	}
	return projector.Client{Statuses: c.Repositories}, nil
}

var python = sync.OnceValue(func() string {
	p, err := pipeline.ResolvePython(context.Background(), "python3")
	if err != nil {
		return "python3"
	}
	return p
})

func newRig(t *testing.T, tweaks ...func(*Options)) *rig {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	gh, err := fakegithub.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gh.Close)
	srv, err := natsserver.Start(ctx, natsserver.Options{StoreDir: t.TempDir(), Port: natsserver.RandomPort})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	bus, err := events.Connect(ctx, srv.URL(), t.Name(), events.Options{Memory: true, AckWait: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ws, err := artifacts.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{
		Workspace: ws,
		Evaluator: &pipeline.Evaluator{Python: python()},
		Runner:    &pipeline.Runner{},
		GitHub:    tokenGitHub{gh},
		Queue:     queueOf(bus),
		Records:   bus.Records(),
		HTTPRoot:  httpRoot,
	}
	for _, tweak := range tweaks {
		tweak(&opts)
	}
	w, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	slots := events.NewSlots(4)
	var wg sync.WaitGroup
	keeper, err := NewPageKeeper(PageKeeperOptions{Workspace: ws, Watch: bus.Records(), Records: bus.Records(), Interval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	wg.Go(func() { keeper.Run(ctx) })
	// The projector shows the records on GitHub, as in the service: what
	// the tests read of GitHub it wrote, never a handler.
	proj, err := projector.New(projector.Options{Records: bus.Records(), Clients: projectorClients{opts.GitHub},
		Holder: t.Name(), HTTPRoot: httpRoot})
	if err != nil {
		t.Fatal(err)
	}
	wg.Go(func() {
		if err := proj.Run(ctx); err != nil {
			t.Errorf("projector: %v", err)
		}
	})
	wg.Go(func() { bus.Queue().ConsumePulls(ctx, slots, w.HandlePull) })
	wg.Go(func() { bus.Queue().ConsumeTests(ctx, slots, w.HandleTest) })
	stopWatch, err := bus.Heads().WatchHeads(w.HeadChanged)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stopWatch)
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		bus.Close()
	})
	if _, err := gh.CreateRepo(owner, repoName); err != nil {
		t.Fatal(err)
	}
	return &rig{gh: gh, bus: bus, js: js, ws: ws, w: w}
}

// openPull commits files on a branch and opens a pull request from it.
func (r *rig) openPull(t *testing.T, files map[string]string) *github.PullRequest {
	t.Helper()
	if _, err := r.gh.Commit(owner, repoName, "main", map[string]string{"README": "widget\n"}, "init"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.gh.Commit(owner, repoName, "feature", files, "change"); err != nil {
		t.Fatal(err)
	}
	pr, err := r.gh.OpenPull(owner, repoName, fakegithub.PullSpec{Head: "feature", Base: "main"})
	if err != nil {
		t.Fatal(err)
	}
	return pr
}

func (r *rig) publish(t *testing.T, number int, sha, delivery string) {
	t.Helper()
	err := r.bus.Queue().PublishPull(context.Background(), events.PullEvent{
		Version: events.Version, Repo: events.Repo{Owner: owner, Name: repoName},
		Number: number, HeadSHA: sha, Delivery: delivery,
	})
	if err != nil {
		t.Fatal(err)
	}
	r.published.Add(1)
}

// waitFinal waits until every context in want has a final state.
func (r *rig) waitFinal(t *testing.T, sha string, want ...string) map[string]github.RepoStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var got map[string]github.RepoStatus
	err := r.gh.WaitStatuses(ctx, owner, repoName, sha, func(m map[string]github.RepoStatus) bool {
		got = m
		for _, c := range want {
			if s, ok := m[c]; !ok || s.GetState() == "pending" {
				return false
			}
		}
		return true
	})
	if err != nil {
		t.Fatalf("statuses never final: %v; have %v", err, describe(got))
	}
	return got
}

func describe(m map[string]github.RepoStatus) string {
	var b strings.Builder
	for c, s := range m {
		b.WriteString(c + "=" + s.GetState() + " (" + s.GetDescription() + "); ")
	}
	return b.String()
}

var matrix = []string{"yci/foo-x", "yci/foo-y", "yci/bar-x", "yci/bar-y"}

func TestPullBuildsTheMatrixWithStatusesAndLogs(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	pr := r.openPull(t, map[string]string{".yci.py": seedMatrix, "test.sh": testScript})
	sha := pr.GetHead().GetSHA()
	r.publish(t, pr.GetNumber(), sha, "delivery-1")

	final := r.waitFinal(t, sha, matrix...)
	for _, c := range matrix {
		s := final[c]
		name := strings.TrimPrefix(c, "yci/")
		if s.GetState() != "success" {
			t.Errorf("%s: %s (%s), want success", c, s.GetState(), s.GetDescription())
		}
		wantURL := httpRoot + owner + "/" + repoName + "/pulls/1/1/" + name + "/out.txt"
		if s.GetTargetURL() != wantURL {
			t.Errorf("%s target %q, want %q", c, s.GetTargetURL(), wantURL)
		}
		b := artifacts.Build{Owner: owner, Repo: repoName, Pull: 1, Number: 1}
		link, _ := r.ws.LogLink(b, name)
		log, err := os.ReadFile(link)
		if err != nil {
			t.Fatalf("%s: reading log through its symlink: %v", c, err)
		}
		env := strings.ReplaceAll(name, "-", " ")
		if !strings.Contains(string(log), "running "+env+" on "+sha+" build 1") {
			t.Errorf("%s log lacks its run line:\n%s", c, log)
		}
	}
	// The flaky configuration went through the queue's retry: its history
	// shows the wait before the passing attempt.
	var sawRetrying bool
	for _, s := range r.gh.Statuses(owner, repoName, sha) {
		if s.GetContext() == "yci/bar-y" && strings.Contains(s.GetDescription(), "retrying") {
			sawRetrying = true
		}
	}
	if !sawRetrying {
		t.Errorf("bar-y passed without a retrying status: %v", r.gh.Statuses(owner, repoName, sha))
	}
	b := artifacts.Build{Owner: owner, Repo: repoName, Pull: 1, Number: 1}
	logPath, _ := r.ws.LogPath(b, "bar-y")
	log, _ := os.ReadFile(logPath)
	if strings.Count(string(log), "flaking") != 1 || strings.Count(string(log), "running bar y") != 2 {
		t.Errorf("bar-y log should hold both attempts:\n%s", log)
	}
}

func TestSameHeadTwiceBuildsOnce(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	pr := r.openPull(t, map[string]string{
		".yci.py": "from yci.run import Bash\n\ndef test_generator(build_id, pull):\n    yield Bash('echo build $YCI_BUILD', name='once')\n",
	})
	sha := pr.GetHead().GetSHA()
	r.publish(t, pr.GetNumber(), sha, "webhook-delivery")
	r.waitFinal(t, sha, "yci/once")
	r.publish(t, pr.GetNumber(), sha, "reconcile-sweep") // a different message for the same commit
	// A second build would publish more statuses; give the worker a job
	// that must come after, then check nothing else happened.
	pr2 := r.pushAndPublish(t, pr.GetNumber())
	r.waitFinal(t, pr2, "yci/once")
	var once []string
	for _, s := range r.gh.Statuses(owner, repoName, sha) {
		if s.GetContext() == "yci/once" {
			once = append(once, s.GetState()+": "+s.GetDescription())
		}
	}
	// A second build would show the test queued again after its success.
	if len(once) == 0 || len(once) > 3 || !strings.HasPrefix(once[len(once)-1], "success") {
		t.Errorf("first head's yci/once statuses %q, want at most queued, running, success, ending in success", once)
	}
	b := artifacts.Build{Owner: owner, Repo: repoName, Pull: pr.GetNumber(), Number: 2}
	if dir, _ := r.ws.BuildDir(b); !exists(dir) {
		t.Errorf("the new head did not get build 2")
	}
	if dir, _ := r.ws.BuildDir(artifacts.Build{Owner: owner, Repo: repoName, Pull: pr.GetNumber(), Number: 3}); exists(dir) {
		t.Errorf("a third build was made")
	}
}

func (r *rig) pushAndPublish(t *testing.T, number int) string {
	t.Helper()
	sha, err := r.gh.PushPull(owner, repoName, number, map[string]string{"more.txt": "more\n"})
	if err != nil {
		t.Fatal(err)
	}
	r.publish(t, number, sha, "push-"+sha)
	return sha
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func TestBrokenYciPyGivesOneErrorStatusWithTheReasonInTheLog(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	// The seed's own example: a positional argument after keywords.
	pr := r.openPull(t, map[string]string{".yci.py": `from yci.retry import IncrementalRetry
from yci.run import Bash

def test_generator(build_id, pull):
    yield IncrementalRetry(retries=3, retry_increment=600,
        Bash('./test.sh', env={'ENV_VAR_1': 'x'}))
`})
	sha := pr.GetHead().GetSHA()
	r.publish(t, pr.GetNumber(), sha, "d1")
	final := r.waitFinal(t, sha, "yci")
	s := final["yci"]
	if s.GetState() != "error" || !strings.Contains(s.GetDescription(), ".yci.py") {
		t.Errorf("status %s %q, want error naming .yci.py", s.GetState(), s.GetDescription())
	}
	if len(final) != 1 {
		t.Errorf("want only the build-wide status, got %s", describe(final))
	}
	b := artifacts.Build{Owner: owner, Repo: repoName, Pull: pr.GetNumber(), Number: 1}
	logPath, _ := r.ws.LogPath(b, configLogName)
	log, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), "Bash(...) first") {
		t.Errorf("config log lacks the fix:\n%s", log)
	}
	if !strings.HasSuffix(s.GetTargetURL(), "/pulls/1/1/yci/out.txt") {
		t.Errorf("target URL %q", s.GetTargetURL())
	}
}

// TestTestOfASupersededHeadIsNotRun: a queued test whose head was
// superseded is dropped before its copy is made. A job that carries its
// branches and when its pull was read learns it from the head record,
// without asking GitHub; one whose head has no record, and an older
// worker's job, read the pull request.
func TestTestOfASupersededHeadIsNotRun(t *testing.T) {
	t.Parallel()
	const pullRoute = "GET /repos/{owner}/{repo}/pulls/{number}"
	for _, tc := range []struct {
		name      string
		carries   bool // the job names its branches and pull's updated_at
		recorded  bool // the receiver recorded the newer head
		wantReads int
	}{
		{"job_with_a_head_record_is_dropped_without_reading", true, true, 0},
		{"job_whose_head_has_no_record_reads_the_pull", true, false, 1},
		{"older_job_reads_the_pull", false, true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t)
			pr := r.openPull(t, map[string]string{
				".yci.py": "from yci.run import Bash\n\ndef test_generator(build_id, pull):\n    yield Bash('touch ../../ran-$YCI_SHA', name='t')\n",
			})
			old := pr.GetHead().GetSHA()
			newer, err := r.gh.PushPull(owner, repoName, pr.GetNumber(), map[string]string{"x": "y\n"})
			if err != nil {
				t.Fatal(err)
			}
			repo := events.Repo{Owner: owner, Name: repoName}
			pushedAt := time.Now().UTC()
			if tc.recorded {
				if _, err := r.bus.Heads().RecordHead(context.Background(), repo, pr.GetNumber(), events.HeadRecord{SHA: newer, UpdatedAt: pushedAt}); err != nil {
					t.Fatal(err)
				}
			}
			// A test job for the old head, as if queued a minute before the push.
			job := events.TestJob{
				Version: events.Version, Repo: repo,
				Number: pr.GetNumber(), HeadSHA: old, Build: 1, Attempt: 1,
				Test: events.TestSpec{Name: "t", Command: "touch ../../ran-$YCI_SHA"},
			}
			if tc.carries {
				job.BaseRef, job.CloneURL = pr.GetBase().GetRef(), pr.GetBase().GetRepo().GetCloneURL()
				job.HeadRef, job.PullUpdatedAt = pr.GetHead().GetRef(), pushedAt.Add(-time.Minute)
			}
			reads := r.gh.Requests().ByRoute[pullRoute]
			if err := r.bus.Queue().PublishTest(context.Background(), job); err != nil {
				t.Fatal(err)
			}
			s := r.waitFinal(t, old, "yci/t")["yci/t"]
			if s.GetState() != "error" || !strings.Contains(s.GetDescription(), newer[:7]) {
				t.Errorf("status %s %q, want error naming the newer head", s.GetState(), s.GetDescription())
			}
			if got := r.gh.Requests().ByRoute[pullRoute] - reads; got != tc.wantReads {
				t.Errorf("the test read the pull request %d times, want %d", got, tc.wantReads)
			}
			// It never ran, so it has no out.txt: the link is the build's page.
			if u := s.GetTargetURL(); !strings.HasSuffix(u, "/pulls/"+strconv.Itoa(pr.GetNumber())+"/1/index.html") {
				t.Errorf("the dropped test links %q, want the build page (it has no log)", u)
			}
			b := artifacts.Build{Owner: owner, Repo: repoName, Pull: pr.GetNumber(), Number: 1}
			dir, _ := r.ws.BuildDir(b)
			if exists(filepath.Join(dir, "ran-"+old)) {
				t.Error("the superseded test ran")
			}
			if src, _ := r.ws.RunSourceDir(b, "t", 0); exists(src) {
				t.Errorf("the dropped test's copy %s is left behind", src)
			}
			if link, _ := r.ws.LogLink(b, "t"); link != "" {
				if _, err := os.Lstat(link); err == nil {
					t.Errorf("the dropped test's log is linked at %s", link)
				}
			}
			// The head was known stale before anything was prepared: the
			// box never fetched the old commit.
			if r.ws.HasCommit(context.Background(), owner, repoName, old) {
				t.Error("the mirror fetched the old head for a test known to be stale")
			}
		})
	}
}

func TestFinalStatusGitHubRefusesIsSentLaterWithoutRerunningTheTest(t *testing.T) {
	t.Parallel()
	// A wait GitHub asks for that is longer than the reporter may sleep
	// comes back as "retry later".
	r := newRig(t)
	pr := r.openPull(t, map[string]string{
		".yci.py": "from yci.run import Bash\n\ndef test_generator(build_id, pull):\n    yield Bash('echo ran >> ../../runs; while [ ! -e ../../go ]; do sleep 0.05; done', name='t')\n",
	})
	sha := pr.GetHead().GetSHA()
	r.publish(t, pr.GetNumber(), sha, "d1")
	r.waitFor(t, sha, func(m map[string]github.RepoStatus) bool {
		s := m["yci/t"]
		return strings.HasPrefix(s.GetDescription(), "running")
	})
	r.gh.FailNext("POST", "/repos/"+owner+"/"+repoName+"/statuses", 1, 403, http.Header{"Retry-After": {"1"}})
	dir, _ := r.ws.BuildDir(artifacts.Build{Owner: owner, Repo: repoName, Pull: pr.GetNumber(), Number: 1})
	if err := os.WriteFile(filepath.Join(dir, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if s := r.waitFinal(t, sha, "yci/t")["yci/t"]; s.GetState() != "success" {
		t.Fatalf("final %s %q, want success", s.GetState(), s.GetDescription())
	}
	runs, err := os.ReadFile(filepath.Join(dir, "runs"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(runs), "ran"); n != 1 {
		t.Errorf("the test ran %d times, want once", n)
	}
}

// busQueue is the worker's Queue made of a Bus's parts, as cmd/worker
// wires it; bus is kept for the other parts a test turns on.
type busQueue struct {
	*events.Queue
	*events.Registry
	*events.Heads
	bus *events.Bus
}

func queueOf(b *events.Bus) busQueue { return busQueue{b.Queue(), b.Registry(), b.Heads(), b} }
