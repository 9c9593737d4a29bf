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

	"github.com/yourci/yourci/pkg/artifacts"
	"github.com/yourci/yourci/pkg/pause"
	"github.com/yourci/yourci/pkg/pipeline"
)

// Options says what to run and where its logs go.
type Options struct {
	// Source is the checkout whose .yci.py is evaluated. Its working tree,
	// uncommitted changes included, is copied for every test, with a .git
	// of its own when Source is a repository's top level (see
	// artifacts.LocalRepo).
	Source string
	// Workspace is where builds are written: local/<name>/<build>/<test>/.
	// The builds directory is never copied into a test, even when it lies
	// inside Source (as with the default workspace, the current directory).
	Workspace string
	// Jobs is how many tests run at once; values below 1 mean 1.
	Jobs int
	// Evaluator and Runner default to their zero values' behaviour.
	Evaluator *pipeline.Evaluator
	Runner    *pipeline.Runner
	// Progress receives a line per finished test, and a note when the
	// copies get no .git; nil discards them.
	Progress io.Writer
	// Sleep waits between attempts; nil waits for real, or until ctx ends.
	Sleep func(context.Context, time.Duration) error
	// Base is what .yci.py's changed_files() compares the working tree
	// with: from the merge base of Base and HEAD, as a pull request into
	// Base would show it. "" means the branch's upstream if it is
	// another branch, else origin/HEAD (artifacts.ReadLocalChange). Given explicitly, a Base
	// that cannot be compared with is an error; by default, a checkout
	// without either gets a note, and changed_files() raises.
	Base string
}

// TestReport is what became of one test of the matrix.
type TestReport struct {
	Test  pipeline.Test
	Final pipeline.Result
	// Attempts are every attempt's result, the last one being Final.
	Attempts []pipeline.Result
	Log      string
	// Err is a failure of this machine (a copy or a log that could not be
	// written), as opposed to a test that failed.
	Err error
}

// Passed reports whether the test's last attempt passed.
func (r TestReport) Passed() bool { return r.Err == nil && r.Final.Outcome == pipeline.Passed }

// Duration is how long the test ran: the sum of its attempts' durations.
// The waits between attempts are left out: they are the retry policy's,
// not the test's, and would hide how slow the test itself is.
func (r TestReport) Duration() time.Duration {
	var d time.Duration
	for _, a := range r.Attempts {
		d += a.Duration
	}
	return d
}

// Report is the outcome of a local build.
type Report struct {
	Build int
	Dir   string
	Tests []TestReport
	// Change is what changed_files() returned; nil when it was not known.
	Change *artifacts.LocalChange
}

// Passed reports whether every test passed. A matrix that yielded none
// passes, as the service's `yci` is success ("no tests for this change"):
// a local run must not fail where the pull request would pass.
func (r Report) Passed() bool {
	for _, t := range r.Tests {
		if !t.Passed() {
			return false
		}
	}
	return true
}

