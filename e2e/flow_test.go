package e2e

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-github/v88/github"
	"github.com/nats-io/nats.go"

	"github.com/yourci/yourci/pkg/fakegithub"
	"github.com/yourci/yourci/pkg/natsserver"
	"github.com/yourci/yourci/pkg/pause"
)

// seedMatrix is the seed design's 2×2 matrix, without retries.
const seedMatrix = `from yci.run import Bash

def test_generator(build_id, pull):
    for x in ['foo', 'bar']:
        for y in ['x', 'y']:
            yield Bash('./test.sh', env={'ENV_VAR_1': x, 'ENV_VAR_2': y})
`

var seedNames = []string{"foo-x", "foo-y", "bar-x", "bar-y"}

func TestWebhookToStatuses(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	checkMatrixFlow(t, s)
}

// TestWebhookToStatusesOnDebianNATSServer is the same flow on the oldest
// JetStream YourCI supports. It is skipped without the binary unless
// YCI_REQUIRE_NATS_SERVER=1, as CI sets.
func TestWebhookToStatusesOnDebianNATSServer(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{nats: external})
	checkMatrixFlow(t, s)
}

// checkMatrixFlow opens a pull request with the seed's matrix, in which
// bar-y exits 3, and checks every status's history, its log link, the log
// served there and the workspace layout.
func checkMatrixFlow(t *testing.T, s *stack) {
	w := s.startWorker("worker", "YCI_JOBS=2")
	body := `if [ "$T" = bar-y ]; then echo "bar-y breaks"; exit 3; fi
echo "all good"`
	n, sha := s.openPull(map[string]string{".yci.py": seedMatrix, "test.sh": s.script(body)})
	final := s.waitFinal(sha, contexts(seedNames...)...)
	if testContexts(final) != len(seedNames) {
		t.Errorf("statuses for %d test contexts, want %d:\n%s", testContexts(final), len(seedNames), s.history(sha))
	}
	checkSummaryAndPage(t, s, w, n, sha, "failure: 3 passed, 1 failed of 4")
	build := filepath.Join(owner, repoName, "pulls", strconv.Itoa(n), "1")
	for _, name := range seedNames {
		t.Run(name, func(t *testing.T) {
			want := []string{"pending: queued", "pending: running", "success: passed in"}
			if name == "bar-y" {
				want[2] = "failure: failed with exit code 3"
			}
			checkHistory(t, s.descriptions(sha, "yci/"+name), want)
			wantURL := w.httpRoot + owner + "/" + repoName + "/pulls/" + strconv.Itoa(n) + "/1/" + name + "/out.txt"
			st := final["yci/"+name]
			if got := st.GetTargetURL(); got != wantURL {
				t.Errorf("target URL %q, want %q", got, wantURL)
			}
			log := fetch(t, wantURL)
			wantLog := "attempt of " + name + " on " + sha + " build 1"
			if !strings.Contains(log, wantLog) {
				t.Errorf("log served at the target URL lacks %q:\n%s", wantLog, log)
			}
			if name == "bar-y" && !strings.Contains(log, "bar-y breaks") {
				t.Errorf("failing test's log lacks its output:\n%s", log)
			}
			out := s.workspacePath(w.name, build, name, "out.txt")
			link := s.workspacePath(w.name, owner, repoName, strconv.Itoa(n)+"-1-"+name+"-out.txt")
			checkSameFile(t, link, out)
		})
	}
	for _, dir := range []string{
		s.workspacePath(w.name, owner, repoName, "source"), // the mirror
		s.workspacePath(w.name, build, "source"),           // the build's checkout
	} {
		if _, err := os.Stat(dir); err != nil {
			t.Errorf("workspace layout: %v", err)
		}
	}
}

// checkHistory compares a context's statuses with the expected prefixes.
func checkHistory(t *testing.T, got, wantPrefixes []string) {
	t.Helper()
	ok := len(got) == len(wantPrefixes)
	for i := 0; ok && i < len(got); i++ {
		ok = strings.HasPrefix(got[i], wantPrefixes[i])
	}
	if !ok {
		t.Errorf("status history:\n  %s\nwant prefixes:\n  %s", strings.Join(got, "\n  "), strings.Join(wantPrefixes, "\n  "))
	}
}

