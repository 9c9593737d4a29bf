package sandbox_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/yourci/yourci/pkg/pipeline"
	"github.com/yourci/yourci/pkg/pipeline/pipelinetest"
	"github.com/yourci/yourci/pkg/sandbox"
	"github.com/yourci/yourci/pkg/sandbox/sandboxtest"
)

// confinedEvaluator is an Evaluator whose python runs in box.
func confinedEvaluator(t testing.TB, box *sandbox.Bwrap, timeout time.Duration) *pipeline.Evaluator {
	t.Helper()
	inside, err := box.LookPath("python3")
	if err != nil {
		t.Fatal(err)
	}
	python, err := pipeline.ResolvePython(t.Context(), inside)
	if err != nil {
		t.Fatal(err)
	}
	return &pipeline.Evaluator{Python: python, Sandbox: box, Timeout: timeout}
}

func checkout(t testing.TB, yci string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "source")
	write(t, filepath.Join(dir, pipeline.ConfigFile), yci)
	return dir
}

func TestEvaluateInSandbox(t *testing.T) {
	t.Parallel()
	box := sandboxtest.New(t, sandbox.Options{})
	secret := filepath.Join(t.TempDir(), "secret")
	write(t, secret, "s3cret\n")
	// The evaluation reports what it found as the name of its one test.
	dir := checkout(t, `import os
from yci.run import Bash

def test_generator(build_id, pull):
    seen = []
    if os.path.exists(`+"'"+secret+"'"+`):
        seen.append('secret')
    if len([p for p in os.listdir('/proc') if p.isdigit()]) > 10:
        seen.append('procs')
    try:
        open('planted', 'w').close()
        seen.append('wrote')
    except OSError:
        pass
    with open(os.path.expanduser('~/planted'), 'w') as f:
        f.write('x')
    yield Bash('true', name='-'.join(seen) or 'clean')
`)
	e := confinedEvaluator(t, box, 30*time.Second)
	for i := range 2 {
		tests, err := e.Evaluate(t.Context(), dir, i+1, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(tests) != 1 || tests[0].Name != "clean" {
			t.Errorf("evaluation %d saw %+v; want it to see nothing", i+1, tests)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "planted")); err == nil {
		t.Error("the evaluation wrote into the checkout")
	}
}

// TestEvaluateInSandboxWritesNoCache: the evaluation of a repository
// whose tests share a cache gets no cache of its own (its caches live in
// its HOME and vanish): it reads .yci.py and writes nothing on the host,
// so it cannot leave a file for the repository's next test to find.
func TestEvaluateInSandboxWritesNoCache(t *testing.T) {
	t.Parallel()
	cache := filepath.Join(t.TempDir(), "cache")
	if err := os.MkdirAll(cache, 0o700); err != nil {
		t.Fatal(err)
	}
	box := sandboxtest.New(t, sandbox.Options{SharesOf: func(string) (sandbox.Shares, bool, error) {
		return sandbox.Shares{Cache: cache}, true, nil
	}})
	dir := checkout(t, `import os
from yci.run import Bash

def test_generator(build_id, pull):
    seen = []
    if os.environ.get('XDG_CACHE_HOME') == `+"'"+cache+"'"+`:
        seen.append('given')
    # Where the path is visible at all, it is the sandbox's own /tmp: a
    # write may succeed inside, but must not reach the host.
    for path in (`+"'"+cache+"/planted'"+`, os.path.join(os.environ.get('GOCACHE', '/nonexistent'), 'planted')):
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            open(path, 'w').close()
        except OSError:
            pass
    yield Bash('true', name='-'.join(seen) or 'clean')
`)
	tests, err := confinedEvaluator(t, box, 30*time.Second).Evaluate(t.Context(), dir, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(tests) != 1 || tests[0].Name != "clean" {
		t.Errorf("the evaluation saw %+v; want it given no cache", tests)
	}
	entries, err := os.ReadDir(cache)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("the repository's cache holds %d entries after an evaluation; want none", len(entries))
	}
}

func TestEvaluateInSandboxStopsAHangAndLocatesIt(t *testing.T) {
	t.Parallel()
	box := sandboxtest.New(t, sandbox.Options{})
	dir := checkout(t, `import time

def test_generator(build_id, pull):
    time.sleep(1000)
    yield None
`)
	_, err := confinedEvaluator(t, box, 3*time.Second).Evaluate(t.Context(), dir, 1, nil)
	var cerr *pipeline.ConfigError
	if !errors.As(err, &cerr) {
		t.Fatalf("Evaluate error = %v, want a *ConfigError", err)
	}
	if want := ".yci.py:4: evaluation stopped after 3s"; !strings.HasPrefix(cerr.Error(), want) {
		t.Errorf("Error() = %q, want it to start with %q (python's stacks, dumped on SIGUSR1)", cerr.Error(), want)
	}
}

// TestEvaluationAttacksInSandbox plays every attack on the channels back
// from an evaluation with python in bubblewrap.
func TestEvaluationAttacksInSandbox(t *testing.T) {
	t.Parallel()
	box := sandboxtest.New(t, sandbox.Options{})
	pipelinetest.Play(t, confinedEvaluator(t, box, 3*time.Second))
}
