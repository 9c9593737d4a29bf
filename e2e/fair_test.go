package e2e

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-github/v88/github"

	"github.com/yourci/yourci/pkg/fakegithub"
)

// stampBody records the test's start and end in the marks directory as
// stamp-<repo>-<T> holding "<start ns> <end ns>", the clock of the box
// the tests share, around a short sleep (the test's work).
func stampBody(repo string) string {
	return `start=$(date +%s%N)
sleep 0.3
echo "$start $(date +%s%N)" > "$M/stamp-` + repo + `-$T"
`
}

// stamp is one test's start and end as its own script recorded them.
type stamp struct {
	name       string
	start, end int64
}

// stamps reads every stamp of repo recorded so far.
func (s *stack) stamps(repo string) []stamp {
	s.tb.Helper()
	matches, err := filepath.Glob(filepath.Join(s.marks, "stamp-"+repo+"-*"))
	if err != nil {
		s.tb.Fatal(err)
	}
	var out []stamp
	for _, m := range matches {
		data, err := os.ReadFile(m)
		if err != nil {
			s.tb.Fatal(err)
		}
		f := strings.Fields(string(data))
		if len(f) != 2 {
			continue // being written
		}
		start, err1 := strconv.ParseInt(f[0], 10, 64)
		end, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		out = append(out, stamp{name: strings.TrimPrefix(filepath.Base(m), "stamp-"+repo+"-"), start: start, end: end})
	}
	return out
}

// openRepoPull creates repository name of the stand-in's owner and opens
// a pull request in it with files, returning the head sha.
func (s *stack) openRepoPull(name string, files map[string]string) string {
	s.tb.Helper()
	if _, err := s.gh.CreateRepo(owner, name); err != nil {
		s.tb.Fatal(err)
	}
	if _, err := s.gh.Commit(owner, name, "main", map[string]string{"README.md": name + "\n"}, "Initial commit"); err != nil {
		s.tb.Fatal(err)
	}
	if _, err := s.gh.Commit(owner, name, "feature", files, "Add tests"); err != nil {
		s.tb.Fatal(err)
	}
	pr, err := s.gh.OpenPull(owner, name, fakegithub.PullSpec{Head: "feature", Title: "Add tests"})
	if err != nil {
		s.tb.Fatal(err)
	}
	return pr.GetHead().GetSHA()
}

// waitRepoFinal waits until status context status of sha in repository name is final.
func (s *stack) waitRepoFinal(name, sha, status string) github.RepoStatus {
	s.tb.Helper()
	ctx, cancel := context.WithTimeout(s.ctx, waitLimit)
	defer cancel()
	var got github.RepoStatus
	err := s.gh.WaitStatuses(ctx, owner, name, sha, func(m map[string]github.RepoStatus) bool {
		got = m[status]
		return got.GetState() != "" && got.GetState() != "pending"
	})
	if err != nil {
		s.tb.Fatalf("waiting for %s of %s %.7s: %v", status, name, sha, err)
	}
	return got
}

func testNames(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%02d", prefix, i)
	}
	return out
}

// TestAnotherRepositoryIsNotQueuedBehindABacklog is issue 17's scenario
// with short tests: one worker with two slots, 80 tests of one repository
// queued, then a pull of another repository with one test. That test must
// start before most of the backlog has run: it used to start after all 80.
// It logs how long the second repository's test waited.
func TestAnotherRepositoryIsNotQueuedBehindABacklog(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	s.startWorker("box1", "YCI_JOBS=2")
	busy := testNames("b", 80)
	s.openPull(map[string]string{".yci.py": yciPy(busy, 0, 0), "test.sh": s.script(stampBody("busy"))})
	// The backlog is queued once its first tests run.
	s.waitFile("stamp-busy-*")

	opened := time.Now().UnixNano()
	const quietRepo = "quiet"
	sha := s.openRepoPull(quietRepo, map[string]string{".yci.py": yciPy([]string{"q"}, 0, 0), "test.sh": s.script(stampBody("quiet"))})
	if st := s.waitRepoFinal(quietRepo, sha, "yci/q"); st.GetState() != "success" {
		t.Fatalf("the quiet repository's test ended %s %q", st.GetState(), st.GetDescription())
	}
	quiet := s.stamps("quiet")
	if len(quiet) != 1 {
		t.Fatalf("the quiet repository's test left %d stamps, want 1", len(quiet))
	}
	before := 0
	for _, b := range s.stamps("busy") {
		if b.start < quiet[0].start {
			before++
		}
	}
	// Two slots: the busy repository's tests running when the pull came,
	// and the few that started while it was prepared, go first.
	if before > 20 {
		t.Errorf("%d of the busy repository's 80 tests started before the quiet repository's one test; want a few", before)
	}
	t.Logf("the quiet repository's test started %s after its pull was opened, after %d of the busy repository's 80 tests (issue 17: 82 s, after all 80)",
		time.Duration(quiet[0].start-opened).Round(10*time.Millisecond), before)
}

// TestRepositoryCapAcrossTwoWorkers: with a cap of 2 on a repository in
// the operator's file, two workers of two slots each never run more than
// 2 of its tests at once, by the tests' own start and end times.
func TestRepositoryCapAcrossTwoWorkers(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	limits := filepath.Join(s.dir, "repo-limits")
	if err := os.WriteFile(limits, []byte("# a shared licence server\n"+owner+"/"+repoName+" max_running=2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.startWorker("box1", "YCI_JOBS=2", "YCI_REPO_LIMITS="+limits)
	s.startWorker("box2", "YCI_JOBS=2", "YCI_REPO_LIMITS="+limits)
	names := testNames("c", 10)
	_, sha := s.openPull(map[string]string{".yci.py": yciPy(names, 0, 0), "test.sh": s.script(stampBody("capped"))})
	final := s.waitFinal(sha, contexts(names...)...)
	for _, n := range names {
		if st := final["yci/"+n]; st.GetState() != "success" {
			t.Errorf("yci/%s ended %s %q", n, st.GetState(), st.GetDescription())
		}
	}
	stamps := s.stamps("capped")
	if len(stamps) != len(names) {
		t.Fatalf("%d stamps, want %d", len(stamps), len(names))
	}
	if most := mostAtOnce(stamps); most != 2 {
		t.Errorf("at most %d of the capped repository's tests ran at once, want 2 (the cap, reached)", most)
	}
}

// mostAtOnce is the largest number of stamps whose intervals overlap.
func mostAtOnce(stamps []stamp) int {
	type edge struct {
		at    int64
		delta int
	}
	var edges []edge
	for _, s := range stamps {
		edges = append(edges, edge{s.start, 1}, edge{s.end, -1})
	}
	// An end and a start at the same instant do not overlap.
	slices.SortFunc(edges, func(a, b edge) int {
		return cmp.Or(cmp.Compare(a.at, b.at), cmp.Compare(a.delta, b.delta))
	})
	now, most := 0, 0
	for _, e := range edges {
		now += e.delta
		most = max(most, now)
	}
	return most
}
