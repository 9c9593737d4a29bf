package localrun

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/yourci/yourci/pkg/pipeline"
)

// seedMatrix is the seed design's example, written in valid Python.
const seedMatrix = `from yci.retry import IncrementalRetry
from yci.run import Bash

def test_generator(build_id, pull):
    for x in ['foo', 'bar']:
        for y in ['x', 'y']:
            yield IncrementalRetry(Bash('./test.sh', env={'ENV_VAR_1': x, 'ENV_VAR_2': y}),
                                   retries=3, retry_increment=600)
`

func writeCheckout(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "my project")
	for name, body := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, ".sh") {
			mode = 0o755
		}
		if err := os.WriteFile(path, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// recordSleep records the waits between attempts instead of sleeping.
type recordSleep struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (r *recordSleep) sleep(_ context.Context, d time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.waits = append(r.waits, d)
	return nil
}

func TestRunSeedMatrixGivesFourLogsWithTheirEnv(t *testing.T) {
	t.Parallel()
	src := writeCheckout(t, map[string]string{
		".yci.py": seedMatrix,
		"test.sh": "#!/bin/bash\necho \"vars $ENV_VAR_1 $ENV_VAR_2 build=$YCI_BUILD\"\n",
	})
	ws := t.TempDir()
	sleeper := &recordSleep{}
	rep, err := Run(context.Background(), Options{Source: src, Workspace: ws, Jobs: 2, Sleep: sleeper.sleep})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Passed() {
		t.Fatalf("report not passed: %+v", rep)
	}
	if rep.Build != 1 || rep.Dir != filepath.Join(ws, "local", "my-project", "1") {
		t.Fatalf("build %d in %s", rep.Build, rep.Dir)
	}
	for _, tc := range []struct{ name, want string }{
		{"foo-x", "vars foo x build=1"}, {"foo-y", "vars foo y build=1"},
		{"bar-x", "vars bar x build=1"}, {"bar-y", "vars bar y build=1"},
	} {
		log, err := os.ReadFile(filepath.Join(rep.Dir, tc.name, "out.txt"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(log), tc.want+"\n") {
			t.Errorf("%s log lacks %q:\n%s", tc.name, tc.want, log)
		}
	}
	if len(sleeper.waits) != 0 {
		t.Errorf("passing tests waited %v", sleeper.waits)
	}
	again, err := Run(context.Background(), Options{Source: src, Workspace: ws, Jobs: 4, Sleep: sleeper.sleep})
	if err != nil || again.Build != 2 {
		t.Fatalf("second run: build %d, err %v; want build 2", again.Build, err)
	}
}

func TestRunRetriesFlakyTestWithIncrementalWaits(t *testing.T) {
	t.Parallel()
	src := writeCheckout(t, map[string]string{
		".yci.py": `from yci.retry import IncrementalRetry
from yci.run import Bash

def test_generator(build_id, pull):
    yield IncrementalRetry(Bash('./flaky.sh', name='flaky'), retries=3, retry_increment=5)
`,
		// Fails twice, then passes: the count lives outside the per-attempt copy.
		"flaky.sh": "#!/bin/bash\nn=$(cat \"$COUNTER\" 2>/dev/null || echo 0); echo $((n+1)) > \"$COUNTER\"\n[ \"$n\" -ge 2 ]\n",
	})
	runner := &pipeline.Runner{BaseEnv: append(os.Environ(), "COUNTER="+filepath.Join(t.TempDir(), "count"))}
	sleeper := &recordSleep{}
	rep, err := Run(context.Background(), Options{Source: src, Workspace: t.TempDir(), Runner: runner, Sleep: sleeper.sleep})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Passed() || len(rep.Tests[0].Attempts) != 3 {
		t.Fatalf("want a pass on attempt 3, got %+v", rep.Tests[0])
	}
	if diff := cmp.Diff([]time.Duration{5 * time.Second, 10 * time.Second}, sleeper.waits); diff != "" {
		t.Errorf("waits (-want +got):\n%s", diff)
	}
	log, err := os.ReadFile(rep.Tests[0].Log)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(log), pipeline.LogPrefix+"attempt"); n < 3 {
		t.Errorf("log has %d attempt headers, want 3:\n%s", n, log)
	}
}

func TestRunReportsFailureAndSummary(t *testing.T) {
	t.Parallel()
	src := writeCheckout(t, map[string]string{
		".yci.py": `from yci.run import Bash

def test_generator(build_id, pull):
    yield Bash('true', name='good')
    yield Bash('echo broken; exit 3', name='bad')
`,
	})
	rep, err := Run(context.Background(), Options{Source: src, Workspace: t.TempDir(), Jobs: 2})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Passed() {
		t.Fatal("a build with a failing test passed")
	}
	var out strings.Builder
	if err := rep.WriteSummary(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"TEST", "good", "passed", "bad", "failed", "1 passed, 1 failed"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
}

// TestRunEmptyMatrixSaysNoTests: a .yci.py that yields nothing (say,
// changed_files() found nothing it tests) passes and says so in the
// service's words, not as an empty table.
func TestRunEmptyMatrixSaysNoTests(t *testing.T) {
	t.Parallel()
	src := writeCheckout(t, map[string]string{".yci.py": "def test_generator(build_id, pull):\n    return\n    yield\n"})
	rep, err := Run(context.Background(), Options{Source: src, Workspace: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Passed() {
		t.Error("an empty matrix did not pass")
	}
	var out strings.Builder
	if err := rep.WriteSummary(&out); err != nil {
		t.Fatal(err)
	}
	if got, want := out.String(), "no tests for this change: .yci.py yielded none\n"; got != want {
		t.Errorf("summary %q, want %q", got, want)
	}
}

func TestRunBrokenYciPyIsAConfigError(t *testing.T) {
	t.Parallel()
	src := writeCheckout(t, map[string]string{".yci.py": "def test_generator(build_id, pull)\n    yield 1\n"})
	_, err := Run(context.Background(), Options{Source: src, Workspace: t.TempDir()})
	var cfgErr *pipeline.ConfigError
	if !errors.As(err, &cfgErr) {
		t.Fatalf("err = %v, want a ConfigError", err)
	}
	if cfgErr.Line != 1 || !strings.Contains(cfgErr.File, ".yci.py") {
		t.Errorf("error located at %s:%d, want .yci.py:1", cfgErr.File, cfgErr.Line)
	}
}

func TestRunKeepsUsersCheckoutUntouched(t *testing.T) {
	t.Parallel()
	src := writeCheckout(t, map[string]string{
		".yci.py":  "from yci.run import Bash\n\ndef test_generator(build_id, pull):\n    yield Bash('rm -rf ./* && touch mess', name='vandal')\n",
		"keep.txt": "precious\n",
	})
	if _, err := Run(context.Background(), Options{Source: src, Workspace: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(src, "keep.txt")); err != nil {
		t.Fatalf("test reached the user's checkout: %v", err)
	}
}

func TestProjectName(t *testing.T) {
	for in, want := range map[string]string{"/a/my project": "my-project", "/a/..": "checkout", "/x/.dot": "dot", "/r/ok_1.2": "ok_1.2"} {
		if got := projectName(in); got != want {
			t.Errorf("projectName(%q) = %q, want %q", in, got, want)
		}
	}
}
