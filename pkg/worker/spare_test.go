package worker

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
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
