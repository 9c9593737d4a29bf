package e2e

import (
	"errors"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/yourci/yourci/pkg/sandbox/sandboxtest"
)

// spareAttackPy is a .yci.py that tries, while it is evaluated, every way
// it can find to reach the build's spare checkout (<build>/.spare-source,
// which the worker checks out beside the evaluation and the first test
// takes): it creates the spare itself before the worker does, waits for
// the worker's spare when the build directory is writable, and writes an
// extra file, a changed tracked file, a tracked file replaced by a
// symlink, an ignore rule hiding its files and a git hook into it through
// a relative path, its absolute path (the evaluation's cwd), /proc's cwd
// and root links, pid 1's root, every directory descriptor it holds and
// the mirror's objects its .git borrows. Each attempt is a line
// "ATTACK <name>: ok" or "ATTACK <name>: <errno>" of the report it hands
// its one test in SPARE_REPORT, with its cwd, environment and mounts.
const spareAttackPy = `import errno, os, shutil, time
from yci.run import Bash

SRC = os.getcwd()
BUILD = os.path.dirname(SRC)
SPARE = os.path.join(BUILD, '.spare-source')
report = ['cwd ' + SRC, 'env ' + ' '.join('%s=%s' % kv for kv in sorted(os.environ.items()))]
try:
    with open('/proc/self/mountinfo') as f:
        report.append('mounts ' + ' '.join(line.split()[4] for line in f))
except OSError as e:
    report.append('mounts unreadable: %s' % e)


def attempt(name, fn):
    try:
        fn()
        report.append('ATTACK %s: ok' % name)
    except OSError as e:
        report.append('ATTACK %s: %s' % (name, errno.errorcode.get(e.errno, e.errno)))


def write(path, text):
    with open(path, 'w') as f:
        f.write(text)


def append(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'a') as f:
        f.write(text)


def symlink_over(path, target):
    os.remove(path)
    os.symlink(target, path)


def poison(root, via):
    attempt(via + ' extra-file', lambda: write(os.path.join(root, 'x'), 'written through ' + via))
    attempt(via + ' tracked-file', lambda: write(os.path.join(root, 'data.txt'), 'poisoned through ' + via + '\n'))
    attempt(via + ' tracked-symlink', lambda: symlink_over(os.path.join(root, 'link.txt'), '/etc/hostname'))
    attempt(via + ' exclude-rule', lambda: append(os.path.join(root, '.git', 'info', 'exclude'), '*\n'))
    attempt(via + ' git-hook', lambda: append(os.path.join(root, '.git', 'hooks', 'post-checkout'), 'echo hooked\n'))


def precreate():
    # A poisoned copy of the build's source, moved into the spare's place
    # before the worker's checkout gets there: same HEAD, other content.
    tmp = os.path.join(BUILD, '.evaluation-spare')
    shutil.copytree(SRC, tmp, symlinks=True)
    try:
        write(os.path.join(tmp, 'x'), 'precreated')
        write(os.path.join(tmp, 'data.txt'), 'poisoned before the worker\n')
        os.rename(tmp, SPARE)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


attempt('precreate', precreate)
attempt('source-write', lambda: write(os.path.join(SRC, 'x'), 'in the source'))
if os.access(BUILD, os.W_OK):
    # The spare is being checked out beside this evaluation: wait for it.
    deadline = time.monotonic() + 20
    while not os.path.exists(os.path.join(SPARE, '.git', 'HEAD')) and time.monotonic() < deadline:
        time.sleep(0.05)
    report.append('waited for the spare: %s' % os.path.exists(SPARE))
else:
    report.append('the build directory is not writable: no wait for the spare')
poison('../.spare-source', 'relative')
poison(SPARE, 'absolute')
poison('/proc/self/cwd/../.spare-source', 'proc-cwd')
poison('/proc/self/root' + SPARE, 'proc-root')
poison('/proc/1/root' + SPARE, 'pid1-root')
for fd in sorted(os.listdir('/proc/self/fd'), key=int):
    link = '/proc/self/fd/' + fd
    try:
        target = os.readlink(link)
    except OSError:
        continue
    report.append('fd %s -> %s' % (fd, target))
    if os.path.isdir(link):
        poison(link + '/../.spare-source', 'fd-' + fd)
try:
    with open(os.path.join(SRC, '.git', 'objects', 'info', 'alternates')) as f:
        objects = f.read().strip()
    attempt('mirror-objects', lambda: write(os.path.join(objects, 'written-by-evaluation'), 'x'))
except OSError as e:
    report.append('no alternates: %s' % e)

CHECK = r'''printf '%s\n' "$SPARE_REPORT"
bad=
poisoned() { bad=1; echo "POISONED: $*"; }
if [ -e x ] || [ -L x ]; then poisoned "extra file x"; fi
if [ -L link.txt ]; then poisoned "link.txt is a symlink"; fi
if [ "$(cat link.txt)" != "a tracked file" ]; then poisoned "link.txt holds $(head -c 200 link.txt)"; fi
if [ "$(cat data.txt)" != "pristine data" ]; then poisoned "data.txt holds $(head -c 200 data.txt)"; fi
st=$(git status --porcelain --ignored --untracked-files=all)
if [ -n "$st" ]; then poisoned "git status: $st"; fi
if [ -s .git/info/exclude ]; then poisoned ".git/info/exclude holds $(head -c 200 .git/info/exclude)"; fi
if [ -n "$(ls -A .git/hooks 2>/dev/null)" ]; then poisoned ".git/hooks holds $(ls -A .git/hooks)"; fi
if [ -n "$bad" ]; then exit 1; fi
echo "PRISTINE: the tree is the commit's"
'''


def test_generator(build_id, pull):
    yield Bash(CHECK, env={'SPARE_REPORT': '\n'.join(report)}, name='spare')
`