// checkSameFile checks that link is a symlink to the file out.
func checkSameFile(t *testing.T, link, out string) {
	t.Helper()
	fi, err := os.Lstat(link)
	if err != nil {
		t.Errorf("log link: %v", err)
		return
	}
	if fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("%s is %s, not a symlink", link, fi.Mode())
	}
	viaLink, err1 := os.Stat(link)
	direct, err2 := os.Stat(out)
	if err1 != nil || err2 != nil || !os.SameFile(viaLink, direct) {
		t.Errorf("%s does not lead to %s (%v, %v)", link, out, err1, err2)
	}
}

// fetch GETs url and returns the body of its 200 answer.
func fetch(t *testing.T, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("fetching log: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("fetching %s: %s %v", url, resp.Status, err)
	}
	return string(b)
}

func TestFlakyTestIsRetriedThroughTheQueue(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	w := s.startWorker("worker", "YCI_JOBS=1")
	body := `if [ ! -e "$M/flaked-$YCI_SHA" ]; then
  touch "$M/flaked-$YCI_SHA"; echo "simulated network failure"; exit 1
fi
echo "passed this time"`
	n, sha := s.openPull(map[string]string{".yci.py": yciPy([]string{"flaky"}, 2, 1), "test.sh": s.script(body)})
	final := s.waitFinal(sha, "yci/flaky")
	checkHistory(t, s.descriptions(sha, "yci/flaky"), []string{
		"pending: queued",
		"pending: running (attempt 1/3)",
		"pending: failed; retrying in 1s (attempt 2/3)",
		"pending: running (attempt 2/3)",
		"success: passed in",
	})
	st := final["yci/flaky"]
	if d := st.GetDescription(); !strings.HasSuffix(d, "on attempt 2") {
		t.Errorf("final description %q does not name attempt 2", d)
	}
	log, err := os.ReadFile(s.workspacePath(w.name, owner, repoName, "pulls", strconv.Itoa(n), "1", "flaky", "out.txt"))
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{"attempt of flaky": 2, "simulated network failure": 1, "passed this time": 1}
	for line, want := range counts {
		if got := strings.Count(string(log), line); got != want {
			t.Errorf("out.txt has %q %d times, want %d (both attempts):\n%s", line, got, want, log)
		}
	}
	if got := len(s.starts(sha, "flaky")); got != 2 {
		t.Errorf("test started %d times, want 2", got)
	}
	checkSummaryAndPage(t, s, w, n, sha, "success: 1 passed (1 flaky) of 1")
}

func TestDuplicateEventsBuildOnce(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	w := s.startWorker("worker", "YCI_JOBS=1")
	n, sha := s.openPull(map[string]string{".yci.py": yciPy([]string{"once"}, 0, 0), "test.sh": s.script("echo done")})
	s.waitFinal(sha, "yci/once")

	// GitHub's "Redeliver" button: the same X-GitHub-Delivery again.
	var opened string
	for _, d := range s.gh.Deliveries() {
		if d.Event == "pull_request" && d.Action == "opened" {
			opened = d.ID
		}
	}
	resp, err := s.gh.Redeliver(s.ctx, opened)
	if err != nil || resp.StatusCode >= 300 {
		t.Fatalf("redelivering %s: %v %v", opened, resp, err)
	}
	// The same commit again under a new delivery id, as a second webhook
	// or a reconcile sweep would send it.
	payload, err := s.gh.PullRequestPayload(owner, repoName, n, "opened")
	if err != nil {
		t.Fatal(err)
	}
	resp, _, err = fakegithub.Deliver(s.ctx, s.recv.WebhookURL, secret, "pull_request", payload)
	if err != nil || resp.StatusCode >= 300 {
		t.Fatalf("delivering a duplicate: %v %v", resp, err)
	}
	// With one slot, pull events are handled in the order they were
	// queued: once a later commit's build is final, the duplicates have
	// been handled.
	sha2 := s.push(n)
	s.waitFinal(sha2, "yci/once")

	checkHistory(t, s.descriptions(sha, "yci/once"), []string{"pending: queued", "pending: running", "success: passed in"})
	if got := len(s.starts(sha, "once")); got != 1 {
		t.Errorf("the first head's test ran %d times, want 1", got)
	}
	if diff := cmp.Diff([]string{"1", "2"}, s.buildDirs(w.name, n)); diff != "" {
		t.Errorf("builds (-want +got):\n%s", diff)
	}
	// The redelivery never reached a worker (JetStream dropped it by its
	// message id); the duplicate did, and was recognised as built. The
	// last event is counted once its handler returns, which may be after
	// the test it queued has ended: a count below 3 gets a moment more.
	var handled float64
	waitCtx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancel()
	if err := pause.Poll(waitCtx, 20*time.Millisecond, func() bool {
		handled = metric(t, w.MetricsAddr, `yci_pull_events_handled_total{result="ok"}`)
		return handled >= 3
	}); err != nil {
		t.Logf("waiting for 3 handled pull events: %v", err)
	}
	if handled != 3 {
		t.Errorf("worker handled %v pull events, want 3 (opened, duplicate, synchronize)", handled)
	}
}

