package e2e

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-github/v88/github"

	"github.com/yourci/yourci/pkg/fakegithub"
)

// The disk tests put a whole stack (the worker's workspace, the embedded
// JetStream's store under it, GitHub's repositories) on a 200 MiB tmpfs,
// as a box whose one disk holds everything, and keep a 64 MiB floor.
const (
	smallDisk   = 200 << 20
	smallFloor  = 64 << 20
	floorEnvVar = "YCI_MIN_FREE_DISK"
)

// mountSmallDisk mounts a tmpfs of size bytes and unmounts it at cleanup,
// after the stack on it has stopped. Mounting needs root, which CI has.
func mountSmallDisk(t *testing.T, size int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a small filesystem needs root (CI runs as root)")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+strconv.Itoa(size), "yci-e2e-disk", dir).CombinedOutput(); err != nil {
		t.Fatalf("mounting a tmpfs: %v\n%s", err, out)
	}
	// Registered before the stack's own cleanups, so it runs after them.
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("unmounting %s: %v\n%s", dir, err, out)
		}
	})
	return dir
}

func freeBytes(t *testing.T, dir string) uint64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return st.Bavail * uint64(st.Bsize)
}

// openBranch commits files on branch and opens a pull request from it;
// the stand-in delivers its webhook before returning.
func (s *stack) openBranch(branch string, files map[string]string) (int, string) {
	s.tb.Helper()
	if _, err := s.gh.Commit(owner, repoName, "main", map[string]string{"README.md": "widgets\n"}, "Initial commit"); err != nil {
		s.tb.Fatal(err)
	}
	if _, err := s.gh.Commit(owner, repoName, branch, files, "Add tests"); err != nil {
		s.tb.Fatal(err)
	}
	pr, err := s.gh.OpenPull(owner, repoName, fakegithub.PullSpec{Head: branch, Title: branch})
	if err != nil {
		s.tb.Fatal(err)
	}
	return pr.GetNumber(), pr.GetHead().GetSHA()
}

// openedAnswer is the receiver's answer to pull n's opened delivery.
func (s *stack) openedAnswer(n int) int {
	s.tb.Helper()
	for _, d := range s.gh.Deliveries() {
		if d.Event == "pull_request" && d.Action == "opened" && strings.Contains(string(d.Payload), fmt.Sprintf(`"number":%d,`, n)) {
			return d.StatusCode
		}
	}
	s.tb.Fatalf("no opened delivery of pull %d", n)
	return 0
}

