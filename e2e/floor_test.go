package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/yourci/yourci/pkg/sandbox"
	"github.com/yourci/yourci/pkg/sandbox/sandboxtest"
)

// The floor is the least a CI must do between a push and its test's first
// instruction, with nothing in between: fetch into a bare mirror, a
// checkout borrowing the mirror's objects (git, outside the sandbox, as
// the worker runs it), then .yci.py evaluated by python3 (against
// stand-ins of the yci classes) and bash started on the command it
// yields, each inside bubblewrap, as the worker must run them.

// floorEvaluator runs .yci.py's test_generator and prints each command.
var floorEvaluator = map[string]string{
	"yci/__init__.py": "",
	"yci/run.py": `class Bash:
    def __init__(self, command, env=None, name=None, timeout=None):
        self.command, self.env, self.name, self.timeout = command, env or {}, name, timeout
`,
	"yci/retry.py": `class IncrementalRetry:
    def __init__(self, test, retries=0, retry_increment=0):
        self.test, self.retries, self.retry_increment = test, retries, retry_increment
`,
	"eval.py": `import runpy
for t in runpy.run_path('.yci.py')['test_generator'](1, {}):
    print(getattr(t, 'test', t).command)
`,
}

// floor measures the floor against the stack's repository.
type floor struct {
	s      *stack
	box    *sandbox.Bwrap
	dir    string
	mirror string
	url    string
	auth   string
	python string
	runs   int
}

// newFloor readies a warm bare mirror of the stack's repository, as a
// worker has after its first build, and a bubblewrap sandbox with the
// worker's defaults.
func newFloor(s *stack, cloneURL string) *floor {
	s.tb.Helper()
	dir := filepath.Join(s.dir, "floor")
	for name, text := range floorEvaluator {
		path := filepath.Join(dir, "eval", name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			s.tb.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			s.tb.Fatal(err)
		}
	}
	f := &floor{s: s, box: sandboxtest.New(s.tb, sandbox.Options{}), dir: dir, mirror: filepath.Join(dir, "mirror"), url: cloneURL,
		auth: "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("x-access-token:"+s.gh.Token()))}
	// The python the worker's sandbox finds, as cmd/worker looks it up.
	python, err := f.box.LookPath("python3")
	if err != nil {
		s.tb.Fatal(err)
	}
	f.python = python
	f.git(s.ctx, "", "init", "--quiet", "--bare", f.mirror)
	f.git(s.ctx, "", "-c", "http.extraHeader="+f.auth, "--git-dir="+f.mirror, "fetch", "--quiet", "--", f.url, "+refs/heads/*:refs/heads/*", "+refs/pull/*:refs/pull/*")
	return f
}

// git runs git with args in dir and returns its standard output; an
// error fails the test, so only the test's goroutine may call it.
func (f *floor) git(ctx context.Context, dir string, args ...string) []byte {
	f.s.tb.Helper()
	out, err := f.runGit(ctx, dir, args...)
	if err != nil {
		f.s.tb.Fatal(err)
	}
	return out
}

// runGit is git for any goroutine: it returns the error.
func (f *floor) runGit(ctx context.Context, dir string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL="+os.DevNull)
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("git %v: %w\n%s", args, err, errOut.Bytes())
	}
	return out, nil
}

