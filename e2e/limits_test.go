package e2e

import (
	"strings"
	"testing"

	"github.com/yourci/yourci/pkg/limits"
	"github.com/yourci/yourci/pkg/limits/limitstest"
	"github.com/yourci/yourci/pkg/sandbox/sandboxtest"
)

const limitsPy = `from yci.run import Bash

def test_generator(build_id, pull):
    yield Bash('python3 bomb.py', name='bomb')
    yield Bash('for i in $(seq 20); do /bin/true; done; echo built', name='good')
`

// bomb forks until the process limit, each child sleeping, then exits
// leaving them (bash would retry each failed fork for 15 s).
const bombPy = `import os, time
n = 0
while True:
    try:
        if os.fork() == 0:
            time.sleep(100)
            os._exit(0)
        n += 1
    except OSError as e:
        print("fork failed after", n, ":", e, flush=True)
        raise SystemExit(1)
`

var limitsConfig = limits.Config{Memory: 300 << 20, Pids: 64}

// TestForkBombEndsInErrorAndSparesTheOtherTest runs the real worker with a
// 64-process limit on a pull request whose one test fork-bombs while the
// other runs: the bomb ends "error" naming the limit, the other passes.
func TestForkBombEndsInErrorAndSparesTheOtherTest(t *testing.T) {
	t.Parallel()
	if !sandboxtest.Available(t) {
		t.Skip("bubblewrap not usable; set YCI_REQUIRE_BWRAP=1 to make this a failure")
	}
	limitstest.Open(t, limitsConfig)
	s := newStack(t, stackOptions{sandbox: true})
	s.startWorker("worker", "YCI_JOBS=2", "YCI_PIDS_LIMIT=64", "YCI_MEMORY_LIMIT=314572800")
	_, sha := s.openPull(map[string]string{".yci.py": limitsPy, "bomb.py": bombPy})
	final := s.waitFinal(sha, "yci/bomb", "yci/good")
	if st := final["yci/good"]; st.GetState() != "success" {
		t.Errorf("good: %s %s", st.GetState(), st.GetDescription())
	}
	if st := final["yci/bomb"]; st.GetState() != "error" || !strings.Contains(st.GetDescription(), "64 processes") {
		t.Errorf("bomb: %s %q; want error naming the limit of 64 processes", st.GetState(), st.GetDescription())
	}
}
