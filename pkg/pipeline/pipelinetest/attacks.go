// Package pipelinetest plays hostile .yci.py files against an Evaluator,
// with or without a sandbox, and checks that no attack on what the worker
// reads back from the evaluation works.
package pipelinetest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/yourci/yourci/pkg/pipeline"
)

// plant is python that puts link or node in place of every file the
// worker once read back from the evaluation's directory (result.json,
// stacks.txt), where it can: in a sandbox that directory is read-only.
func plant(node string) string {
	return `import os, yci
work = os.path.dirname(os.path.dirname(yci.__file__))
for name in ('result.json', 'result.json.tmp', 'stacks.txt'):
    p = os.path.join(work, name)
    try:
        os.remove(p)
    except OSError:
        pass
    try:
        ` + node + `
    except OSError:
        pass
`
}

// Hang and exit end an attack: hang makes the worker time python out and
// read its stacks, exit makes it read the result.
const (
	hang = "\ndef test_generator(build_id, pull):\n    while True:\n        pass\n    yield None\n"
	exit = "\nos._exit(0)\n"
)

// flood writes without end to every descriptor the evaluation has.
const flood = `import os, threading
def spew(fd):
    chunk = b'{"tests": [' + b'A' * 65536
    while True:
        try:
            os.write(fd, chunk)
        except OSError:
            return
for fd in (1, 2, 3, 4):
    threading.Thread(target=spew, args=(fd,), daemon=True).start()
`

// Attack is one hostile .yci.py.
type Attack struct {
	Name string
	// Source is the .yci.py; SECRET in it stands for the secret file's path.
	Source string
	// Want is in the *ConfigError's message: how the evaluation ended.
	Want string
	// EndsItself says python exits by itself: the evaluation's time limit
	// must not cut it short, however slow a loaded machine runs it.
	EndsItself bool
}

// generousTimeout is the time limit of attacks that end themselves: far
// past what python needs to start and exit on a loaded machine, so that
// only an attack that really holds on can reach it.
const generousTimeout = 2 * time.Minute

// Attacks are the attacks on every channel back from an evaluation: each
// file the worker used to read replaced by a symlink to a secret, a
// symlink to the worker's environment, a FIFO nobody writes, a link to
// /dev/zero and a file growing without end; and every descriptor flooded.
func Attacks() []Attack {
	nodes := []struct{ name, node string }{
		{"symlink_to_secret", "os.symlink('SECRET', p)"},
		{"symlink_to_environ", "os.symlink('/proc/self/environ', p)"},
		{"fifo", "os.mkfifo(p)"},
		{"dev_zero", "os.symlink('/dev/zero', p)"},
		{"growing_file", "open(p, 'wb').close(); __import__('subprocess').Popen(['sh', '-c', 'while :; do head -c 1048576 /dev/zero; done >>' + p])"},
	}
	var out []Attack
	for _, n := range nodes {
		out = append(out,
			Attack{Name: n.name + "_then_timeout", Source: plant(n.node) + hang, Want: "evaluation stopped after"},
			Attack{Name: n.name + "_then_exit", Source: plant(n.node) + exit, Want: "before reporting its tests", EndsItself: true})
	}
	return append(out,
		Attack{Name: "flood_every_descriptor_then_timeout", Source: flood + hang, Want: "evaluation stopped after"},
		Attack{Name: "forged_result_then_garbage", Source: "import os\nos.write(3, b'{\"tests\": []} {}')\nos._exit(0)\n",
			Want: "more than one document", EndsItself: true},
		Attack{Name: "child_keeps_result_pipe_open", Source: "import os, subprocess\n" +
			"subprocess.Popen(['sleep', '20'], pass_fds=(3, 4), start_new_session=True)\n" + hang,
			Want: "evaluation stopped after"},
	)
}

// Play runs every attack against e (whose Timeout should be a few seconds,
// which attacks that hang run into; those that end themselves get a
// generous limit instead) in parallel subtests. Each must end in a *ConfigError saying how python
// ended, holding neither the secret file's text nor the worker's
// environment (its PATH= entry), and Evaluate must return well within its time limit plus
// the time to drain: no slot hangs.
func Play(t *testing.T, e *pipeline.Evaluator) {
	secretText := "SECRET-KEY-MATERIAL-" + filepath.Base(t.TempDir())
	secret := filepath.Join(t.TempDir(), "app.pem")
	if err := os.WriteFile(secret, []byte(secretText+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, a := range Attacks() {
		t.Run(a.Name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "source")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			src := strings.ReplaceAll(a.Source, "SECRET", secret)
			if err := os.WriteFile(filepath.Join(dir, pipeline.ConfigFile), []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			ev := e
			if a.EndsItself {
				generous := *e
				generous.Timeout = max(e.Timeout, generousTimeout)
				ev = &generous
			}
			err := evaluate(t, ev, dir)
			var cerr *pipeline.ConfigError
			if !errors.As(err, &cerr) {
				t.Fatalf("Evaluate error = %v, want a *ConfigError", err)
			}
			if !strings.Contains(cerr.Error(), a.Want) {
				t.Errorf("Error() = %q, want it to say %q", cerr.Error(), a.Want)
			}
			shown := cerr.Error() + "\n" + cerr.Detail()
			for _, leak := range []string{secretText, "PATH="} {
				if strings.Contains(shown, leak) {
					t.Errorf("the report holds %q:\n%.4000s", leak, shown)
				}
			}
		})
	}
}

// evaluate runs e and fails t when it has not returned by a deadline far
// past its time limit: an attack that holds a slot.
func evaluate(t *testing.T, e *pipeline.Evaluator, dir string) error {
	t.Helper()
	limit := e.Timeout + 30*time.Second
	ctx, cancel := context.WithTimeout(t.Context(), 2*limit)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := e.Evaluate(ctx, dir, 1, nil)
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(limit):
		t.Fatalf("Evaluate has not returned %s after it started: the attack holds the slot", limit)
		return nil
	}
}