// Run evaluates the matrix of opts.Source and runs every test. An error
// means the build could not run at all: a .yci.py problem comes back as a
// *pipeline.ConfigError, with the details a user needs to fix it.
func Run(ctx context.Context, opts Options) (Report, error) {
	src, err := resolveDir(opts.Source)
	if err != nil {
		return Report{}, fmt.Errorf("%s is not a directory of a checkout: %w", opts.Source, err)
	}
	eval := opts.Evaluator
	if eval == nil {
		eval = &pipeline.Evaluator{}
	}
	runner := opts.Runner
	if runner == nil {
		runner = &pipeline.Runner{}
	}
	places, err := Prepare(src, opts.Workspace)
	if err != nil {
		return Report{}, err
	}
	buildsDir := places.Builds
	build, dir, err := nextBuild(buildsDir)
	if err != nil {
		return Report{}, err
	}
	repo, repoErr := artifacts.ReadLocalRepo(ctx, src)
	if repoErr != nil && opts.Progress != nil {
		fmt.Fprintf(opts.Progress, "note: the tests' copies get no .git: %v\n", repoErr)
	}
	lp := localPull(ctx, src)
	pull, err := json.Marshal(lp)
	if err != nil {
		return Report{}, fmt.Errorf("encoding the local pull: %w", err)
	}
	change, err := readChange(ctx, src, opts, repoErr)
	if err != nil {
		return Report{Build: build, Dir: dir}, err
	}
	var pc *pipeline.Change
	if change != nil {
		pc = &pipeline.Change{Files: change.Files}
	}
	tests, err := eval.EvaluateChange(ctx, src, build, pull, pc)
	if err != nil {
		return Report{Build: build, Dir: dir, Change: change}, err
	}
	report := Report{Build: build, Dir: dir, Tests: make([]TestReport, len(tests)), Change: change}
	jobs := max(opts.Jobs, 1)
	slots := make(chan struct{}, jobs)
	var wg sync.WaitGroup
	var progress sync.Mutex
	for i, t := range tests {
		wg.Go(func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			report.Tests[i] = runTest(ctx, opts, runner, copySpec{src: src, builds: buildsDir, repo: repo}, dir, build, lp, t)
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

// shownChanges is how many changed paths a local run lists before
// counting the rest.
const shownChanges = 20

// readChange learns what the checkout src changes against opts.Base and
// says so on opts.Progress: the base, and the paths .yci.py will see. A
// checkout that is no repository's top level (repoErr says why), or has no
// default base, has no change (nil) and gets a note; a Base given but
// unusable is an error, rather than a -base silently ignored and a
// changed_files() that raises without saying why.
func readChange(ctx context.Context, src string, opts Options, repoErr error) (*artifacts.LocalChange, error) {
	if repoErr != nil {
		if opts.Base != "" {
			return nil, fmt.Errorf("comparing with -base %s: the path must be a git repository's top level: %w", opts.Base, repoErr)
		}
		if opts.Progress != nil {
			fmt.Fprintf(opts.Progress, "note: changed_files() is not available: %v\n", repoErr)
		}
		return nil, nil
	}
	c, err := artifacts.ReadLocalChange(ctx, src, opts.Base)
	if err != nil && opts.Base == "" {
		if opts.Progress != nil {
			fmt.Fprintf(opts.Progress, "note: changed_files() is not available: %v\n", err)
		}
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("comparing with -base %s: %w", opts.Base, err)
	}
	if opts.Progress != nil {
		fmt.Fprintf(opts.Progress, "changes: %d files since %s (merge base %.7s)\n", len(c.Files), c.Base, c.From)
		for i, f := range c.Files {
			if i == shownChanges {
				fmt.Fprintf(opts.Progress, "  ... and %d more\n", len(c.Files)-shownChanges)
				break
			}
			fmt.Fprintf(opts.Progress, "  %s\n", strconv.Quote(f))
		}
	}
	return &c, nil
}

// Places are where the local runs of one checkout keep what outlives a
// build.
type Places struct {
	// Source is the checkout, absolute and free of symlinks.
	Source string
	// Builds is <workspace>/local/<name>, holding the numbered builds. It
	// is never copied into a test and git ignores it.
	Builds string
	// Cache is Builds/.cache: a sandboxed test's XDG_CACHE_HOME (with
	// GOCACHE, GOMODCACHE, PIP_CACHE_DIR and npm_config_cache inside),
	// kept from one local run to the next as the service keeps one per
	// repository. Lying in Builds, it is never copied into a test either.
	Cache string
}

// Prepare creates (when missing) and returns the places of the local runs
// of the checkout at source with workspace. Run calls it; a caller that
// confines tests calls it first to know what to share with them.
func Prepare(source, workspace string) (Places, error) {
	src, err := resolveDir(source)
	if err != nil {
		return Places{}, fmt.Errorf("%s is not a directory of a checkout: %w", source, err)
	}
	builds := filepath.Join(workspace, "local", projectName(src))
	if err := markBuilds(builds); err != nil {
		return Places{}, err
	}
	if builds, err = resolveDir(builds); err != nil {
		return Places{}, fmt.Errorf("resolving the builds directory: %w", err)
	}
	cache := filepath.Join(builds, ".cache")
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return Places{}, fmt.Errorf("creating the local cache: %w", err)
	}
	return Places{Source: src, Builds: builds, Cache: cache}, nil
}

// copySpec says how a test's copy of the checkout is made: the working
// tree of src without the builds directory, and a .git from repo unless it
// is nil.
type copySpec struct {
	src, builds string
	repo        *artifacts.LocalRepo
}

func runTest(ctx context.Context, opts Options, runner *pipeline.Runner, cs copySpec, dir string, build int, lp localPullRequest, t pipeline.Test) TestReport {
	testDir := filepath.Join(dir, t.Name)
	rep := TestReport{Test: t, Log: filepath.Join(testDir, "out.txt")}
	work := filepath.Join(testDir, "source")
	if err := copyTree(cs.src, work, cs.builds); err != nil {
		rep.Err = fmt.Errorf("copying %s for %s: %w", cs.src, t.Name, err)
		return rep
	}
	if cs.repo != nil {
		if err := cs.repo.Attach(ctx, work); err != nil {
			rep.Err = fmt.Errorf("giving %s's copy a .git: %w", t.Name, err)
			return rep
		}
	}
	sleep := opts.Sleep
	if sleep == nil {
		sleep = pause.For
	}
	a := pipeline.Attempt{
		Test:    t,
		Number:  1,
		Dir:     work,
		LogPath: rep.Log,
		Facts: map[string]string{
			"YCI_BUILD": strconv.Itoa(build), "YCI_PULL": "0", "YCI_LOCAL": "1",
			"YCI_SHA": lp.Head.SHA, "YCI_HEAD_REF": lp.Head.Ref, "YCI_BASE_REF": lp.Base.Ref,
		},
	}
	rep.Final, rep.Attempts, rep.Err = pipeline.RunWithRetries(ctx, runner, a, sleep)
	return rep
}

func progressLine(r TestReport) string {
	if r.Err != nil {
		return fmt.Sprintf("%-24s error: %v", r.Test.Name, r.Err)
	}
	return fmt.Sprintf("%-24s %-9s after %d attempt(s), %s  %s",
		r.Test.Name, r.Final.Outcome, len(r.Attempts), r.Duration().Round(time.Millisecond), r.Log)
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

// localPullRequest is the pull request a local build pretends to test,
// shaped like GitHub's JSON so .yci.py files read it the same way: the
// checkout's branch (or "local" when HEAD is detached) is both head and
// base.
type localPullRequest struct {
	Number int       `json:"number"`
	State  string    `json:"state"`
	Title  string    `json:"title"`
	User   localUser `json:"user"`
	Head   localRef  `json:"head"`
	Base   localRef  `json:"base"`
}

type localUser struct {
	Login string `json:"login"`
}

type localRef struct {
	Ref   string `json:"ref"`
	SHA   string `json:"sha"`
	Label string `json:"label,omitempty"`
}

func localPull(ctx context.Context, src string) localPullRequest {
	ref := gitOutput(ctx, src, "symbolic-ref", "--short", "-q", "HEAD")
	if ref == "" {
		ref = "local"
	}
	sha := gitOutput(ctx, src, "rev-parse", "-q", "--verify", "HEAD")
	user := os.Getenv("USER")
	return localPullRequest{
		State: "open",
		Title: "local run of " + filepath.Base(src),
		User:  localUser{Login: user},
		Head:  localRef{Ref: ref, SHA: sha, Label: user + ":" + ref},
		Base:  localRef{Ref: ref, SHA: sha},
	}
}

// resolveDir makes dir absolute and free of symlinks, so that paths below
// it compare lexically; it must be a directory.
func resolveDir(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	resolved, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return "", err
	}
	fi, err := os.Stat(resolved)
	if err != nil {
		return "", err
	}
	if !fi.IsDir() {
		return "", errors.New("not a directory")
	}
	return resolved, nil
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
