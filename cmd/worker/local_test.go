package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/yourci/yourci/pkg/sandbox/sandboxtest"
)

// fixtureGit runs git for a fixture repository, with a fixed identity and
// no machine or user configuration.
func fixtureGit(t *testing.T, dir string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=Test", "GIT_AUTHOR_EMAIL=test@example.com",
		"GIT_COMMITTER_NAME=Test", "GIT_COMMITTER_EMAIL=test@example.com")
	out, err := cmd.Output()
	if err != nil {
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			t.Fatalf("git %v: %v: %s", args, err, exitErr.Stderr)
		}
		t.Fatalf("git %v: %v", args, err)
	}
	return strings.TrimSpace(string(out))
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// vcsProbe is a local test that reads its copy's history and builds a tiny
// Go module with VCS stamping, printing what the go command compiled
// (-x) so that a second run can show what the cache spared it. -trimpath
// keeps the copy's path, new with every build, out of the cache's keys:
// without it the module's own packages compile again in every build (the
// standard library and dependencies still come from the cache).
const vcsProbe = `from yci.run import Bash

def test_generator(build_id, pull):
    yield Bash('./probe.sh', name='vcs')
`

const vcsProbeScript = `#!/bin/bash
set -euo pipefail
export PATH="$GOBIN_DIR:$PATH" GOPROXY=off GOTOOLCHAIN=local GOFLAGS=
echo "commits: $(git log --oneline | wc -l)"
echo "describe: $(git describe --tags)"
go build -buildvcs=true -trimpath -x -o "$TMPDIR_BIN/m" . 2> build.log
{ grep '/compile ' build.log || true; } | grep -o -- ' -p [^ ]*' | sed 's/^ -p /compiled: /' || true
go version -m "$TMPDIR_BIN/m" | sed -n 's/^[[:space:]]*build[[:space:]]*vcs\.revision=/revision: /p'
echo "cache: $XDG_CACHE_HOME"
`

// In -local -sandbox bwrap, a test's copy reads the history it borrows from
// the user's repository (git log, git describe --tags, go build
// -buildvcs=true: issue 15), and the checkout's cache outlives the run, so
// the second run compiles only the package that changed.
func TestLocalSandboxSeesHistoryAndKeepsTheCache(t *testing.T) {
	t.Parallel()
	if !sandboxtest.Available(t) {
		t.Skip("bubblewrap not usable")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed: %v", err)
	}
	if goBin, err = filepath.EvalSymlinks(goBin); err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	writeFiles(t, src, map[string]string{
		".yci.py":    vcsProbe,
		"go.mod":     "module example.com/m\n\ngo 1.21\n",
		"lib/lib.go": "package lib\n\n// N is a number.\nfunc N() int { return 1 }\n",
		"main.go":    "package main\n\nimport \"example.com/m/lib\"\n\nfunc main() { println(lib.N()) }\n",
	})
	probe := strings.ReplaceAll(vcsProbeScript, "$GOBIN_DIR", filepath.Dir(goBin))
	probe = strings.ReplaceAll(probe, "$TMPDIR_BIN", "/tmp")
	if err := os.WriteFile(filepath.Join(src, "probe.sh"), []byte(probe), 0o755); err != nil {
		t.Fatal(err)
	}
	fixtureGit(t, src, "init", "--quiet", "--initial-branch=main")
	fixtureGit(t, src, "add", ".")
	fixtureGit(t, src, "commit", "--quiet", "-m", "first")
	fixtureGit(t, src, "tag", "--annotate", "--message=release", "v0.1.0")
	writeFiles(t, src, map[string]string{"README": "second\n"})
	fixtureGit(t, src, "add", ".")
	fixtureGit(t, src, "commit", "--quiet", "-m", "second")
	head := fixtureGit(t, src, "rev-parse", "HEAD")
	short := fixtureGit(t, src, "rev-parse", "--short", "HEAD")
	workspace := t.TempDir()

	run1 := runLocalProbe(t, src, workspace)
	for _, want := range []string{"commits: 2", "describe: v0.1.0-1-g" + short, "revision: " + head,
		"compiled: example.com/m/lib", "compiled: main", "compiled: runtime",
		"cache: " + filepath.Join(workspace, "local", filepath.Base(src), ".cache")} {
		if !strings.Contains(run1, want) {
			t.Errorf("first run's log lacks %q:\n%s", want, run1)
		}
	}

	// Only main.go changes (uncommitted): the second run compiles main and
	// takes the library and the runtime from the cache the first one left.
	writeFiles(t, src, map[string]string{"main.go": "package main\n\nimport \"example.com/m/lib\"\n\nfunc main() { println(lib.N() + 1) }\n"})
	run2 := runLocalProbe(t, src, workspace)
	if !strings.Contains(run2, "compiled: main") {
		t.Errorf("second run did not compile the changed package:\n%s", run2)
	}
	for _, cached := range []string{"compiled: example.com/m/lib", "compiled: runtime"} {
		if strings.Contains(run2, cached) {
			t.Errorf("second run compiled %q again: the cache did not persist\n%s", cached, run2)
		}
	}
}

// runLocalProbe runs `worker -local src -sandbox bwrap` and returns the
// out.txt of its one test, failing t unless it passed.
func runLocalProbe(t *testing.T, src, workspace string) string {
	t.Helper()
	var stdout, stderr strings.Builder
	code := run(t.Context(), []string{"-local", src, "-workspace", workspace, "-sandbox", "bwrap"}, env(nil), &stdout, &stderr)
	var log []byte
	if m := buildLine.FindStringSubmatch(stdout.String()); m != nil {
		var err error
		if log, err = os.ReadFile(filepath.Join(m[1], "vcs", "out.txt")); err != nil {
			t.Fatal(err)
		}
	}
	if code != 0 || log == nil {
		t.Fatalf("exit %d, want 0 and a log\nstdout:\n%s\nstderr:\n%s\nlog:\n%s", code, stdout.String(), stderr.String(), log)
	}
	return string(log)
}

// buildLine is where -local says its build went.
var buildLine = regexp.MustCompile(`(?m)^build \d+ in (.+)$`)
