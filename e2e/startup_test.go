package e2e

import (
	"context"
	"errors"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/yourci/yourci/pkg/natsserver"
)

// startupLimit bounds how long a command that cannot start may take to
// exit; reaching it fails the test instead of hanging it. The goal is 2 s;
// each case logs what it took.
const startupLimit = 15 * time.Second

// TestCommandsFailToStartWithOneLineReason runs each real command against
// the failures an operator meets first: a NATS URL where nothing listens, a
// wrong NATS password, a port already taken, and (reconcile) no NATS_URL
// with no embedded JetStream to join. Each must exit non-zero with one
// error line naming the cause, no stack trace, and no password.
func TestCommandsFailToStartWithOneLineReason(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const password = "right-password-4711"
	srv, err := natsserver.Start(ctx, natsserver.Options{
		StoreDir: t.TempDir(), Port: natsserver.RandomPort,
		Credentials: &natsserver.Credentials{User: "yourci", Password: password},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	hostPort := "127.0.0.1:" + strconv.Itoa(srv.Port())
	goodURL := "nats://yourci:" + password + "@" + hostPort
	wrongURL := "nats://yourci:wrong-password-0815@" + hostPort
	const deadURL = "nats://yourci:dead-password-1234@127.0.0.1:1"

	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Close() })
	busyAddr := busy.Addr().String()
	_, busyPort, err := net.SplitHostPort(busyAddr)
	if err != nil {
		t.Fatal(err)
	}
	freePort, err := freeTCPPort()
	if err != nil {
		t.Fatal(err)
	}

	receiver := []string{"GITHUB_WEBHOOK_SECRET=s", "YCI_LISTEN=127.0.0.1:0"}
	worker := []string{"GITHUB_ACCESS_TOKEN=t", "HTTP_ROOT=http://127.0.0.1/", "YCI_METRICS_LISTEN=127.0.0.1:0"}
	reconcile := []string{"GITHUB_ACCESS_TOKEN=t", "GITHUB_REPOSITORIES=acme/widgets"}
	tests := []struct {
		name    string
		command string
		env     []string
		want    string // in the one error line
	}{
		{"receiver_bad_nats_url", "receiver", append(receiver, "NATS_URL="+deadURL), "no servers available"},
		{"receiver_wrong_password", "receiver", append(receiver, "NATS_URL="+wrongURL), "Authorization Violation"},
		{"receiver_busy_listen", "receiver", append(receiver, "NATS_URL="+goodURL, "YCI_LISTEN="+busyAddr), "address already in use"},
		{"receiver_busy_embedded_nats_port", "receiver", append(receiver, "YCI_NATS_PORT="+busyPort), "address already in use"},
		{"worker_bad_nats_url", "worker", append(worker, "NATS_URL="+deadURL), "no servers available"},
		{"worker_wrong_password", "worker", append(worker, "NATS_URL="+wrongURL), "Authorization Violation"},
		{"worker_busy_metrics_port", "worker", append(worker, "NATS_URL="+goodURL, "YCI_METRICS_LISTEN="+busyAddr), "address already in use"},
		{"reconcile_bad_nats_url", "reconcile", append(reconcile, "NATS_URL="+deadURL), "no servers available"},
		{"reconcile_wrong_password", "reconcile", append(reconcile, "NATS_URL="+wrongURL), "Authorization Violation"},
		{"reconcile_without_a_jetstream_to_join", "reconcile", append(reconcile, "YCI_NATS_PORT="+strconv.Itoa(freePort)), "no embedded JetStream answers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			ctx, cancel := context.WithTimeout(context.Background(), startupLimit)
			defer cancel()
			cmd := exec.CommandContext(ctx, filepath.Join(binDir, tt.command))
			cmd.Dir = dir
			cmd.Env = append([]string{
				"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + dir, "YCI_WORKSPACE=" + dir,
				"YCI_NATS_CREDENTIALS=" + filepath.Join(dir, "nats.credentials"),
			}, tt.env...)
			start := time.Now()
			out, err := cmd.CombinedOutput()
			took := time.Since(start)
			t.Logf("%s exited after %s: %v\n%s", tt.command, took, err, out)
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() <= 0 {
				t.Fatalf("%s: %v, want a non-zero exit (within %s)", tt.command, err, startupLimit)
			}
			text := string(out)
			if strings.Contains(text, "goroutine ") || strings.Contains(text, "panic") {
				t.Errorf("a stack trace instead of a reason")
			}
			var errorLines []string
			for line := range strings.Lines(text) {
				if strings.Contains(line, "level=ERROR") {
					errorLines = append(errorLines, line)
				}
			}
			if len(errorLines) != 1 || !strings.Contains(errorLines[0], tt.want) {
				t.Errorf("error lines %q: want exactly one, naming %q", errorLines, tt.want)
			}
			for _, secret := range []string{password, "wrong-password-0815", "dead-password-1234"} {
				if strings.Contains(text, secret) {
					t.Errorf("the output shows the NATS password %q", secret)
				}
			}
		})
	}
}

func freeTCPPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
