package e2e

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// pullReadRoute is the API request that reads one pull request.
const pullReadRoute = "GET /repos/{owner}/{repo}/pulls/{number}"

// TestWebhookBuildsWithoutReadingThePullRequest: the stand-in delivers
// opened and synchronize webhooks (a second apart), and each build's
// .yci.py sees the pull request the delivery carried and its test runs,
// without the worker ever reading the pull request from the API.
func TestWebhookBuildsWithoutReadingThePullRequest(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	s.startWorker("worker", "YCI_JOBS=2")
	py := "from yci.run import Bash\n\ndef test_generator(build_id, pull):\n" +
		"    yield Bash('echo \"title=$TITLE ref=$YCI_HEAD_REF\"', env={'TITLE': pull['title']}, name='t')\n"
	n, first := s.openPull(map[string]string{".yci.py": py})
	s.waitFinal(first, "yci/t")
	// A push in the second the pull opened would make the head record
	// ambiguous, which one read settles (see events.HeadRecord); GitHub's
	// pushes are seldom that quick, this test's would often be.
	s.nextSecond()
	second := s.push(n)
	s.waitFinal(second, "yci/t")

	for build, sha := range []string{first, second} {
		st := s.waitFinal(sha, "yci/t")["yci/t"]
		if st.GetState() != "success" {
			t.Errorf("build %d: yci/t %s %q", build+1, st.GetState(), st.GetDescription())
		}
		log, err := os.ReadFile(s.workspacePath("worker", owner, repoName, "pulls", strconv.Itoa(n), strconv.Itoa(build+1), "t", "out.txt"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(log), "title=Add tests ref=feature") {
			t.Errorf("build %d: the test did not see the delivered pull request:\n%s", build+1, log)
		}
	}
	if reads := s.gh.Requests().ByRoute[pullReadRoute]; reads != 0 {
		t.Errorf("the worker read the pull request %d times; the webhooks carried it", reads)
	}
}
