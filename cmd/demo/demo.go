package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/go-github/v88/github"

	"github.com/yourci/yourci/pkg/fakegithub"
	"github.com/yourci/yourci/pkg/launch"
	"github.com/yourci/yourci/pkg/sandbox"
)

const (
	owner = "demo"
	repo  = "hello"
	// matrixSize is how many tests yciPy yields.
	matrixSize = 4
)

// yciPy is the seed's matrix in valid Python, with a short retry wait.
const yciPy = `from yci.retry import IncrementalRetry
from yci.run import Bash

def test_generator(build_id, pull):
    for x in ['foo', 'bar']:
        for y in ['x', 'y']:
            yield IncrementalRetry(Bash('./test.sh', env={'ENV_VAR_1': x, 'ENV_VAR_2': y}),
                                   retries=3, retry_increment=2)
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
	port, err := launch.FreePort()
	if err != nil {
		return err
	}
	cfg := launch.Config{Bin: d.bin, Dir: d.dir, GitHubURL: gh.URL(), Token: gh.Token(),
		WebhookSecret: d.secret, NATSPort: port}
	recv, err := cfg.StartReceiver(ctx, "receiver")
	if err != nil {
		return err
	}
	defer stop(recv.Process)
	d.say("receiver at %s (embedded JetStream on 127.0.0.1:%d)", recv.WebhookURL, port)
	work, err := cfg.StartWorker(ctx, "worker", logRoot, "YCI_JOBS=4", "YCI_SANDBOX="+d.sandbox(ctx))
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
	if _, err := gh.Commit(owner, repo, "feature", map[string]string{".yci.py": yciPy, "test.sh": testSh}, "Add tests"); err != nil {
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
	d.say("\n  curl %s  (while the test runs: %s)\n%s\n", url, resp.Header.Get("Content-Type"), strings.Join(lines, "\n"))
}

func (d *demo) summary(gh *fakegithub.Server, sha string) {
	d.say("\nfinal statuses of %s, as GitHub shows them:", sha[:7])
	latest := gh.LatestStatuses(owner, repo, sha)
	for _, c := range sortedKeys(latest) {
		s := latest[c]
		d.say("  %-12s %-8s %-40s %s", c, s.GetState(), s.GetDescription(), s.GetTargetURL())
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

// serveLogs serves the workspace's out.txt logs (and nothing else) the way
// deploy/nginx/yourci.conf does in production.
func (d *demo) serveLogs(workspace string) (io.Closer, string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	files := http.FileServer(http.Dir(workspace))
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/out.txt") || strings.Contains(r.URL.Path, "/source/") || strings.Contains(r.URL.Path, "/.") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
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
