package e2e

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-github/v88/github"

	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/fakegithub"
)

// commitTo commits files to branch of the stand-in's repository.
func (s *stack) commitTo(branch string, files map[string]string, message string) string {
	s.tb.Helper()
	sha, err := s.gh.Commit(owner, repoName, branch, files, message)
	if err != nil {
		s.tb.Fatal(err)
	}
	return sha
}

// openFrom opens a pull request from branch, which must exist.
func (s *stack) openFrom(branch string) (int, string) {
	s.tb.Helper()
	pr, err := s.gh.OpenPull(owner, repoName, fakegithub.PullSpec{Head: branch, Title: branch})
	if err != nil {
		s.tb.Fatal(err)
	}
	return pr.GetNumber(), pr.GetHead().GetSHA()
}

// testContextsOf are the yci/<name> contexts sha has any status for.
func (s *stack) testContextsOf(sha string) []string {
	var out []string
	for _, st := range s.gh.Statuses(owner, repoName, sha) {
		if c := st.GetContext(); strings.HasPrefix(c, "yci/") && !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	slices.Sort(out)
	return out
}

// apiConfig yields one test that passes only while api.txt says "old",
// and passes it what .yci.py saw as the base commit.
const apiConfig = `from yci.run import Bash

def test_generator(build_id, pull):
    yield Bash('./test.sh', name='api', env={'T': 'api', 'PULL_BASE': pull['base']['sha']})
`

// TestPullThatFailsOnlyMergedIntoItsMovedBase: a pull's head that passes
// alone, built after its base moved on, is tested merged into the new
// base, fails, and yci names the base commit. The earlier verdict of the
// pull's first head is not rebuilt when the base moves.
func TestPullThatFailsOnlyMergedIntoItsMovedBase(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	w := s.startWorker("worker", "YCI_JOBS=1")
	base1 := s.commitTo("main", map[string]string{"README.md": "widgets\n", "api.txt": "old\n"}, "Initial commit")
	body := `echo "base=$YCI_BASE_SHA pullbase=$PULL_BASE head=$(git rev-parse HEAD) parents=$(git log -1 --format=%P)"
grep -q old api.txt || { echo "api.txt changed under us"; exit 1; }`
	s.commitTo("feature", map[string]string{".yci.py": apiConfig, "test.sh": s.script(body)}, "Add tests")
	n, sha1 := s.openFrom("feature")
	st := s.waitFinal(sha1, "yci/api", "yci")
	if got := st["yci"]; got.GetState() != "success" || !strings.Contains(got.GetDescription(), "tested merged into main at "+events.ShortSHA(base1)) {
		t.Fatalf("first head: yci %s %q, want success naming main at %.7s\n%s", got.GetState(), got.GetDescription(), base1, s.history(sha1))
	}

	// The base moves on: nothing is rebuilt (the verdict stands) until
	// the pull's next push, which is then tested merged into it.
	base2 := s.commitTo("main", map[string]string{"api.txt": "new\n"}, "Change the API")
	sha2 := s.push(n)
	st = s.waitFinal(sha2, "yci/api", "yci")
	yci := st["yci"]
	if yci.GetState() != "failure" || !strings.Contains(yci.GetDescription(), "tested merged into main at "+events.ShortSHA(base2)) {
		t.Fatalf("second head: yci %s %q, want failure naming main at %.7s\n%s", yci.GetState(), yci.GetDescription(), base2, s.history(sha2))
	}
	if got := s.gh.Statuses(owner, repoName, sha1); got[len(got)-1].GetState() != "success" {
		t.Errorf("the first head's verdict changed when the base moved:\n%s", s.history(sha1))
	}
	if dirs := s.buildDirs(w.name, n); !slices.Equal(dirs, []string{"1", "2"}) {
		t.Errorf("builds of pull %d: %q, want 1 and 2 only (the base's move rebuilds nothing)", n, dirs)
	}
	apiStatus := st["yci/api"]
	log := fetch(t, apiStatus.GetTargetURL())
	for _, want := range []string{"base=" + base2 + " pullbase=" + base2, "parents=" + base2 + " " + sha2, "api.txt changed under us"} {
		if !strings.Contains(log, want) {
			t.Errorf("the test's log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, "head="+sha2) {
		t.Errorf("the test ran on the head alone, not on its merge:\n%s", log)
	}
	// The page follows the build record a moment after the summary.
	pageURL := w.httpRoot + owner + "/" + repoName + "/pulls/" + strconv.Itoa(n) + "/2/index.html"
	want := "tested merged into main at " + events.ShortSHA(base2) + "; the head was 1 commit behind it"
	s.waitUntil("the build page naming the base", func() bool { return strings.Contains(fetch(t, pageURL), want) })
}

// TestConflictingPullGetsOneError: a head that does not merge into its
// base runs no test; yci is one error saying so and what to do, linking
// to a log that names the conflicting file.
func TestConflictingPullGetsOneError(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	s.startWorker("worker", "YCI_JOBS=1")
	s.commitTo("main", map[string]string{"README.md": "widgets\n", "lib.txt": "a\n"}, "Initial commit")
	s.commitTo("feature", map[string]string{".yci.py": yciPy([]string{"never"}, 0, 0), "test.sh": s.script("echo ran"),
		"lib.txt": "b\n"}, "Change lib")
	base := s.commitTo("main", map[string]string{"lib.txt": "c\n"}, "Change lib differently")
	_, sha := s.openFrom("feature")
	yci := s.waitFinal(sha, "yci")["yci"]
	want := "merge conflict with main at " + events.ShortSHA(base) + " in 1 file"
	if yci.GetState() != "error" || !strings.Contains(yci.GetDescription(), want) || !strings.Contains(yci.GetDescription(), "merge main into the branch") {
		t.Fatalf("yci %s %q, want an error saying %q and what to do\n%s", yci.GetState(), yci.GetDescription(), want, s.history(sha))
	}
	var errors int
	for _, d := range s.descriptions(sha, "yci") {
		if strings.HasPrefix(d, "error: ") {
			errors++
		}
	}
	if errors != 1 {
		t.Errorf("yci went to error %d times, want once:\n%s", errors, s.history(sha))
	}
	if got := s.testContextsOf(sha); len(got) > 0 {
		t.Errorf("tests got statuses %q; no test should run", got)
	}
	if entries, _ := os.ReadDir(s.marks); len(entries) > 0 {
		t.Errorf("a test started: %v", entries)
	}
	log := fetch(t, yci.GetTargetURL())
	for _, want := range []string{`"lib.txt"`, "merge main into the branch", base} {
		if !strings.Contains(log, want) {
			t.Errorf("the conflict's log lacks %q:\n%s", want, log)
		}
	}
}

// changesConfig runs the docs test when docs change and the unit test when
// code does: nothing else.
const changesConfig = `from yci.changes import changed_files
from yci.run import Bash

def test_generator(build_id, pull):
    files = changed_files()
    if any(f.startswith('docs/') for f in files):
        yield Bash('./test.sh', env={'T': 'docs'})
    if any(f.endswith('.py') and f != '.yci.py' for f in files):
        yield Bash('./test.sh', env={'T': 'unit'})
`

// oddNamesConfig runs its one test only when changed_files() gives the
// odd-names branch's paths exactly, sorted as git sorts bytes.
const oddNamesConfig = `from yci.changes import changed_files
from yci.run import Bash

WANT = sorted(['.yci.py', 'docs/-rf', 'docs/q"\'$(id).md', 'docs/a b.md', 'docs/café.md'], key=lambda p: p.encode())

def test_generator(build_id, pull):
    got = changed_files()
    if got != WANT:
        raise ValueError('changed_files() gave %r, want %r' % (got, WANT))
    yield Bash('./test.sh', env={'T': 'names'})
`

// TestChangedFilesPickTheTests: .yci.py on the base picks tests by the
// changed files. A docs-only pull runs the docs test only and yci still
// reports; a pull that needs no test gets a green yci saying so.
func TestChangedFilesPickTheTests(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	s.startWorker("worker", "YCI_JOBS=2")
	s.commitTo("main", map[string]string{"README.md": "widgets\n", ".yci.py": changesConfig, "test.sh": s.script("echo tested $T"),
		"docs/guide.md": "guide\n", "lib/widget.py": "x = 1\n"}, "Initial commit")
	for _, tc := range []struct {
		branch    string
		files     map[string]string
		tests     []string
		summary   string
		summaryOf string // the state
	}{
		{branch: "docs-only", files: map[string]string{"docs/guide.md": "better guide\n"},
			tests: []string{"yci/docs"}, summaryOf: "success", summary: "1 passed of 1; tested merged into main at "},
		{branch: "code", files: map[string]string{"lib/widget.py": "x = 2\n", "docs/new.md": "new\n"},
			tests: []string{"yci/docs", "yci/unit"}, summaryOf: "success", summary: "2 passed of 2; tested merged into main at "},
		{branch: "readme-only", files: map[string]string{"README.md": "better widgets\n"},
			summaryOf: "success", summary: "no tests for this change; tested merged into main at "},
		// Names an author chooses cross from git through the worker into
		// .yci.py byte for byte: an option-like name, shell and quote
		// characters, a space, non-ASCII. This branch's .yci.py runs its
		// test only when it sees exactly these names.
		{branch: "odd-names", files: map[string]string{".yci.py": oddNamesConfig,
			"docs/-rf": "x\n", `docs/q"'$(id).md`: "x\n", "docs/a b.md": "x\n", "docs/café.md": "x\n"},
			tests: []string{"yci/names"}, summaryOf: "success", summary: "1 passed of 1; tested merged into main at "},
	} {
		t.Run(tc.branch, func(t *testing.T) {
			s.commitTo(tc.branch, tc.files, "Change "+tc.branch)
			_, sha := s.openFrom(tc.branch)
			yci := s.waitFinal(sha, append(slices.Clone(tc.tests), "yci")...)["yci"]
			if yci.GetState() != tc.summaryOf || !strings.HasPrefix(yci.GetDescription(), tc.summary) {
				t.Errorf("yci %s %q, want %s %q…\n%s", yci.GetState(), yci.GetDescription(), tc.summaryOf, tc.summary, s.history(sha))
			}
			if got := s.testContextsOf(sha); !slices.Equal(got, tc.tests) {
				t.Errorf("tests run: %q, want %q", got, tc.tests)
			}
		})
	}
}

// TestTestMergeOffTestsTheHeadAlone: with -test-merge=false the same pull
// as in TestPullThatFailsOnlyMergedIntoItsMovedBase passes, as it did
// before builds merged, and yci says the head was tested alone.
func TestTestMergeOffTestsTheHeadAlone(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	s.startWorker("worker", "YCI_JOBS=1", "YCI_TEST_MERGE=false")
	s.commitTo("main", map[string]string{"README.md": "widgets\n", "api.txt": "old\n"}, "Initial commit")
	body := `echo "base=$YCI_BASE_SHA head=$(git rev-parse HEAD)"
grep -q old api.txt || { echo "api.txt changed under us"; exit 1; }`
	s.commitTo("feature", map[string]string{".yci.py": apiConfig, "test.sh": s.script(body)}, "Add tests")
	s.commitTo("main", map[string]string{"api.txt": "new\n"}, "Change the API")
	_, sha := s.openFrom("feature")
	st := s.waitFinal(sha, "yci/api", "yci")
	yci, api := st["yci"], st["yci/api"]
	if yci.GetState() != "success" || !strings.Contains(yci.GetDescription(), "head tested alone, not merged into main") {
		t.Fatalf("yci %s %q, want success saying the head was tested alone\n%s", yci.GetState(), yci.GetDescription(), s.history(sha))
	}
	if log := fetch(t, api.GetTargetURL()); !strings.Contains(log, "head="+sha) {
		t.Errorf("the test did not run on the head:\n%s", log)
	}
}

// TestRetestAfterTheBaseMovedBuildsOnItsTip: a pull built and passing
// merged into main at X; main moves to Y, under which its test fails; a
// /retest builds the head again (build 2) merged into Y, rather than
// re-running on the old merge: it fails, yci names Y, and the reply says
// main moved and names the new build.
func TestRetestAfterTheBaseMovedBuildsOnItsTip(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	w := s.startWorker("worker", "YCI_JOBS=1")
	s.grant("maintainer", "write")
	baseX := s.commitTo("main", map[string]string{"README.md": "widgets\n", "api.txt": "old\n"}, "Initial commit")
	body := `echo "base=$YCI_BASE_SHA tested=$(git rev-parse HEAD)"
grep -q old api.txt || { echo "api.txt changed under us"; exit 1; }`
	s.commitTo("feature", map[string]string{".yci.py": apiConfig, "test.sh": s.script(body)}, "Add tests")
	n, sha := s.openFrom("feature")
	st := s.waitFinal(sha, "yci/api", "yci")
	if got := st["yci"]; got.GetState() != "success" || !strings.Contains(got.GetDescription(), "tested merged into main at "+events.ShortSHA(baseX)) {
		t.Fatalf("build 1: yci %s %q, want success naming main at %.7s\n%s", got.GetState(), got.GetDescription(), baseX, s.history(sha))
	}

	baseY := s.commitTo("main", map[string]string{"api.txt": "new\n"}, "Change the API")
	c := s.comment(n, "maintainer", "/retest")
	onY := "tested merged into main at " + events.ShortSHA(baseY)
	st = s.waitStatuses(sha, "yci failing on the new base", func(m map[string]github.RepoStatus) bool {
		y := m["yci"]
		return y.GetState() == "failure" && strings.Contains(y.GetDescription(), onY)
	})
	api := st["yci/api"]
	log := fetch(t, api.GetTargetURL())
	for _, want := range []string{"base=" + baseY, "api.txt changed under us"} {
		if !strings.Contains(log, want) {
			t.Errorf("the test's log after /retest lacks %q:\n%s", want, log)
		}
	}
	s.waitReaction(c.GetID(), "the /retest")
	reply := "main moved to " + events.ShortSHA(baseY) + " since build 1; building again on it as build 2, which runs every test."
	s.waitComments(n, "the reply naming the new build", func(cs []github.IssueComment) bool {
		return slices.ContainsFunc(cs, func(c github.IssueComment) bool { return strings.Contains(c.GetBody(), reply) })
	})
	if dirs := s.buildDirs(w.name, n); !slices.Equal(dirs, []string{"1", "2"}) {
		t.Errorf("builds of pull %d: %q, want 1 and 2 (the /retest's)", n, dirs)
	}
}
