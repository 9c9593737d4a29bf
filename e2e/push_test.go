package e2e

import (
	"context"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-github/v88/github"

	"github.com/yourci/yourci/pkg/pause"
	"github.com/yourci/yourci/pkg/status"
)

// TestNewPushIsBuiltWhileEverySlotIsBusy fills every test slot of the only
// worker with tests that would run for 90 seconds, then pushes a commit
// whose tests are quick. The new head must be prepared at once, on the
// worker's own pull slot, and its announcement must stop the superseded
// tests: the new head's statuses appear while the old tests still run,
// the old tests end "stopped: superseded" (never success) and are killed
// long before their 90 seconds, and the new head's tests pass.
func TestNewPushIsBuiltWhileEverySlotIsBusy(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	w := s.startWorker("worker", "YCI_JOBS=2")
	names := []string{"long-a", "long-b"}
	// The first head sleeps; the pushed one (which adds CHANGES) does not.
	body := `[ -e CHANGES ] || { sleep 90; touch "$M/finished-$YCI_SHA-$T"; }
echo done`
	n, old := s.openPull(map[string]string{".yci.py": yciPy(names, 0, 0), "test.sh": s.script(body)})
	for _, name := range names {
		s.waitRunning(old, name)
	}
	oldPids := append(s.starts(old, "long-a"), s.starts(old, "long-b")...)
	checkListing(t, s, w, old, names)

	pushed := time.Now()
	newer := s.push(n) // the stand-in delivers the synchronize webhook
	first := s.waitStatuses(newer, "the new head's first statuses", func(m map[string]github.RepoStatus) bool { return len(m) > 0 })
	delay := time.Since(pushed)
	// Order, not time: when the new head got its first status the old
	// tests had not finished, so it did not wait for a test slot.
	finished, _ := filepath.Glob(filepath.Join(s.marks, "finished-"+old+"-*"))
	if len(finished) > 0 {
		t.Errorf("the old head's tests ran to their end (%v) before the new head got a status: the push waited for a slot", finished)
	}
	t.Logf("push → the new head's first status (%d contexts) in %s", len(first), delay.Round(time.Millisecond))

	final := s.waitFinal(old, contexts(names...)...)
	for _, name := range names {
		st := final["yci/"+name]
		if st.GetState() != "error" || st.GetDescription() != status.Superseded(newer) {
			t.Errorf("%s of the old head ended %s %q, want error %q\n%s", name, st.GetState(), st.GetDescription(), status.Superseded(newer), s.history(old))
		}
	}
	for _, pid := range oldPids {
		if alive(pid) {
			t.Errorf("the old head's test (pid %d) still runs after it was reported stopped", pid)
		}
	}
	// The old head's summary says why it ended, in the tests' words, and
	// not as a count of errors.
	if st := s.waitFinal(old, "yci")["yci"]; st.GetState() != "error" || st.GetDescription() != "superseded by "+newer[:7] {
		t.Errorf("the old head's summary ended %s %q, want error %q\n%s", st.GetState(), st.GetDescription(), "superseded by "+newer[:7], s.history(old))
	}
	// The summary yci ends last: it waits out its interval.
	final = s.waitFinal(newer, append(contexts(names...), "yci")...)
	for _, c := range append(contexts(names...), "yci") {
		if st := final[c]; st.GetState() != "success" {
			t.Errorf("%s of the new head: %s %q, want success", c, st.GetState(), st.GetDescription())
		}
	}
	if finished, _ := filepath.Glob(filepath.Join(s.marks, "finished-"+old+"-*")); len(finished) > 0 {
		t.Errorf("the old head's tests were not stopped: %v", finished)
	}
	for _, d := range s.descriptions(old, "yci/long-a") {
		if strings.HasPrefix(d, "success") {
			t.Errorf("the old head was reported %q", d)
		}
	}
	// The old head's page links to the build that replaced it, and both
	// to the pull request on GitHub (issue 15).
	oldPage := w.httpRoot + owner + "/" + repoName + "/pulls/" + strconv.Itoa(n) + "/1/index.html"
	const next = `Replaced by <a href="../2/index.html">build 2</a> of commit <code>`
	var page string
	waitCtx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if pause.Poll(waitCtx, 50*time.Millisecond, func() bool { page = fetch(t, oldPage); return strings.Contains(page, next) }) != nil {
		t.Fatalf("the old head's page never linked its successor:\n%s", page)
	}
	if !strings.Contains(page, `id="pull-link" href="`+s.gh.URL()+"/"+owner+"/"+repoName+"/pull/"+strconv.Itoa(n)+`"`) {
		t.Errorf("the old head's page does not link the pull request:\n%s", page)
	}
}

// checkListing runs the queue command while names of sha run on w, and
// reads w's /metrics: both must show the two running tests.
func checkListing(t *testing.T, s *stack, w *worker, sha string, names []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(s.ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "queue"))
	cmd.Env = []string{"PATH=/usr/bin:/bin", "NATS_URL=" + s.cfg.NATSURL}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("queue: %v\n%s", err, out)
	}
	for _, name := range names {
		found := false
		for line := range strings.Lines(string(out)) {
			f := strings.Fields(line)
			found = found || len(f) == 9 && f[0] == "running" && f[3] == sha[:7] && f[5] == name && strings.HasSuffix(f[8], w.Workspace)
		}
		if !found {
			t.Errorf("queue does not list %s as running on %s:\n%s", name, w.Workspace, out)
		}
	}
	metrics := fetch(t, "http://"+w.MetricsAddr+"/metrics")
	if want := `yci_queue_ack_pending_messages{consumer="handle_test"} 2`; !strings.Contains(metrics, want) {
		t.Errorf("/metrics lacks %q", want)
	}
}