// TestEvaluationCannotPoisonTheSpareCheckout plays spareAttackPy through
// a real worker. In its sandbox (bwrap, the service's default) no attack
// reaches the host: the build's one test takes the spare the worker
// checked out beside the evaluation and finds there the commit's tree and
// nothing else, and neither the build's source nor the mirror holds what
// the evaluation wrote. With -sandbox none the same attacks reach the spare and
// the same test sees the poison: the check has the power to fail, and an
// unsandboxed evaluation is no boundary (it runs as the worker).
func TestEvaluationCannotPoisonTheSpareCheckout(t *testing.T) {
	t.Parallel()
	files := map[string]string{
		".yci.py":  spareAttackPy,
		"data.txt": "pristine data\n",
		"link.txt": "a tracked file\n",
	}
	for _, mode := range []string{"bwrap", "none"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			if mode == "bwrap" && !sandboxtest.Available(t) {
				t.Skip("bubblewrap not usable; set YCI_REQUIRE_BWRAP=1 to make this a failure")
			}
			s := newStack(t, stackOptions{sandbox: mode == "bwrap"})
			w := s.startWorker("worker", "YCI_LOG_LEVEL=debug")
			n, sha := s.openPull(files)
			st := s.waitFinal(sha, "yci/spare")["yci/spare"]
			log := fetch(t, st.GetTargetURL())
			if n := preparedInSpare(w.Output()); n != 1 {
				t.Fatalf("the test was prepared in the spare %d times, want once:\n%s", n, log)
			}
			attacks := attackResults(log)
			if len(attacks) < 28 {
				t.Fatalf("the report holds %d attacks, want every one:\n%s", len(attacks), log)
			}
			t.Logf("attacks, as the evaluation saw them: %v", attacks)
			// What the evaluation wrote outside the spare, if it reached
			// the host: the build's source and the mirror's objects.
			traces := []string{
				s.workspacePath(w.name, owner, repoName, "pulls", strconv.Itoa(n), "1", "source", "x"),
				s.workspacePath(w.name, owner, repoName, "source", "objects", "written-by-evaluation"),
			}
			if mode == "bwrap" {
				checkSpareUnreached(t, st.GetState(), attacks, log, traces)
			} else {
				checkSparePoisoned(t, st.GetState(), attacks, log, traces)
			}
		})
	}
}

// checkSpareUnreached fails t unless every attack failed, the test
// passed, finding the spare pristine, and none of the evaluation's writes
// is on the host. An attack that succeeds is a failure even when the
// others hold: the workspace lies below /tmp here, hidden by a tmpfs that
// must be read-only (a write there vanishes with the evaluation, but is
// a write nonetheless).
func checkSpareUnreached(t *testing.T, state string, attacks map[string]string, log string, traces []string) {
	t.Helper()
	for name, result := range attacks {
		if result == "ok" {
			t.Errorf("sandboxed, attack %s succeeded", name)
		}
	}
	if state != "success" || !hasLine(log, "PRISTINE: ") || hasLine(log, "POISONED: ") {
		t.Errorf("yci/spare %s, want success in a pristine spare:\n%s", state, log)
	}
	for _, p := range traces {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("the sandboxed evaluation wrote %s on the host: %v", p, err)
		}
	}
}

// checkSparePoisoned fails t unless the attacks through the spare's
// paths got there and the test saw what they wrote: without a sandbox,
// the check must catch the poison. The traces show that the host check
// of checkSpareUnreached can fail too.
func checkSparePoisoned(t *testing.T, state string, attacks map[string]string, log string, traces []string) {
	t.Helper()
	for _, name := range []string{"relative extra-file", "absolute tracked-file", "proc-cwd tracked-symlink", "source-write", "mirror-objects"} {
		if attacks[name] != "ok" {
			t.Errorf("unsandboxed, attack %s: %s, want ok", name, attacks[name])
		}
	}
	if state != "failure" {
		t.Errorf("yci/spare %s, want failure: the poisoned spare must be seen", state)
	}
	for _, want := range []string{"POISONED: extra file x", "POISONED: data.txt holds poisoned", "POISONED: link.txt is a symlink", "POISONED: .git/hooks holds post-checkout"} {
		if !hasLine(log, want) {
			t.Errorf("the log lacks %q:\n%s", want, log)
		}
	}
	for _, p := range traces {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("the unsandboxed evaluation's write to %s is not on the host: %v", p, err)
		}
	}
}

// attackResults reads the "ATTACK <name>: <result>" lines of a log.
func attackResults(log string) map[string]string {
	out := map[string]string{}
	for line := range strings.Lines(log) {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "ATTACK ")
		if !ok {
			continue
		}
		if name, result, ok := strings.Cut(rest, ": "); ok {
			out[name] = result
		}
	}
	return out
}

// hasLine tells whether a line of the test's output (not the command the
// log shows first) starts with prefix.
func hasLine(log, prefix string) bool {
	for line := range strings.Lines(log) {
		if strings.HasPrefix(line, prefix) {
			return true
		}
	}
	return false
}

// preparedInSpare counts the worker's "prepared test" lines that say the
// test started in the build's spare checkout.
func preparedInSpare(output string) int {
	n := 0
	for line := range strings.Lines(output) {
		if strings.Contains(line, `msg="prepared test"`) && strings.Contains(line, "spare=true") {
			n++
		}
	}
	return n
}
