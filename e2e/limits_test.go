package e2e

import (
	"os"
	"path/filepath"
	"strconv"
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

// bomb forks until the process limit, each child sleeping, and then holds
// the limit (a file "holding" says so) until the test writes "release"
// into its working copy, for at most two minutes; then it exits leaving
// the children (bash would retry each failed fork for 15 s).
const bombPy = `import os, time
n = 0
while True:
    try:
        if os.fork() == 0:
            time.sleep(300)
            os._exit(0)
        n += 1
    except OSError as e:
        print("fork failed after", n, ":", e, flush=True)
        break
open("holding", "w").close()
for i in range(1200):
    if os.path.exists("release"):
        break
    time.sleep(0.1)
raise SystemExit(1)
`

const victimPy = `from yci.run import Bash

def test_generator(build_id, pull):
    yield Bash('for i in $(seq 20); do /bin/true; done; echo built', name='victim')
`

var limitsConfig = limits.Config{Memory: 300 << 20, Pids: 64}

// TestForkBombEndsInErrorAndSparesTheOtherTest runs the real worker with a
// 64-process limit on a pull request whose one test fork-bombs while the
// other runs. While the bomb holds its limit, another pull request is
// opened, prepared and tested: it passes before the bomb ends. Then the
// bomb ends "error" naming the limit, and its sibling passes.
func TestForkBombEndsInErrorAndSparesTheOtherTest(t *testing.T) {
	t.Parallel()
	if !sandboxtest.Available(t) {
		t.Skip("bubblewrap not usable; set YCI_REQUIRE_BWRAP=1 to make this a failure")
	}
	limitstest.Open(t, limitsConfig)
	s := newStack(t, stackOptions{sandbox: true})
	s.startWorker("worker", "YCI_JOBS=2", "YCI_PIDS_LIMIT=64", "YCI_MEMORY_LIMIT=314572800")
	n, sha := s.openPull(map[string]string{".yci.py": limitsPy, "bomb.py": bombPy})
	copyDir := s.workspacePath("worker", owner, repoName, "pulls", strconv.Itoa(n), "1", "bomb", "source")
	s.waitUntil("the bomb holding the process limit", func() bool {
		_, err := os.Stat(filepath.Join(copyDir, "holding"))
		return err == nil
	})
	_, sha2 := s.openBranch("victim", map[string]string{".yci.py": victimPy})
	if st := s.waitFinal(sha2, "yci/victim")["yci/victim"]; st.GetState() != "success" {
		t.Errorf("the other pull request's test: %s %q; want success while the bomb holds", st.GetState(), st.GetDescription())
	}
	if st := s.gh.LatestStatuses(owner, repoName, sha)["yci/bomb"]; st.GetState() != "pending" {
		t.Errorf("the bomb is final (%s) before it was released:\n%s", st.GetState(), s.history(sha))
	}
	if err := os.WriteFile(filepath.Join(copyDir, "release"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	final := s.waitFinal(sha, "yci/bomb", "yci/good")
	if st := final["yci/good"]; st.GetState() != "success" {
		t.Errorf("good: %s %s", st.GetState(), st.GetDescription())
	}
	if st := final["yci/bomb"]; st.GetState() != "error" || !strings.Contains(st.GetDescription(), "64 processes") {
		t.Errorf("bomb: %s %q; want error naming the limit of 64 processes", st.GetState(), st.GetDescription())
	}
}

const fillPy = `from yci.run import Bash

def test_generator(build_id, pull):
    for i in range(3):
        yield Bash('dd if=/dev/zero of=/tmp/fill bs=1M count=1000 2>&1 | tail -1; echo filled', name='fill-%d' % i)
`

// TestFilledTmpfsKillsTheTestsNotTheWorker puts the test binary, and so
// the worker and its embedded JetStream it starts, in a 1.5 GiB v1 memory
// cgroup, as a box's unit would, and runs three tests at once that each
// fill their 1 GiB tmpfs under a 300 MiB limit: each fails naming the
// limit, and the worker goes on to build the next push. Not parallel: it
// moves the whole test process.
func TestFilledTmpfsKillsTheTestsNotTheWorker(t *testing.T) {
	if !sandboxtest.Available(t) {
		t.Skip("bubblewrap not usable; set YCI_REQUIRE_BWRAP=1 to make this a failure")
	}
	limitstest.Open(t, limitsConfig)
	own, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	var mem string
	for _, line := range strings.Split(string(own), "\n") {
		if parts := strings.SplitN(line, ":", 3); len(parts) == 3 && parts[1] == "memory" {
			mem = filepath.Join("/sys/fs/cgroup/memory", parts[2])
		}
	}
	box := filepath.Join(mem, "e2e-worker-"+strconv.Itoa(os.Getpid()))
	if err := os.Mkdir(box, 0o755); err != nil {
		t.Fatal(err)
	}
	pid := []byte(strconv.Itoa(os.Getpid()))
	t.Cleanup(func() {
		if err := os.WriteFile(filepath.Join(mem, "cgroup.procs"), pid, 0o644); err != nil {
			t.Error(err)
		}
		if err := os.Remove(box); err != nil {
			t.Error(err)
		}
	})
	if err := os.WriteFile(filepath.Join(box, "memory.limit_in_bytes"), []byte(strconv.Itoa(3<<29)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(box, "cgroup.procs"), pid, 0o644); err != nil {
		t.Fatal(err)
	}
	s := newStack(t, stackOptions{sandbox: true})
	s.startWorker("worker", "YCI_JOBS=3", "YCI_MEMORY_LIMIT=314572800")
	n, sha := s.openPull(map[string]string{".yci.py": fillPy})
	final := s.waitFinal(sha, "yci/fill-0", "yci/fill-1", "yci/fill-2")
	for _, name := range []string{"fill-0", "fill-1", "fill-2"} {
		log, err := os.ReadFile(s.workspacePath("worker", owner, repoName, "pulls", strconv.Itoa(n), "1", name, "out.txt"))
		if err != nil {
			t.Fatal(err)
		}
		if st := final["yci/"+name]; st.GetState() != "failure" || !strings.Contains(string(log), "killed: used more than 300 MiB of memory") {
			t.Errorf("%s: %s %q; want failure with the 300 MiB limit in its log:\n%s", name, st.GetState(), st.GetDescription(), log)
		}
	}
	if oom := counterOf(t, filepath.Join(box, "memory.oom_control"), "oom_kill"); oom != 0 {
		t.Errorf("the worker's own cgroup saw %d OOM kills; want the tests' cgroups to take them", oom)
	}
	sha2 := s.push(n)
	// The worker is still there to build the next push.
	for name, st := range s.waitFinal(sha2, "yci/fill-0", "yci/fill-1", "yci/fill-2") {
		if name != "yci" && st.GetState() != "failure" {
			t.Errorf("next push %s: %s %q", name, st.GetState(), st.GetDescription())
		}
	}
}

func counterOf(t *testing.T, file, key string) int {
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, " "); ok && k == key {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return 0
}
