package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/go-github/v88/github"

	"github.com/yourci/yourci/pkg/fakegithub"
	"github.com/yourci/yourci/pkg/launch"
	"github.com/yourci/yourci/pkg/limits"
	"github.com/yourci/yourci/pkg/sandbox"
)

const (
	owner = "demo"
	repo  = "hello"
	// matrixSize is how many tests yciPy yields.
	matrixSize = 5
	// maintainer may write to the repository, so her /retest runs.
	maintainer = "maintainer"
)

// yciPy is the seed's matrix in valid Python, with a short retry wait.
const yciPy = `from yci.retry import IncrementalRetry
from yci.run import Bash

def test_generator(build_id, pull):
    for x in ['foo', 'bar']:
        for y in ['x', 'y']:
            yield IncrementalRetry(Bash('./test.sh', env={'ENV_VAR_1': x, 'ENV_VAR_2': y}),
                                   retries=3, retry_increment=2)
    yield Bash('./network.sh', name='network')
`

// networkSh stands in for a test whose network flaked more often than its
// retries allow: it fails on the build's own run and passes when re-run
// ($YCI_RERUN counts re-runs), which is what /retest is for.
const networkSh = `#!/bin/bash
echo "fetching fixtures (run $YCI_RERUN)"
if [ "$YCI_RERUN" = 0 ]; then echo "connection reset by peer"; exit 1; fi
echo "fixtures fetched; ok"
`

// testSh takes a few seconds, so its log can be read while it runs; bar-y
// flakes once per commit, to show a retry through the queue.
const testSh = `#!/bin/bash
echo "testing with ENV_VAR_1=$ENV_VAR_1 ENV_VAR_2=$ENV_VAR_2 on $YCI_SHA"
for i in 1 2 3 4 5; do echo "step $i"; sleep 0.5; done
# The repository's cache outlives an attempt, in the sandbox or not.
marker="${XDG_CACHE_HOME:-../..}/flaked-$YCI_SHA"
if [ "$ENV_VAR_1-$ENV_VAR_2" = bar-y ] && [ ! -e "$marker" ]; then
  touch "$marker"; echo "simulated network failure"; exit 1
fi
echo ok
`

type demo struct {
	out    io.Writer
	bin    string
	dir    string
	secret string

	mu      sync.Mutex
	fetched bool
}

// sandbox is the worker's sandbox backend: bwrap where it works, else
// none, saying so and how to get it.
func (d *demo) sandbox(ctx context.Context) string {
	box, err := sandbox.New(sandbox.Options{})
	if err == nil {
		err = box.Probe(ctx)
	}
	if err != nil {
		d.say("tests run UNSANDBOXED, as you: %v", err)
		d.say("  (on Debian or Ubuntu: apt-get install bubblewrap)")
		return "none"
	}
	d.say("tests run in the bubblewrap sandbox")
	return "bwrap"
}

// limits is the worker's -limits: cgroup where this box lets the worker
// make cgroups, else none, saying so and how to get them.
func (d *demo) limits() string {
	if err := limits.Usable(); err != nil {
		d.say("tests run WITHOUT memory, process or CPU limits: %v", err)
		d.say("  (run as root with cgroup v1 memory and pids, or in a unit with Delegate=yes on cgroup v2)")
		return "none"
	}
	d.say("tests run with memory, process and CPU limits (a cgroup each)")
	return "cgroup"
}

func (d *demo) say(format string, args ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	fmt.Fprintf(d.out, format+"\n", args...)
}

