// Package natstest runs the nats-server binary (Debian's 2.9.10, the
// oldest server YourCI supports) for tests, beside the embedded module that
// natsserver runs. It is kept apart so that no command links the testing
// package.
package natstest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/yourci/yourci/pkg/natsserver"
)

// DebianBinary is where Debian's nats-server package (2.9.10, the oldest
// server YourCI supports) installs the server.
const DebianBinary = "/usr/sbin/nats-server"

// Environment variables read by StartExternal.
const (
	// EnvBinary names the nats-server binary to run instead of the one
	// found on PATH or at DebianBinary.
	EnvBinary = "YCI_NATS_SERVER"
	// EnvRequire, set to 1, turns a missing binary into a test failure
	// instead of a skip, so CI cannot pass without testing against it.
	EnvRequire = "YCI_REQUIRE_NATS_SERVER"
)

// externalStopWait bounds how long Shutdown waits for the process to exit
// after SIGTERM before killing it.
const externalStopWait = 10 * time.Second

// External is a nats-server binary run as a child process for a test. It
// exists so that tests run against the oldest supported server, not only
// the embedded module.
type External struct {
	tb       testing.TB
	binary   string
	storeDir string
	port     int
	cmd      *exec.Cmd
	exited   chan struct{}
	logs     *lockedBuffer
	stopOnce sync.Once
	// creds, when set, are required of every client, as on a production
	// box (deploy/nats/single.conf).
	creds *natsserver.Credentials
	// name is the server's name (-n): a cluster node's, or one derived
	// from storeDir. Readiness is its greeting, not any server's on the
	// port (see waitReady).
	name string
	// extra are further arguments (a cluster node's routes).
	extra []string
}

// storeName is the name of a server that keeps its files in storeDir, the
// same on every restart.
func storeName(storeDir string) string {
	sum := sha256.Sum256([]byte(storeDir))
	return "yci-test-" + hex.EncodeToString(sum[:6])
}

// FindBinary returns the nats-server binary tests should run: $YCI_NATS_SERVER,
// else nats-server on PATH, else DebianBinary. It reports false when none
// exists.
func FindBinary() (string, bool) {
	if p := os.Getenv(EnvBinary); p != "" {
		return p, true
	}
	if p, err := exec.LookPath("nats-server"); err == nil {
		return p, true
	}
	if _, err := os.Stat(DebianBinary); err == nil {
		return DebianBinary, true
	}
	return "", false
}

// requireBinary returns FindBinary's binary, or skips the test (fails it
// when YCI_REQUIRE_NATS_SERVER=1) when there is none.
func requireBinary(tb testing.TB) string {
	tb.Helper()
	binary, ok := FindBinary()
	if !ok {
		if os.Getenv(EnvRequire) == "1" {
			tb.Fatalf("no nats-server binary found (looked at $%s, PATH and %s) and %s=1", EnvBinary, DebianBinary, EnvRequire)
		}
		tb.Skipf("no nats-server binary found (looked at $%s, PATH and %s)", EnvBinary, DebianBinary)
	}
	return binary
}

// StartExternal runs `nats-server -js -sd StoreDir -a Host -p Port` and
// returns once it accepts connections. With opts.Credentials the server
// requires that user and password of every client, and URL carries them. The test is skipped when no binary
// is found, unless YCI_REQUIRE_NATS_SERVER=1. The process is stopped when
// the test ends; Shutdown stops it earlier (to test a restart, call
// StartExternal again with the same StoreDir and Port).
func StartExternal(tb testing.TB, opts natsserver.Options) *External {
	tb.Helper()
	binary := requireBinary(tb)
	if err := opts.Validate(); err != nil {
		tb.Fatal(err)
	}
	host := opts.Host
	if host == "" {
		host = "127.0.0.1"
	}
	var lastErr error
	// A port picked as free may be taken before the server binds it; try
	// again with another.
	for range 3 {
		port := opts.Port
		if port <= 0 {
			p, err := freePort(host)
			if err != nil {
				tb.Fatal(err)
			}
			port = p
		}
		e := &External{tb: tb, binary: binary, storeDir: opts.StoreDir, port: port, logs: &lockedBuffer{}, creds: opts.Credentials,
			name: storeName(opts.StoreDir)}
		if lastErr = e.start(host); lastErr == nil {
			tb.Cleanup(e.cleanup)
			return e
		}
		if opts.Port > 0 {
			break
		}
	}
	tb.Fatalf("starting %s: %v", binary, lastErr)
	return nil
}

func (e *External) start(host string) error {
	args := []string{"-js", "-sd", e.storeDir, "-a", host, "-p", strconv.Itoa(e.port), "-n", e.name}
	if e.creds != nil {
		// On the command line, which is fine for a test's server: no test
		// process can see another's command line from its sandbox.
		args = append(args, "--user", e.creds.User, "--pass", e.creds.Password)
	}
	args = append(args, e.extra...)
	e.cmd = exec.Command(e.binary, args...)
	e.cmd.Stdout = e.logs
	e.cmd.Stderr = e.logs
	if err := e.cmd.Start(); err != nil {
		return fmt.Errorf("running %s: %w", e.binary, err)
	}
	e.exited = make(chan struct{})
	go func() {
		// The exit status is of no interest: a server stopped by
		// Shutdown exits non-zero, and an early exit is reported by
		// waitReady with the server's own log.
		_ = e.cmd.Wait()
		close(e.exited)
	}()
	if err := e.waitReady(host); err != nil {
		e.Shutdown()
		return fmt.Errorf("%w; server log:\n%s", err, e.logs.String())
	}
	return nil
}

// waitReady polls until the server greets a client with its INFO line,
// under its own name: the port was picked free a moment before the server
// was started, and another test's server may have taken it first, while
// this one is about to exit for want of it.
func (e *External) waitReady(host string) error {
	addr := net.JoinHostPort(host, strconv.Itoa(e.port))
	deadline := time.Now().Add(natsserver.ReadyTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-e.exited:
			return errors.New("nats-server exited during start")
		default:
		}
		if name, ok := natsserver.Greeting(addr); ok && name == e.name {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("nats-server not ready on %s after %s", addr, natsserver.ReadyTimeout)
}

// URL is the client URL, nats://host:port, or nats://user:password@host:port
// when the server requires credentials.
func (e *External) URL() string {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(e.port))
	if e.creds != nil {
		return e.creds.URL(addr)
	}
	return "nats://" + addr
}

// Port is the port the server listens on.
func (e *External) Port() int { return e.port }

// Binary is the path of the server binary that runs.
func (e *External) Binary() string { return e.binary }

// Shutdown stops the server with SIGTERM, killing it if it has not exited
// within ten seconds, and returns once it has exited. Calling it more than
// once is harmless.
func (e *External) Shutdown() {
	e.stopOnce.Do(func() {
		if err := e.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			e.tb.Logf("signalling nats-server: %v", err)
		}
		select {
		case <-e.exited:
		case <-time.After(externalStopWait):
			if err := e.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
				e.tb.Logf("killing nats-server: %v", err)
			}
			<-e.exited
		}
	})
}

func (e *External) cleanup() {
	e.Shutdown()
	if e.tb.Failed() {
		e.tb.Logf("%s log:\n%s", e.binary, e.logs.String())
	}
}

func freePort(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// lockedBuffer collects the child's output, written by exec's copying
// goroutines and read by the test.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
