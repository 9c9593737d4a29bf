package localrun

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/yourci/yourci/pkg/pipeline"
)

// git runs git for a fixture, with a fixed identity and no machine or user
// configuration.
func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
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

// probe is a test that records what git says in its copy, one "key: value"
// line each, then commits there (which must not reach the user's repo).
const probe = `from yci.run import Bash

def test_generator(build_id, pull):
    yield Bash('./probe.sh', name='probe', env={
        'GIT_CONFIG_GLOBAL': '/dev/null', 'GIT_AUTHOR_NAME': 'T', 'GIT_AUTHOR_EMAIL': 't@t',
        'GIT_COMMITTER_NAME': 'T', 'GIT_COMMITTER_EMAIL': 't@t'})
`

const probeScript = `#!/bin/bash
set -e
echo "head: $(git rev-parse HEAD)"
echo "branch: $(git rev-parse --abbrev-ref HEAD)"
echo "describe: $(git describe --tags --dirty)"
echo "origin: $(git rev-parse origin/main)"
echo "status: $(git status --porcelain | tr '\n' ',')"
echo "facts: $YCI_HEAD_REF $YCI_BASE_REF $YCI_SHA"
git commit --quiet -am "made in the copy"
`

func TestRunGivesEachCopyAGitLikeAClone(t *testing.T) {
	t.Parallel()
	src := writeCheckout(t, map[string]string{".yci.py": probe, "probe.sh": probeScript, "README": "v1\n"})
	git(t, src, "init", "--quiet", "--initial-branch=main")
	git(t, src, "add", ".")
	git(t, src, "commit", "--quiet", "-m", "first")
	git(t, src, "tag", "--annotate", "--message=release", "v1.2")
	head := git(t, src, "rev-parse", "HEAD")
	git(t, src, "update-ref", "refs/remotes/origin/main", head)
	// Uncommitted work: a change to a tracked file and a new file.
	if err := os.WriteFile(filepath.Join(src, "README"), []byte("v2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "new.txt"), []byte("new\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	refsBefore := git(t, src, "for-each-ref")

	rep, err := Run(context.Background(), Options{Source: src, Workspace: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	log, err := os.ReadFile(rep.Tests[0].Log)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Passed() {
		t.Fatalf("probe failed: %+v\n%s", rep.Tests[0], log)
	}
	got := map[string]string{}
	for line := range strings.Lines(string(log)) {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ": "); ok && !strings.HasPrefix(line, pipeline.LogPrefix) {
			got[k] = v
		}
	}
	want := map[string]string{
		"head":     head,
		"branch":   "main",
		"describe": "v1.2-dirty",
		"origin":   head,
		"status":   " M README,?? new.txt,",
		"facts":    "main main " + head,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("what git says in the copy (-want +got):\n%s\nlog:\n%s", diff, log)
	}
	if after := git(t, src, "for-each-ref"); after != refsBefore {
		t.Errorf("the user's refs changed:\n%s\nwas:\n%s", after, refsBefore)
	}
	if got := git(t, src, "status", "--porcelain"); got != "M README\n?? new.txt" && got != " M README\n?? new.txt" {
		t.Errorf("the user's working tree changed: %q", got)
	}
}

func TestRunNeverCopiesTheBuildsDirectory(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// workspace is where builds go, relative to the checkout.
		workspace string
	}{
		{"workspace_is_the_checkout", "."},
		{"workspace_inside_the_checkout", "out/ci"},
		{"workspace_beside_the_checkout", "../elsewhere"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			src := writeCheckout(t, map[string]string{
				".yci.py": "from yci.run import Bash\n\ndef test_generator(build_id, pull):\n    yield Bash('find . -name out.txt | grep . && exit 1 || true', name='t')\n",
				// The project's own directory named local is no output.
				"local/keep.txt": "mine\n",
			})
			// Builds of another project, made from inside this checkout.
			other := filepath.Join(src, "local", "other-project")
			if err := markBuilds(other); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(other, "out.txt"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			ws := filepath.Join(src, tt.workspace)
			for run := 1; run <= 2; run++ {
				rep, err := Run(context.Background(), Options{Source: src, Workspace: ws})
				if err != nil {
					t.Fatal(err)
				}
				if !rep.Passed() {
					log, _ := os.ReadFile(rep.Tests[0].Log)
					t.Fatalf("run %d: a log was copied into the test: %+v\n%s", run, rep.Tests[0], log)
				}
				copied := filepath.Join(rep.Dir, "t", "source")
				if _, err := os.Stat(filepath.Join(copied, "local", "keep.txt")); err != nil {
					t.Errorf("run %d: the project's own local/ was not copied: %v", run, err)
				}
			}
		})
	}
}

func TestRunWithoutRepositorySaysSo(t *testing.T) {
	t.Parallel()
	src := writeCheckout(t, map[string]string{".yci.py": "from yci.run import Bash\n\ndef test_generator(build_id, pull):\n    yield Bash('test ! -e .git', name='t')\n"})
	var progress strings.Builder
	rep, err := Run(context.Background(), Options{Source: src, Workspace: t.TempDir(), Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Passed() {
		t.Errorf("test failed: %+v", rep.Tests[0])
	}
	if !strings.Contains(progress.String(), "no .git") {
		t.Errorf("progress does not say the copies have no .git:\n%s", progress.String())
	}
}

func TestSummaryDurationIsEveryAttemptTogether(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		attempts []time.Duration
		want     string
	}{
		{"one_attempt", []time.Duration{1500 * time.Millisecond}, "1.5s"},
		{"three_attempts", []time.Duration{time.Second, 2 * time.Second, 3 * time.Second}, "6s"},
		{"no_attempt", nil, "0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := TestReport{Test: pipeline.Test{Name: "x", Retries: 2}, Log: "out.txt"}
			for _, d := range tt.attempts {
				tr.Attempts = append(tr.Attempts, pipeline.Result{Outcome: pipeline.Failed, Duration: d})
			}
			if len(tr.Attempts) > 0 {
				tr.Final = tr.Attempts[len(tr.Attempts)-1]
			}
			var out strings.Builder
			if err := (Report{Tests: []TestReport{tr}}).WriteSummary(&out); err != nil {
				t.Fatal(err)
			}
			row := strings.Fields(strings.Split(out.String(), "\n")[1])
			if len(row) < 4 || row[len(row)-2] != tt.want {
				t.Errorf("summary row %q, want duration %s", row, tt.want)
			}
		})
	}
}
