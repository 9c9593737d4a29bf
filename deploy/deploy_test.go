// Package deploy holds no code: its tests run the real nginx and nats-server
// from Debian's packages against the configuration files shipped in this
// directory, so that what an operator installs is what was tested.
package deploy

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// processTimeout bounds every wait on a server the tests start: for it to
// answer, and for it to stop.
const processTimeout = 20 * time.Second

// requireBinary returns the path of a server the test runs. The test is
// skipped when it is missing, unless requireEnv is "1" (CI sets it), in which
// case it fails. overrideEnv, when set, names another binary.
func requireBinary(t *testing.T, defaultPath, overrideEnv, requireEnv string) string {
	t.Helper()
	path := defaultPath
	if p := os.Getenv(overrideEnv); p != "" {
		path = p
	}
	if _, err := exec.LookPath(path); err != nil {
		if os.Getenv(requireEnv) == "1" {
			t.Fatalf("%s is required (%s=1) but not usable: %v", path, requireEnv, err)
		}
		t.Skipf("%s not usable (%v); set %s=1 to make this a failure", path, err, requireEnv)
	}
	return path
}

// readDeployFile returns a file of this directory, such as
// "nginx/yourci.conf".
func readDeployFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.FromSlash(name))
	if err != nil {
		t.Fatalf("reading %s: %v", name, err)
	}
	return string(b)
}

// substitute replaces each old string of the pairs with its new string,
// failing the test when an old string is missing: the shipped file must still
// contain every line the test (and the operator's guide) says to change.
func substitute(t *testing.T, name, text string, oldnew ...string) string {
	t.Helper()
	for i := 0; i+1 < len(oldnew); i += 2 {
		if !strings.Contains(text, oldnew[i]) {
			t.Fatalf("%s no longer contains %q, which the test replaces", name, oldnew[i])
		}
		text = strings.ReplaceAll(text, oldnew[i], oldnew[i+1])
	}
	return text
}

// freePorts returns n distinct TCP ports on 127.0.0.1 that were free a moment
// ago. They are held open together, so they differ from one another; another
// process could still take one before the server under test binds it, which
// startup errors then report.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	ports := make([]int, 0, n)
	listeners := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("finding a free port: %v", err)
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// waitListening polls addr until it accepts a TCP connection, the process
// behind it exits (exited is closed), or processTimeout passes. It returns
// false when the server never answered.
func waitListening(addr string, exited <-chan struct{}) bool {
	deadline := time.Now().Add(processTimeout)
	for time.Now().Before(deadline) {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			return true
		}
		select {
		case <-exited:
			return false
		case <-time.After(20 * time.Millisecond):
		}
	}
	return false
}

// process is a server started by a test and stopped when the test ends.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed once cmd.Wait returns
	err    error         // cmd.Wait's result, set before exited is closed
}

// startProcess runs cmd and arranges for it to be stopped with stopSignal,
// then killed if it has not exited within processTimeout, at the end of t.
func startProcess(t *testing.T, cmd *exec.Cmd, stopSignal os.Signal) *process {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", cmd.Path, err)
	}
	p := &process{cmd: cmd, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() { p.stop(t, stopSignal) })
	return p
}

// stop signals the process and waits for it; a process that ignores the
// signal is killed and the test fails.
func (p *process) stop(t *testing.T, sig os.Signal) {
	select {
	case <-p.exited:
		return
	default:
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Errorf("signalling %s: %v", p.cmd.Path, err)
	}
	select {
	case <-p.exited:
	case <-time.After(processTimeout):
		t.Errorf("%s did not exit after %v; killing it", p.cmd.Path, sig)
		if err := p.cmd.Process.Kill(); err != nil {
			t.Errorf("killing %s: %v", p.cmd.Path, err)
		}
		<-p.exited
	}
}