// confined runs name with args in dir inside the sandbox, dir writable
// and readOnly visible, and returns its standard output.
func (f *floor) confined(ctx context.Context, dir string, env, readOnly []string, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Env = dir, append(os.Environ(), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	done, err := f.box.Confine(cmd, []string{dir}, readOnly)
	if err != nil {
		return nil, fmt.Errorf("confining %s: %w", name, err)
	}
	err = cmd.Run()
	if derr := done(); err == nil {
		err = derr
	}
	if err != nil {
		return nil, fmt.Errorf("%s in the sandbox: %w\n%s", name, err, errOut.Bytes())
	}
	return out.Bytes(), nil
}

// fetch brings the mirror up to date with the repository, as a worker's
// fetch does.
func (f *floor) fetch(ctx context.Context) error {
	_, err := f.runGit(ctx, "", "-c", "http.extraHeader="+f.auth, "--git-dir="+f.mirror, "fetch", "--quiet", "--prune", "--no-tags", "--no-write-fetch-head", "--",
		f.url, "+refs/heads/*:refs/heads/*", "+refs/pull/*:refs/pull/*")
	return err
}

// prepare does a build's work before its tests, for head sha of a pull
// request into main, in the new directory build: the files changed since
// the merge base, the head checked out there (checkout), and .yci.py
// evaluated there in the sandbox. It returns the command of each test
// .yci.py yields.
func (f *floor) prepare(ctx context.Context, sha, build string) ([]string, error) {
	out, err := f.runGit(ctx, "", "--git-dir="+f.mirror, "merge-base", "refs/heads/main", sha)
	if err != nil {
		return nil, err
	}
	if _, err := f.runGit(ctx, "", "--git-dir="+f.mirror, "diff-tree", "-r", "-z", "--name-only", "--no-renames", strings.TrimSpace(string(out)), sha); err != nil {
		return nil, err
	}
	if err := f.checkout(ctx, sha, build); err != nil {
		return nil, err
	}
	evalDir := filepath.Join(f.dir, "eval")
	out, err = f.confined(ctx, build, []string{"PYTHONPATH=" + evalDir}, []string{evalDir, f.mirror}, f.python, filepath.Join(evalDir, "eval.py"))
	if err != nil {
		return nil, err
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n"), nil
}

// checkout makes the new directory dir a checkout of sha of its own that
// borrows the mirror's objects, as "git clone --shared --no-checkout"
// followed by a checkout would: its .git is written here rather than by
// git (HEAD, an empty refs directory, objects/info/alternates naming the
// mirror's objects), and one git checkout fills the work tree. A clone
// costs three processes (git, sh, git-upload-pack), which the worker does
// not spend either (artifacts.Checkouts.Checkout), and a floor above the
// service's own work would measure nothing.
func (f *floor) checkout(ctx context.Context, sha, dir string) error {
	gitDir := filepath.Join(dir, ".git")
	for _, d := range []string{"refs", filepath.Join("objects", "info")} {
		if err := os.MkdirAll(filepath.Join(gitDir, d), 0o755); err != nil {
			return fmt.Errorf("making a checkout's .git: %w", err)
		}
	}
	files := map[string]string{
		"HEAD": "ref: refs/heads/main\n",
		filepath.Join("objects", "info", "alternates"): filepath.Join(f.mirror, "objects") + "\n",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(gitDir, name), []byte(text), 0o644); err != nil {
			return fmt.Errorf("making a checkout's .git: %w", err)
		}
	}
	_, err := f.runGit(ctx, dir, "checkout", "--quiet", "--detach", sha)
	return err
}

// test runs command, a test of head sha, in the sandbox in dir, a
// checkout of sha, and returns its output.
func (f *floor) test(ctx context.Context, dir, sha, command string) ([]byte, error) {
	return f.confined(ctx, dir, []string{"YCI_SHA=" + sha}, []string{f.mirror}, "/bin/bash", "-c", command)
}

// floorRun is one measure of the floor: from its start to the test's first
// instruction (total), and to the end of .yci.py's evaluation (prepared).
type floorRun struct {
	total, prepared time.Duration
}

// measure does the floor's work for sha and returns the time from its
// start to the first instruction of the test, which prints its start
// (stampRe), and to the end of the evaluation. The test runs in the
// build's checkout, where .yci.py was evaluated.
func (f *floor) measure(sha string) floorRun {
	f.s.tb.Helper()
	f.runs++
	ctx, cancel := context.WithTimeout(f.s.ctx, time.Minute)
	defer cancel()
	build := filepath.Join(f.dir, "builds", strconv.Itoa(f.runs))
	started := time.Now()
	err := f.fetch(ctx)
	var commands []string
	if err == nil {
		commands, err = f.prepare(ctx, sha, build)
	}
	prepared := time.Since(started)
	var out []byte
	if err == nil {
		out, err = f.test(ctx, build, sha, commands[0])
	}
	if err != nil {
		f.s.tb.Fatalf("the floor of %.7s: %v", sha, err)
	}
	return floorRun{total: stampOf(f.s.tb, out).Sub(started), prepared: prepared}
}

// burst does the floor's work for a burst of heads, lanes at a time, and
// returns how long it took and how many tests ran: one fetch, which
// brings every head (they were all pushed before it, as a worker's
// fetches for a burst coalesce into one, see
// artifacts.Mirrors.UpdateMirrorSince), then each lane takes the next
// head, prepares it once (prepare) and runs each of its tests in a
// checkout of its own in the sandbox, until none is left.
func (f *floor) burst(heads []string, lanes int) (took time.Duration, tests int, err error) {
	ctx, cancel := context.WithTimeout(f.s.ctx, waitLimit)
	defer cancel()
	next := make(chan int, len(heads))
	for i := range heads {
		next <- i
	}
	close(next)
	started := time.Now()
	if err := f.fetch(ctx); err != nil {
		return 0, 0, err
	}
	var ran atomic.Int64
	errs := make([]error, lanes)
	var wg sync.WaitGroup
	for lane := range lanes {
		wg.Go(func() {
			for i := range next {
				n, err := f.build(ctx, heads[i], filepath.Join(f.dir, "burst", strconv.Itoa(i)))
				ran.Add(int64(n))
				if err != nil {
					errs[lane] = fmt.Errorf("the floor of %.7s: %w", heads[i], err)
					cancel()
					return
				}
			}
		})
	}
	wg.Wait()
	return time.Since(started), int(ran.Load()), errors.Join(errs...)
}

// build prepares head sha in dir and runs each of its tests in a checkout
// of its own there, one after the other, and returns how many ran.
func (f *floor) build(ctx context.Context, sha, dir string) (int, error) {
	commands, err := f.prepare(ctx, sha, filepath.Join(dir, "source"))
	if err != nil {
		return 0, err
	}
	for i, command := range commands {
		test := filepath.Join(dir, strconv.Itoa(i))
		if err := f.checkout(ctx, sha, test); err != nil {
			return i, err
		}
		if _, err := f.test(ctx, test, sha, command); err != nil {
			return i, err
		}
	}
	return len(commands), nil
}