func (d *demo) run(ctx context.Context) error {
	gh, err := fakegithub.New(filepath.Join(d.dir, "github"))
	if err != nil {
		return err
	}
	defer gh.Close()
	d.say("GitHub stand-in at %s", gh.URL())

	logs, logRoot, err := d.serveLogs(filepath.Join(d.dir, "worker"))
	if err != nil {
		return err
	}
	defer logs.Close()
	cfg := launch.Config{Bin: d.bin, Dir: d.dir, GitHubURL: gh.URL(), Token: gh.Token(),
		WebhookSecret: d.secret}
	recv, err := cfg.StartReceiver(ctx, "receiver")
	if err != nil {
		return err
	}
	defer stop(recv.Process)
	cfg.NATSPort = recv.NATSPort
	d.say("receiver at %s (embedded JetStream on 127.0.0.1:%d)", recv.WebhookURL, recv.NATSPort)
	work, err := cfg.StartWorker(ctx, "worker", logRoot, "YCI_JOBS=4", "YCI_SANDBOX="+d.sandbox(ctx), "YCI_LIMITS="+d.limits())
	if err != nil {
		return err
	}
	defer stop(work.Process)
	d.say("worker in %s, logs served at %s", work.Workspace, logRoot)

	if _, err := gh.CreateRepo(owner, repo); err != nil {
		return err
	}
	gh.AddHook(recv.WebhookURL, d.secret)
	if _, err := gh.Commit(owner, repo, "main", map[string]string{"README.md": "hello\n"}, "Initial commit"); err != nil {
		return err
	}
	if _, err := gh.Commit(owner, repo, "feature", map[string]string{".yci.py": yciPy, "test.sh": testSh, "network.sh": networkSh}, "Add tests"); err != nil {
		return err
	}
	pr, err := gh.OpenPull(owner, repo, fakegithub.PullSpec{Head: "feature", Title: "Add tests"})
	if err != nil {
		return err
	}
	d.say("\nopened pull request #%d at %s (webhook: opened)", pr.GetNumber(), pr.GetHead().GetSHA()[:7])
	if err := d.watch(ctx, gh, pr.GetHead().GetSHA()); err != nil {
		return err
	}

	sha, err := gh.PushPull(owner, repo, pr.GetNumber(), map[string]string{"CHANGES": "second commit\n"})
	if err != nil {
		return err
	}
	d.say("\npushed %s to pull request #%d (webhook: synchronize)", sha[:7], pr.GetNumber())
	if err := d.watch(ctx, gh, sha); err != nil {
		return err
	}
	d.summary(gh, sha)
	return d.retest(ctx, gh, pr.GetNumber(), sha)
}

// retest has a maintainer comment /retest on the pull request, as one
// would on GitHub, and prints what YourCI does about it: a reaction on the
// comment, the failed test queued, run and passed in a log of its own.
func (d *demo) retest(ctx context.Context, gh *fakegithub.Server, n int, sha string) error {
	if err := gh.SetPermission(owner, repo, maintainer, "write"); err != nil {
		return err
	}
	// /retest reads the build record, which the summary is written from:
	// once the summary is final, so is every test in the record.
	err := gh.WaitStatuses(ctx, owner, repo, sha, func(latest map[string]github.RepoStatus) bool {
		sum, ok := latest["yci"]
		return ok && sum.GetState() != "pending"
	})
	if err != nil {
		return err
	}
	before := gh.LatestStatuses(owner, repo, sha)["yci/network"]
	c, err := gh.Comment(owner, repo, n, maintainer, "The network flaked again.\n\n/retest\n")
	if err != nil {
		return err
	}
	d.say("\n@%s commented on #%d: \"/retest\" (webhook: issue_comment)", maintainer, n)
	seen := ""
	err = gh.WaitStatuses(ctx, owner, repo, sha, func(latest map[string]github.RepoStatus) bool {
		s := latest["yci/network"]
		if line := s.GetState() + "  " + s.GetDescription(); line != seen {
			seen = line
			d.say("%s  %s  %-12s %-8s %s", time.Now().Format("15:04:05"), sha[:7], "yci/network", s.GetState(), s.GetDescription())
		}
		return s.GetState() == "success"
	})
	if err != nil {
		return err
	}
	for _, r := range gh.Reactions(owner, repo, c.GetID()) {
		d.say("reaction on the comment: %s by %s", r.GetContent(), r.GetUser().GetLogin())
	}
	after := gh.LatestStatuses(owner, repo, sha)["yci/network"]
	d.say("\nthe first run's log is still at  %s", before.GetTargetURL())
	d.say("the re-run's log (the status links here now): %s", after.GetTargetURL())
	d.fetch(ctx, after.GetTargetURL(), "the re-run, done")
	// The summary follows at most one summary interval later.
	err = gh.WaitStatuses(ctx, owner, repo, sha, func(latest map[string]github.RepoStatus) bool {
		sum := latest["yci"]
		return sum.GetState() == "success"
	})
	if err != nil {
		return err
	}
	sum := gh.LatestStatuses(owner, repo, sha)["yci"]
	d.say("\nthe summary after the re-run:\n  yci  %s  %s  %s", sum.GetState(), sum.GetDescription(), sum.GetTargetURL())
	return nil
}

