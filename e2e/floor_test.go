package e2e

import (
	"context"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/yourci/yourci/pkg/pipeline"
)

// floorScript is the least a CI must do between a push and its test's first
// instruction, as one shell script with nothing in between: fetch into a
// bare mirror, a shared clone, a checkout, .yci.py evaluated by python3
// (against stand-ins of the yci classes) and bash started on the command it
// yields. Arguments: mirror, clone URL, build directory, sha, evaluator,
// python (resolved as the worker resolves it, past any pyenv shim).
const floorScript = `set -eu
mirror=$1 url=$2 dir=$3 sha=$4 eval=$5 python=$6
git -c "http.extraHeader=$AUTH" --git-dir="$mirror" fetch --quiet --prune --no-tags --no-write-fetch-head -- "$url" \
	'+refs/heads/*:refs/heads/*' '+refs/pull/*:refs/pull/*'
git clone --quiet --shared --no-checkout "$mirror" "$dir"
cd "$dir"
git checkout --quiet --detach "$sha"
cmd=$("$python" "$eval")
YCI_SHA=$sha exec bash -c "$cmd"
`

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

// floor measures floorScript against the stack's repository.
type floor struct {
	s      *stack
	dir    string
	mirror string
	url    string
	auth   string
	python string
	runs   int
}

// newFloor readies a warm bare mirror of the stack's repository, as a
// worker has after its first build.
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
	f := &floor{s: s, dir: dir, mirror: filepath.Join(dir, "mirror"), url: cloneURL,
		auth: "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("x-access-token:"+s.gh.Token()))}
	python, err := pipeline.ResolvePython(s.ctx, "python3")
	if err != nil {
		s.tb.Fatal(err)
	}
	f.python = python
	f.git("init", "--quiet", "--bare", f.mirror)
	f.git("-c", "http.extraHeader="+f.auth, "--git-dir="+f.mirror, "fetch", "--quiet", "--", f.url, "+refs/heads/*:refs/heads/*", "+refs/pull/*:refs/pull/*")
	return f
}

func (f *floor) git(args ...string) {
	f.s.tb.Helper()
	if out, err := exec.CommandContext(f.s.ctx, "git", args...).CombinedOutput(); err != nil {
		f.s.tb.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

// measure runs the script for sha and returns the time from its start to
// the test's timestamp, which the stack's stamp test writes.
func (f *floor) measure(sha string) time.Duration {
	f.s.tb.Helper()
	f.runs++
	ctx, cancel := context.WithTimeout(f.s.ctx, time.Minute)
	defer cancel()
	build := filepath.Join(f.dir, "builds", strconv.Itoa(f.runs))
	cmd := exec.CommandContext(ctx, "bash", "-c", floorScript, "floor", f.mirror, f.url, build, sha, filepath.Join(f.dir, "eval", "eval.py"), f.python)
	cmd.Env = append(os.Environ(), "AUTH="+f.auth, "PYTHONPATH="+filepath.Join(f.dir, "eval"), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL="+os.DevNull)
	started := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		f.s.tb.Fatalf("floor script: %v\n%s", err, out)
	}
	return startedAt(f.s.tb.(*testing.B), filepath.Join(f.s.marks, "start-"+sha)).Sub(started)
}
