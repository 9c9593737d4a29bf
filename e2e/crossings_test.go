package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/yourci/yourci/pkg/fakegithub"
	"github.com/yourci/yourci/pkg/sandbox/sandboxtest"
)

// timeoutSymlinkPy replaces the files the worker once read back from an
// evaluation with links to a secret (%[1]s) and to the worker's
// environment, where it can, then loops until the evaluation's limit.
const timeoutSymlinkPy = `import os, yci
work = os.path.dirname(os.path.dirname(yci.__file__))
for name, target in (('stacks.txt', '/proc/self/environ'), ('result.json', %[1]q)):
    try:
        os.symlink(target, os.path.join(work, name))
    except OSError:
        pass

def test_generator(build_id, pull):
    while True:
        pass
    yield None
`

// TestEvaluationTimeoutWithSymlinksLeaksNothing plays the timeout+symlink
// attack on .yci.py through a signed webhook, against the real worker in
// its sandbox and with -sandbox none: the served yci/out.txt locates the
// hang and holds neither the secret nor the worker's environment, and a
// later pull request still builds.
func TestEvaluationTimeoutWithSymlinksLeaksNothing(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"bwrap", "none"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			if mode == "bwrap" && !sandboxtest.Available(t) {
				t.Skip("bubblewrap not usable; set YCI_REQUIRE_BWRAP=1 to make this a failure")
			}
			s := newStack(t, stackOptions{sandbox: mode == "bwrap"})
			w := s.startWorker("worker")
			secretText := "APP-PRIVATE-KEY-" + strings.ToUpper(filepath.Base(t.TempDir()))
			secret := filepath.Join(t.TempDir(), "app.pem")
			if err := os.WriteFile(secret, []byte(secretText+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			n, sha := s.openPull(map[string]string{".yci.py": fmt.Sprintf(timeoutSymlinkPy, secret)})
			st := s.waitFinal(sha, "yci")["yci"]
			if st.GetState() != "error" || !strings.Contains(st.GetDescription(), "stopped after") {
				t.Fatalf("yci: %s %q, want an error saying the evaluation was stopped\n%s", st.GetState(), st.GetDescription(), s.history(sha))
			}
			want := w.httpRoot + owner + "/" + repoName + "/pulls/" + strconv.Itoa(n) + "/1/yci/out.txt"
			if st.GetTargetURL() != want {
				t.Errorf("target URL %q, want %q", st.GetTargetURL(), want)
			}
			log := fetch(t, st.GetTargetURL())
			if !strings.Contains(log, "Where Python was when it was stopped") {
				t.Errorf("the served log does not locate the hang:\n%s", log)
			}
			for _, leak := range []string{secretText, "PATH=", "GITHUB_"} {
				if strings.Contains(log, leak) || strings.Contains(st.GetDescription(), leak) {
					t.Errorf("the served log or status holds %q:\n%s", leak, log)
				}
			}

			if _, err := s.gh.Commit(owner, repoName, "healthy", map[string]string{".yci.py": oneTestPy}, "Add a test"); err != nil {
				t.Fatal(err)
			}
			pr, err := s.gh.OpenPull(owner, repoName, fakegithub.PullSpec{Head: "healthy", Title: "Healthy"})
			if err != nil {
				t.Fatal(err)
			}
			if st := s.waitFinal(pr.GetHead().GetSHA(), "yci/t")["yci/t"]; st.GetState() != "success" {
				t.Errorf("a later pull request: yci/t %s %q, want success\n%s", st.GetState(), st.GetDescription(), s.history(pr.GetHead().GetSHA()))
			}
		})
	}
}