// waitUntil polls cond until it holds, failing at the stack's deadline.
func (s *stack) waitUntil(what string, cond func() bool) {
	s.tb.Helper()
	for !cond() {
		select {
		case <-s.ctx.Done():
			s.tb.Fatalf("waiting for %s: %v", what, s.ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// fillerTest writes 1 MiB into its working copy every 50 ms, without end:
// it fills the 200 MiB disk in seconds unless it is stopped.
const fillerTest = `echo filling
i=0
while :; do head -c 1048576 /dev/zero > "fill-$i" || echo "write failed"; i=$((i+1)); sleep 0.05; done
`

func TestFillingTheDiskFromAWorkingCopyKeepsTheQueueAndOtherPullsWorking(t *testing.T) {
	t.Parallel()
	disk := mountSmallDisk(t, smallDisk)
	s := newStack(t, stackOptions{nats: embedded, dir: disk})
	w := s.startWorker("w1", floorEnvVar+"="+strconv.Itoa(smallFloor))
	filler, fillSHA := s.openBranch("filler", map[string]string{".yci.py": yciPy([]string{"fill"}, 2, 1), "test.sh": fillerTest})
	s.waitStatuses(fillSHA, "the filler running", func(m map[string]github.RepoStatus) bool {
		st := m["yci/fill"]
		return strings.HasPrefix(st.GetDescription(), "running")
	})
	// While the filler writes, with the disk already half full, another
	// pull request is opened.
	s.waitUntil("the disk half full", func() bool { return freeBytes(t, disk) < smallDisk/2 })
	other, otherSHA := s.openBranch("other", map[string]string{".yci.py": yciPy([]string{"ok"}, 0, 0), "test.sh": s.script("echo fine")})
	if code := s.openedAnswer(other); code != http.StatusAccepted {
		t.Errorf("the receiver answered %d to the other pull request's webhook, want 202: the queue's store had no room", code)
	}
	fill := s.waitFinal(fillSHA, "yci/fill")["yci/fill"]
	if fill.GetState() != "error" || !strings.Contains(fill.GetDescription(), "below its free-space floor") {
		t.Errorf("the filler ended %s %q, want error naming the floor\n%s", fill.GetState(), fill.GetDescription(), s.history(fillSHA))
	}
	for _, d := range s.descriptions(fillSHA, "yci/fill") {
		if strings.Contains(d, "retrying") {
			t.Errorf("the filler spent a retry: %q", d)
		}
	}
	ok := s.waitFinal(otherSHA, "yci/ok")["yci/ok"]
	if ok.GetState() != "success" {
		t.Errorf("the other pull request's test ended %s %q, want success\n%s", ok.GetState(), ok.GetDescription(), s.history(otherSHA))
	}
	log, err := os.ReadFile(filepath.Join(w.Workspace, owner, repoName, "pulls", strconv.Itoa(filler), "1", "fill", "out.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), "[yci] stopped: the workspace disk fell below its free-space floor") {
		t.Errorf("the filler's log lacks the reason:\n%s", tail(string(log), 2000))
	}
	work := filepath.Join(w.Workspace, owner, repoName, "pulls", strconv.Itoa(filler), "1", "fill", "source")
	if _, err := os.Stat(work); !os.IsNotExist(err) {
		t.Errorf("the filler's working copy is still there: %v", err)
	}
	if free := freeBytes(t, disk); free < smallFloor {
		t.Errorf("only %d bytes free after the filler was stopped, want the floor (%d) back", free, smallFloor)
	}
}

func TestAFullDiskWhileABuildIsPreparedShowsTheErrorThenTheBuildCompletes(t *testing.T) {
	t.Parallel()
	disk := mountSmallDisk(t, smallDisk)
	s := newStack(t, stackOptions{nats: embedded, dir: disk})
	w := s.startWorker("w1", floorEnvVar+"="+strconv.Itoa(smallFloor))
	// Something else on the box fills the disk to 24 MiB short of the
	// floor: enough room for the webhook and the build's checkout, not
	// for a test to start.
	ballast := filepath.Join(disk, "ballast")
	f, err := os.Create(ballast)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	for i := range chunk {
		chunk[i] = 'x'
	}
	for freeBytes(t, disk) > smallFloor-24<<20 {
		if _, err := f.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	n, sha := s.openBranch("feature", map[string]string{".yci.py": yciPy([]string{"t"}, 0, 0), "test.sh": s.script("echo ran")})
	if code := s.openedAnswer(n); code != http.StatusAccepted {
		t.Fatalf("the receiver answered %d, want 202", code)
	}
	st := s.waitFinal(sha, "yci/t")["yci/t"]
	if st.GetState() != "error" || !strings.Contains(st.GetDescription(), "infrastructure (disk), retrying") || !strings.Contains(st.GetDescription(), "below the floor") {
		t.Fatalf("yci/t: %s %q, want error naming the disk\n%s", st.GetState(), st.GetDescription(), s.history(sha))
	}
	page := filepath.Join(w.Workspace, owner, repoName, "pulls", strconv.Itoa(n), "1", "index.html")
	s.waitUntil("the page showing the error", func() bool {
		data, err := os.ReadFile(page)
		return err == nil && strings.Contains(string(data), `class="state error"`) && strings.Contains(string(data), "below the floor")
	})
	if data, _ := os.ReadFile(page); strings.Contains(string(data), `class="state running"`) {
		t.Errorf("the page claims a test is running:\n%s", data)
	}
	if len(s.starts(sha, "t")) != 0 {
		t.Error("the test started below the floor")
	}
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	final := s.waitStatuses(sha, "the build passing once space is back", func(m map[string]github.RepoStatus) bool {
		s := m["yci/t"]
		return s.GetState() == "success"
	})
	if st := final["yci/t"]; st.GetState() != "success" {
		t.Errorf("yci/t: %s %q", st.GetState(), st.GetDescription())
	}
	s.waitUntil("the page showing the pass", func() bool {
		data, err := os.ReadFile(page)
		return err == nil && strings.Contains(string(data), `class="state passed"`)
	})
}