// watch prints every status change of sha until each test's is final, and
// fetches one log over HTTP while its test runs.
func (d *demo) watch(ctx context.Context, gh *fakegithub.Server, sha string) error {
	seen := map[string]string{}
	return gh.WaitStatuses(ctx, owner, repo, sha, func(latest map[string]github.RepoStatus) bool {
		for _, c := range sortedKeys(latest) {
			s := latest[c]
			line := s.GetState() + "  " + s.GetDescription()
			if seen[c] == line {
				continue
			}
			seen[c] = line
			d.say("%s  %s  %-12s %-8s %s", time.Now().Format("15:04:05"), sha[:7], c, s.GetState(), s.GetDescription())
			if strings.HasPrefix(s.GetDescription(), "running") && !d.fetched {
				d.fetched = true
				go d.fetchLive(ctx, s.GetTargetURL())
			}
		}
		if len(latest) < matrixSize {
			return false
		}
		for _, s := range latest {
			if s.GetState() == "pending" {
				return false
			}
		}
		return true
	})
}

// fetchLive reads a log over HTTP while its test is still writing it.
func (d *demo) fetchLive(ctx context.Context, url string) {
	time.Sleep(time.Second)
	d.fetch(ctx, url, "while the test runs")
}

// fetch prints a log read over HTTP, as curl would show it.
func (d *demo) fetch(ctx context.Context, url, note string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		d.say("fetching %s: %v", url, err)
		return
	}
	defer resp.Body.Close()
	var lines []string
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 64<<10))
	for sc.Scan() {
		lines = append(lines, "    | "+sc.Text())
	}
	d.say("\n  curl %s  (%s: %s)\n%s\n", url, note, resp.Header.Get("Content-Type"), strings.Join(lines, "\n"))
}

func (d *demo) summary(gh *fakegithub.Server, sha string) {
	d.say("\nfinal statuses of %s, as GitHub shows them:", sha[:7])
	latest := gh.LatestStatuses(owner, repo, sha)
	for _, c := range sortedKeys(latest) {
		s := latest[c]
		d.say("  %-12s %-8s %-40s %s", c, s.GetState(), s.GetDescription(), s.GetTargetURL())
	}
	if s, ok := latest["yci"]; ok {
		d.say("\nbuild page: %s", s.GetTargetURL())
	}
}

func sortedKeys(m map[string]github.RepoStatus) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// serveLogs serves the workspace's out.txt logs and pages (and nothing else) the way
// deploy/nginx/yourci.conf does in production.
func (d *demo) serveLogs(workspace string) (io.Closer, string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	files := http.FileServer(http.Dir(workspace))
	types := map[string]string{"/out.txt": "text/plain; charset=utf-8", "/index.html": "text/html; charset=utf-8", "/build.json": "application/json"}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctype := types[r.URL.Path[strings.LastIndex(r.URL.Path, "/"):]]
		if ctype == "" || strings.Contains(r.URL.Path, "/source/") || strings.Contains(r.URL.Path, "/.") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", ctype)
		if strings.HasSuffix(r.URL.Path, "/index.html") {
			// FileServer would redirect to the directory, which is not served.
			page, err := os.ReadFile(filepath.Join(workspace, filepath.FromSlash(path.Clean(r.URL.Path))))
			if err != nil {
				http.NotFound(w, r)
				return
			}
			http.ServeContent(w, r, "index.html", time.Time{}, bytes.NewReader(page))
			return
		}
		files.ServeHTTP(w, r)
	})}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.say("log server: %v", err)
		}
	}()
	return srv, "http://" + l.Addr().String() + "/", nil
}

func stop(p *launch.Process) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p.Stop(ctx)
}
