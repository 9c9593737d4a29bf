package e2e

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/yourci/yourci/pkg/launch"
)

// TestReconcileBuildsWhatTheReceiverMissed opens a pull request while the
// receiver is down, so GitHub's webhook fails and is never retried: the
// reconcile sweep, run twice, builds it once.
func TestReconcileBuildsWhatTheReceiverMissed(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	w := s.startWorker("worker", "YCI_JOBS=1")
	if err := stop(s, s.recv.Process); err != nil {
		t.Fatalf("stopping the receiver: %v", err)
	}
	n, sha := s.openPull(map[string]string{".yci.py": yciPy([]string{"swept"}, 0, 0), "test.sh": s.script("echo swept")})
	for _, d := range s.gh.Deliveries() {
		if d.Action == "opened" && d.Err == nil {
			t.Fatalf("the opened webhook reached a stopped receiver: %d", d.StatusCode)
		}
	}

	s.reconcile(1)
	s.waitFinal(sha, "yci/swept")
	s.reconcile(2)

	// The receiver is back: a new commit's webhook is handled after
	// anything the second sweep queued (one slot, pull events in order).
	recv, err := s.cfg.StartReceiver(s.ctx, "receiver2")
	if err != nil {
		t.Fatal(err)
	}
	s.track(recv.Process)
	s.gh.AddHook(recv.WebhookURL, secret)
	sha2 := s.push(n)
	s.waitFinal(sha2, "yci/swept")

	checkHistory(t, s.descriptions(sha, "yci/swept"), []string{"pending: queued", "pending: running", "success: passed in"})
	if got := len(s.starts(sha, "swept")); got != 1 {
		t.Errorf("the swept head's test ran %d times, want 1", got)
	}
	if diff := cmp.Diff([]string{"1", "2"}, s.buildDirs(w.name, n)); diff != "" {
		t.Errorf("builds (-want +got):\n%s", diff)
	}
}

// reconcile runs one sweep of the repository, as cron would, and fails
// the test unless it exits 0. extra adds to (and overrides) its
// environment, such as s.appEnv() for App auth.
func (s *stack) reconcile(run int, extra ...string) {
	s.tb.Helper()
	name := fmt.Sprintf("reconcile-%d", run)
	env := append([]string{
		"GITHUB_REPOSITORIES=" + owner + "/" + repoName,
		"GITHUB_ACCESS_TOKEN=" + s.cfg.Token,
		"GITHUB_API_URL=" + s.cfg.GitHubURL,
		"NATS_URL=" + s.cfg.NATSURL,
	}, s.cfg.Env...)
	env = append(env, extra...)
	p, err := launch.Start(name, filepath.Join(binDir, "reconcile"), nil, env,
		filepath.Join(s.cfg.Dir, name), filepath.Join(s.cfg.Dir, name+".log"))
	if err != nil {
		s.tb.Fatal(err)
	}
	s.track(p)
	select {
	case <-p.Done():
	case <-s.ctx.Done():
		p.Kill()
		s.tb.Fatalf("%s did not finish: %v", name, s.ctx.Err())
	}
	if err := p.Err(); err != nil {
		s.tb.Fatalf("%s failed: %v\n%s", name, err, p.Output())
	}
}