// metric reads one sample from a worker's /metrics; -1 when absent.
func metric(t *testing.T, addr, series string) float64 {
	t.Helper()
	for line := range strings.Lines(fetch(t, "http://"+addr+"/metrics")) {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("metric %s: %v", series, err)
			}
			return f
		}
	}
	return -1
}

// TestEmbeddedJetStreamDefault starts receiver and worker with no NATS_URL,
// as the demo does: the receiver runs the embedded JetStream and the
// worker joins it.
func TestEmbeddedJetStreamDefault(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{nats: embedded})
	s.startWorker("worker", "YCI_JOBS=1")
	// The test dumps every environment and command line it can read.
	dump := `echo hello; for f in /proc/[0-9]*/environ /proc/[0-9]*/cmdline; do tr '\0' '\n' <"$f"; done >"$M/proc-dump" 2>/dev/null; true`
	_, sha := s.openPull(map[string]string{".yci.py": yciPy([]string{"hello"}, 0, 0), "test.sh": s.script(dump)})
	if st := s.waitFinal(sha, "yci/hello")["yci/hello"]; st.GetState() != "success" {
		t.Errorf("status %s %q, want success", st.GetState(), st.GetDescription())
	}
	checkEmbeddedCredentials(t, s)
	entries, err := os.ReadDir(s.workspacePath("receiver", "nats"))
	if err != nil || len(entries) == 0 {
		t.Errorf("the receiver's embedded JetStream store is empty or missing: %v", err)
	}
	if slices.ContainsFunc(s.gh.Statuses(owner, repoName, sha), func(st github.RepoStatus) bool {
		return st.GetState() == "error"
	}) {
		t.Errorf("error statuses on the way:\n%s", s.history(sha))
	}
}

// checkEmbeddedCredentials checks the embedded JetStream's credentials: a
// 0600 file, required of every client, and in no process's environment or
// command line that the test could read.
func checkEmbeddedCredentials(t *testing.T, s *stack) {
	t.Helper()
	path := filepath.Join(s.cfg.Dir, "nats.credentials")
	info, err := os.Stat(path)
	if err != nil {
		t.Fatalf("the embedded JetStream's credentials: %v", err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %04o, want 0600", path, info.Mode().Perm())
	}
	creds, err := natsserver.ReadCredentials(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = nats.Connect("nats://127.0.0.1:"+strconv.Itoa(s.cfg.NATSPort), nats.Timeout(5*time.Second))
	if !errors.Is(err, nats.ErrAuthorization) {
		t.Errorf("a client without credentials: %v, want %v", err, nats.ErrAuthorization)
	}
	dump, err := os.ReadFile(filepath.Join(s.marks, "proc-dump"))
	if err != nil || !strings.Contains(string(dump), "YCI_SHA=") {
		t.Fatalf("the test's dump of /proc holds not even its own environment: %v", err)
	}
	if strings.Contains(string(dump), creds.Password) {
		t.Error("the NATS password is in an environment or command line the test could read")
	}
}
