package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/yourci/yourci/pkg/sandbox"
	"github.com/yourci/yourci/pkg/sandbox/sandboxtest"
)

// The floor is the least a CI must do between a push and its test's first
// instruction, with nothing in between: fetch into a bare mirror, a shared
// clone and a checkout (git, outside the sandbox, as the worker runs it),
// then .yci.py evaluated by python3 (against stand-ins of the yci classes)
// and bash started on the command it yields, each inside bubblewrap, as
// the worker must run them.

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

// git runs git with args in dir and returns its standard output.
func (f *floor) git(ctx context.Context, dir string, args ...string) []byte {
	f.s.tb.Helper()
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL="+os.DevNull)
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	out, err := cmd.Output()
	if err != nil {
		f.s.tb.Fatalf("git %v: %v\n%s", args, err, errOut.Bytes())
	}
	return out
}

// confined runs name with args in dir inside the sandbox, dir writable
// and readOnly visible, and returns its standard output.
func (f *floor) confined(ctx context.Context, dir string, env, readOnly []string, name string, args ...string) []byte {
	f.s.tb.Helper()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Env = dir, append(os.Environ(), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	done, err := f.box.Confine(cmd, []string{dir}, readOnly)
	if err != nil {
		f.s.tb.Fatal(err)
	}
	err = cmd.Run()
	if derr := done(); err == nil {
		err = derr
	}
	if err != nil {
		f.s.tb.Fatalf("%s in the sandbox: %v\n%s", name, err, errOut.Bytes())
	}
	return out.Bytes()
}

// floorRun is one measure of the floor: from its start to the test's first
// instruction (total), and to the end of .yci.py's evaluation (prepared).
type floorRun struct {
	total, prepared time.Duration
}

// measure does the floor's work for sha and returns the time from its
// start to the first instruction of the test, which prints its start
// (stampRe), and to the end of the evaluation.
func (f *floor) measure(sha string) floorRun {
	f.s.tb.Helper()
	f.runs++
	ctx, cancel := context.WithTimeout(f.s.ctx, time.Minute)
	defer cancel()
	build := filepath.Join(f.dir, "builds", strconv.Itoa(f.runs))
	evalDir := filepath.Join(f.dir, "eval")
	started := time.Now()
	f.git(ctx, "", "-c", "http.extraHeader="+f.auth, "--git-dir="+f.mirror, "fetch", "--quiet", "--prune", "--no-tags", "--no-write-fetch-head", "--",
		f.url, "+refs/heads/*:refs/heads/*", "+refs/pull/*:refs/pull/*")
	mergeBase := strings.TrimSpace(string(f.git(ctx, "", "--git-dir="+f.mirror, "merge-base", "refs/heads/main", sha)))
	f.git(ctx, "", "--git-dir="+f.mirror, "diff-tree", "-r", "-z", "--name-only", "--no-renames", mergeBase, sha)
	f.git(ctx, "", "clone", "--quiet", "--shared", "--no-checkout", f.mirror, build)
	f.git(ctx, build, "checkout", "--quiet", "--detach", sha)
	command := f.confined(ctx, build, []string{"PYTHONPATH=" + evalDir}, []string{evalDir, f.mirror}, f.python, filepath.Join(evalDir, "eval.py"))
	prepared := time.Since(started)
	out := f.confined(ctx, build, []string{"YCI_SHA=" + sha}, []string{f.mirror}, "/bin/bash", "-c", string(bytes.TrimSpace(command)))
	return floorRun{total: stampOf(f.s.tb, out).Sub(started), prepared: prepared}
}
