package worker

import (
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-github/v88/github"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/yourci/yourci/pkg/artifacts"
	"github.com/yourci/yourci/pkg/fakegithub"
)

// withDisk guards the rig's attempts with a 1 MiB budget, measured every
// 20 ms, and the free space statfs reports.
func withDisk(statfs Statfs) func(*Options) {
	return func(o *Options) {
		o.Disk = &DiskGuard{Root: o.Workspace.Root(), Budget: 1 << 20, Interval: 20 * time.Millisecond, MinFree: 1 << 30, Statfs: statfs}
	}
}

func roomyDisk(string) (FSStat, error) { return FSStat{Size: 100 << 30, Free: 90 << 30}, nil }

func (r *rig) workCopy(t *testing.T, pull int, name string) string {
	t.Helper()
	dir, err := r.ws.RunSourceDir(artifacts.Build{Owner: owner, Repo: repoName, Pull: pull, Number: 1}, name, 0)
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestATestWritingPastItsDiskBudgetIsStoppedWithTheReason(t *testing.T) {
	t.Parallel()
	r := newRig(t, withDisk(roomyDisk))
	// Retries are allowed, and must not be spent: the same test would
	// write as much again.
	fill := `echo filling; head -c 8388608 /dev/urandom > fill; sleep 60`
	pr := r.openBranchPull(t, fakegithub.PullSpec{Head: "filler"}, map[string]string{".yci.py": testRunning(fill, "", 2)})
	sha := pr.GetHead().GetSHA()
	r.publish(t, pr.GetNumber(), sha, "d1")
	s := r.waitFinal(t, sha, "yci/t")["yci/t"]
	const reason = "stopped: wrote more than 1 MiB into its working copy"
	if s.GetState() != "error" || !strings.Contains(s.GetDescription(), reason) {
		t.Errorf("yci/t: %s %q, want error %q", s.GetState(), s.GetDescription(), reason)
	}
	for _, st := range r.gh.Statuses(owner, repoName, sha) {
		if strings.Contains(st.GetDescription(), "retrying") {
			t.Errorf("a test stopped for disk spent a retry: %q", st.GetDescription())
		}
	}
	if log := r.readLog(t, pr.GetNumber(), 1, "t"); !strings.Contains(log, "filling\n") || !strings.Contains(log, "[yci] "+reason+"\n") {
		t.Errorf("log lacks the output or the reason:\n%s", log)
	}
	if _, err := os.Stat(r.workCopy(t, pr.GetNumber(), "t")); !os.IsNotExist(err) {
		t.Errorf("the stopped test's working copy is still there: %v", err)
	}
	if got := counterValue(t, r.w.opts.Metrics.DiskStops.WithLabelValues("budget")); got != 1 {
		t.Errorf("disk stops counted %v, want 1", got)
	}
	r.servesNormalJob(t)
}

func TestAFinishedTestKeepsItsLogNotItsWorkingCopy(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	pr := r.openBranchPull(t, fakegithub.PullSpec{Head: "tidy"}, map[string]string{".yci.py": testRunning("echo kept > made; echo hi", "", 0)})
	sha := pr.GetHead().GetSHA()
	r.publish(t, pr.GetNumber(), sha, "d1")
	if s := r.waitFinal(t, sha, "yci/t")["yci/t"]; s.GetState() != "success" {
		t.Fatalf("yci/t: %s %q", s.GetState(), s.GetDescription())
	}
	if log := r.readLog(t, pr.GetNumber(), 1, "t"); !strings.Contains(log, "\nhi\n") {
		t.Errorf("the log lost its output:\n%s", log)
	}
	work := r.workCopy(t, pr.GetNumber(), "t")
	if _, err := os.Stat(work); !os.IsNotExist(err) {
		t.Errorf("the finished test's working copy %s is still there: %v", work, err)
	}
	// The build's own checkout stays, for re-runs to copy from.
	build, err := r.ws.BuildDir(artifacts.Build{Owner: owner, Repo: repoName, Pull: pr.GetNumber(), Number: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(build, "source")); err != nil {
		t.Errorf("the build checkout is gone: %v", err)
	}
}

func TestBelowTheDiskFloorNoAttemptStartsUntilSpaceIsBack(t *testing.T) {
	t.Parallel()
	var free atomic.Uint64
	free.Store(100 << 20)
	r := newRig(t, withDisk(func(string) (FSStat, error) {
		return FSStat{Size: 100 << 30, Free: free.Load()}, nil
	}))
	pr := r.openBranchPull(t, fakegithub.PullSpec{Head: "waits"}, map[string]string{".yci.py": testRunning("echo hi", "", 0)})
	sha := pr.GetHead().GetSHA()
	r.publish(t, pr.GetNumber(), sha, "d1")
	s := r.waitFinal(t, sha, "yci/t")["yci/t"]
	if s.GetState() != "error" || !strings.Contains(s.GetDescription(), "infrastructure (disk), retrying") ||
		!strings.Contains(s.GetDescription(), "100 MiB free on the workspace disk, below the floor of 1 GiB") {
		t.Fatalf("yci/t: %s %q, want error naming the floor", s.GetState(), s.GetDescription())
	}
	if _, err := os.Stat(r.workCopy(t, pr.GetNumber(), "t")); !os.IsNotExist(err) {
		t.Errorf("an attempt was prepared below the floor: %v", err)
	}
	build, err := r.ws.BuildDir(artifacts.Build{Owner: owner, Repo: repoName, Pull: pr.GetNumber(), Number: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("the_page_shows_the_error_not_running", func(t *testing.T) {
		page := string(waitForFile(t, filepath.Join(build, "index.html"), "below the floor"))
		if !strings.Contains(page, `class="state error"`) {
			t.Errorf("the page does not show the test as error:\n%s", page)
		}
	})
	if got := counterValue(t, r.w.opts.Metrics.InfraErrors.WithLabelValues(InfraDisk)); got < 1 {
		t.Errorf("infrastructure errors counted %v, want at least 1", got)
	}
	free.Store(50 << 30)
	r.waitFor(t, sha, func(m map[string]github.RepoStatus) bool { s := m["yci/t"]; return s.GetState() == "success" })
}

// counterValue reads a counter's value.
func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
