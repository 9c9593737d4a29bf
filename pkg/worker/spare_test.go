package worker

import (
	"bytes"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/yourci/yourci/pkg/artifacts"
)

// lockedBuffer is a bytes.Buffer a logger and a test may share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// spareYciPy writes into the build's source while it is evaluated, as an
// unsandboxed evaluation can, and asks for two tests that each report
// whether their copy is a clean checkout.
const spareYciPy = `from yci.run import Bash
open('written-by-evaluation', 'w').write('dirt')

def test_generator(build_id, pull):
    for name in ('one', 'two'):
        yield Bash('test ! -e written-by-evaluation && test -z "$(git status --porcelain)" && git diff-index --quiet HEAD -- && echo clean-copy', name=name)
`

// TestFirstTestTakesTheSpareCopy shows one test of a build starting in the
// spare copy the pull handler checked out while .yci.py was evaluated,
// without a checkout of its own, and both tests starting from a clean
// checkout: not the build's source, which the evaluation wrote into.
func TestFirstTestTakesTheSpareCopy(t *testing.T) {
	t.Parallel()
	var logs lockedBuffer
	r := newRig(t, func(o *Options) {
		o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	pr := r.openPull(t, map[string]string{".yci.py": spareYciPy})
	sha := pr.GetHead().GetSHA()
	r.publish(t, pr.GetNumber(), sha, "delivery-1")
	final := r.waitFinal(t, sha, "yci/one", "yci/two")
	for _, name := range []string{"one", "two"} {
		if s := final["yci/"+name]; s.GetState() != "success" {
			t.Errorf("%s: %s (%s), want success:\n%s", name, s.GetState(), s.GetDescription(), r.readLog(t, pr.GetNumber(), 1, name))
		}
	}
	var spare, own int
	for line := range strings.Lines(logs.String()) {
		if !strings.Contains(line, `msg="prepared test"`) {
			continue
		}
		switch {
		case strings.Contains(line, "spare=true"):
			spare++
		case strings.Contains(line, "spare=false"):
			own++
		}
	}
	if spare != 1 || own != 1 {
		t.Errorf("tests prepared in the spare: %d, in their own checkout: %d; want 1 and 1; log:\n%s", spare, own, logs.String())
	}
}

// TestSpareOfABuildWithoutTestsIsRemoved shows the spare copy removed once
// the build is handled when no test will take it.
func TestSpareOfABuildWithoutTestsIsRemoved(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ name, yciPy string }{
		{"refused", "raise ValueError('no')\n"},
		{"no_tests", "def test_generator(build_id, pull):\n    return []\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t)
			pr := r.openPull(t, map[string]string{".yci.py": tt.yciPy})
			r.publish(t, pr.GetNumber(), pr.GetHead().GetSHA(), "delivery-1")
			r.settled(t)
			b := artifacts.Build{Owner: owner, Repo: repoName, Pull: pr.GetNumber(), Number: 1}
			src, err := r.ws.SourceDir(b)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(src, ".yci.py")); err != nil {
				t.Fatalf("the build was not checked out: %v", err)
			}
			spare, err := r.ws.SpareSourceDir(b)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := os.Lstat(spare); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("spare copy %s left after a build without tests: %v", spare, err)
			}
		})
	}
}
