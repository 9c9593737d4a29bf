// Package localrun runs a checkout's .yci.py matrix on this machine, without
// GitHub or a queue: the same evaluator, runner, retries and out.txt logs as
// the service. It is how a user tries a .yci.py before pushing it, and how a
// newcomer sees the product work in one command.
package localrun

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/yourci/yourci/pkg/pipeline"
)

// Options says what to run and where its logs go.
type Options struct {
	// Source is the checkout whose .yci.py is evaluated. Its working tree,
	// uncommitted changes included, is copied for every test.
	Source string
	// Workspace is where builds are written: local/<name>/<build>/<test>/.
	Workspace string
	// Jobs is how many tests run at once; values below 1 mean 1.
	Jobs int
	// Evaluator and Runner default to their zero values' behaviour.
	Evaluator *pipeline.Evaluator
	Runner    *pipeline.Runner
	// Progress receives a line per finished attempt; nil discards them.
	Progress io.Writer
	// Sleep waits between attempts; nil waits for real, or until ctx ends.
	Sleep func(context.Context, time.Duration) error
}

// TestReport is what became of one test of the matrix.
type TestReport struct {
	Test     pipeline.Test
	Final    pipeline.Result
	Attempts []pipeline.Result
	Log      string
	// Err is a failure of this machine (a copy or a log that could not be
	// written), as opposed to a test that failed.
	Err error
}

// Passed reports whether the test's last attempt passed.
func (r TestReport) Passed() bool { return r.Err == nil && r.Final.Outcome == pipeline.Passed }

// Report is the outcome of a local build.
type Report struct {
	Build int
	Dir   string
	Tests []TestReport
}

// Passed reports whether every test passed.
func (r Report) Passed() bool {
	for _, t := range r.Tests {
		if !t.Passed() {
			return false
		}
	}
	return len(r.Tests) > 0
}

// Run evaluates the matrix of opts.Source and runs every test. An error
// means the build could not run at all: a .yci.py problem comes back as a
// *pipeline.ConfigError, with the details a user needs to fix it.
func Run(ctx context.Context, opts Options) (Report, error) {
	src, err := filepath.Abs(opts.Source)
	if err != nil {
		return Report{}, fmt.Errorf("resolving %s: %w", opts.Source, err)
	}
	if fi, err := os.Stat(src); err != nil || !fi.IsDir() {
		return Report{}, fmt.Errorf("%s is not a directory of a checkout", opts.Source)
	}
	eval := opts.Evaluator
	if eval == nil {
		eval = &pipeline.Evaluator{}
	}
	runner := opts.Runner
	if runner == nil {
		runner = &pipeline.Runner{}
	}
	buildsDir := filepath.Join(opts.Workspace, "local", projectName(src))
	build, dir, err := nextBuild(buildsDir)
	if err != nil {
		return Report{}, err
	}
	pull, err := json.Marshal(localPull(ctx, src))
	if err != nil {
		return Report{}, fmt.Errorf("encoding the local pull: %w", err)
	}
	tests, err := eval.Evaluate(ctx, src, build, pull)
	if err != nil {
		return Report{Build: build, Dir: dir}, err
	}
	report := Report{Build: build, Dir: dir, Tests: make([]TestReport, len(tests))}
	jobs := max(opts.Jobs, 1)
	slots := make(chan struct{}, jobs)
	var wg sync.WaitGroup
	var progress sync.Mutex
	for i, t := range tests {
		wg.Go(func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			report.Tests[i] = runTest(ctx, opts, runner, src, dir, build, t)
			if opts.Progress != nil {
				progress.Lock()
				fmt.Fprintln(opts.Progress, progressLine(report.Tests[i]))
				progress.Unlock()
			}
		})
	}
	wg.Wait()
	return report, nil
}

func runTest(ctx context.Context, opts Options, runner *pipeline.Runner, src, dir string, build int, t pipeline.Test) TestReport {
	testDir := filepath.Join(dir, t.Name)
	rep := TestReport{Test: t, Log: filepath.Join(testDir, "out.txt")}
	work := filepath.Join(testDir, "source")
	if err := copyTree(src, work); err != nil {
		rep.Err = fmt.Errorf("copying %s for %s: %w", src, t.Name, err)
		return rep
	}
	sleep := opts.Sleep
	if sleep == nil {
		sleep = sleepCtx
	}
	a := pipeline.Attempt{
		Test:    t,
		Number:  1,
		Dir:     work,
		LogPath: rep.Log,
		Facts:   map[string]string{"YCI_BUILD": strconv.Itoa(build), "YCI_PULL": "0", "YCI_LOCAL": "1"},
	}
	rep.Final, rep.Attempts, rep.Err = pipeline.RunWithRetries(ctx, runner, a, sleep)
	return rep
}

func progressLine(r TestReport) string {
	if r.Err != nil {
		return fmt.Sprintf("%-24s error: %v", r.Test.Name, r.Err)
	}
	return fmt.Sprintf("%-24s %-9s after %d attempt(s), %s  %s",
		r.Test.Name, r.Final.Outcome, len(r.Attempts), r.Final.Duration.Round(time.Millisecond), r.Log)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// projectName names a checkout's builds after its directory, in the
// character set the workspace allows.
func projectName(src string) string {
	name := strings.Trim(unsafeChars.ReplaceAllString(filepath.Base(src), "-"), ".-")
	if name == "" {
		return "checkout"
	}
	return name
}

// nextBuild creates the next numbered build directory. Mkdir is the
// allocation, so two local runs at once never share a build.
func nextBuild(dir string) (int, string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, "", fmt.Errorf("creating %s: %w", dir, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, "", fmt.Errorf("listing builds in %s: %w", dir, err)
	}
	n := 0
	for _, e := range entries {
		if v, err := strconv.Atoi(e.Name()); err == nil && v > n {
			n = v
		}
	}
	for {
		n++
		path := filepath.Join(dir, strconv.Itoa(n))
		err := os.Mkdir(path, 0o755)
		if err == nil {
			return n, path, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return 0, "", fmt.Errorf("creating build %d: %w", n, err)
		}
	}
}

// localPull is the pull request a local build pretends to test, shaped
// like GitHub's so .yci.py files read it the same way.
func localPull(ctx context.Context, src string) map[string]any {
	ref := gitOutput(ctx, src, "symbolic-ref", "--short", "-q", "HEAD")
	if ref == "" {
		ref = "local"
	}
	sha := gitOutput(ctx, src, "rev-parse", "-q", "--verify", "HEAD")
	user := os.Getenv("USER")
	return map[string]any{
		"number": 0,
		"state":  "open",
		"title":  "local run of " + filepath.Base(src),
		"user":   map[string]any{"login": user},
		"head":   map[string]any{"ref": ref, "sha": sha, "label": user + ":" + ref},
		"base":   map[string]any{"ref": ref, "sha": sha},
	}
}

func gitOutput(ctx context.Context, dir string, args ...string) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...)
	out, err := cmd.Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}
