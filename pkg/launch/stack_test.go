package launch

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startListening starts a process again on another address only when it
// exited because its address was taken, and a few times at most.
func TestStartListeningRetriesATakenAddressOnly(t *testing.T) {
	t.Parallel()
	// taken exits as a server does whose port another took first.
	taken := func(dir, logPath string) func(addr string) (*Process, error) {
		return func(addr string) (*Process, error) {
			return Start("server", "/bin/sh", []string{"-c", "echo \"listen tcp $ADDR: bind: address already in use\"; exit 1"},
				[]string{"ADDR=" + addr}, dir, logPath)
		}
	}
	tests := []struct {
		name string
		// fails is how the first starts end; the rest serve /healthz.
		fails     []string
		wantErr   bool
		wantStart int
	}{
		{name: "healthy_at_once", wantStart: 1},
		{name: "address_taken_once", fails: []string{"taken"}, wantStart: 2},
		{name: "address_taken_every_time", fails: []string{"taken", "taken", "taken"}, wantErr: true, wantStart: startTries},
		{name: "other_failure_is_not_retried", fails: []string{"other"}, wantErr: true, wantStart: 1},
		// What an earlier process logged does not make a later failure
		// look like a taken address.
		{name: "other_failure_after_a_taken_address", fails: []string{"taken", "other"}, wantErr: true, wantStart: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "healthz"), []byte("ok\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			logPath := filepath.Join(dir, "server.log")
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			starts := 0
			p, addr, err := startListening(ctx, logPath, func(addr string) (*Process, error) {
				starts++
				if starts <= len(tt.fails) {
					if tt.fails[starts-1] == "taken" {
						return taken(dir, logPath)(addr)
					}
					return Start("server", "/bin/sh", []string{"-c", "echo 'no configuration'; exit 2"}, nil, dir, logPath)
				}
				_, port, _ := net.SplitHostPort(addr)
				return Start("server", "python3", []string{"-m", "http.server", "--bind", "127.0.0.1", port}, nil, dir, logPath)
			})
			if p != nil {
				t.Cleanup(p.Kill)
			}
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want an error: %t", err, tt.wantErr)
			}
			if starts != tt.wantStart {
				t.Errorf("started %d times, want %d", starts, tt.wantStart)
			}
			if err == nil && addr == "" {
				t.Error("healthy with no address")
			}
		})
	}
}

// A receiver whose embedded JetStream port was taken is started again on a
// port picked anew, when StartReceiver picked it; a port the caller gave is
// kept, since its workers and store are already there.
func TestStartReceiverPicksTheNATSPortAgainWhenTaken(t *testing.T) {
	t.Parallel()
	// The stand-in receiver logs the NATS port it was given, exits as a
	// receiver does whose embedded server lost its port on its first
	// start, and serves /healthz after.
	const receiver = `echo "nats port $YCI_NATS_PORT" >> ports
if [ ! -e started ]; then
	touch started
	echo "listen tcp 127.0.0.1:$YCI_NATS_PORT: bind: address already in use"
	exit 1
fi
echo ok > healthz
exec python3 -m http.server --bind 127.0.0.1 "${YCI_LISTEN##*:}"
`
	tests := []struct {
		name     string
		natsPort int
		// wantSame says both starts must see the same port.
		wantSame bool
	}{
		{name: "picked", wantSame: false},
		{name: "given", natsPort: 4999, wantSame: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			bin := t.TempDir()
			if err := os.WriteFile(filepath.Join(bin, "receiver"), []byte("#!/bin/sh\n"+receiver), 0o755); err != nil {
				t.Fatal(err)
			}
			c := Config{Bin: bin, Dir: t.TempDir(), NATSPort: tt.natsPort}
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			if err := os.MkdirAll(filepath.Join(c.Dir, "receiver"), 0o755); err != nil {
				t.Fatal(err)
			}
			r, err := c.StartReceiver(ctx, "receiver")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(r.Kill)
			logged, err := os.ReadFile(filepath.Join(c.Dir, "receiver", "ports"))
			if err != nil {
				t.Fatal(err)
			}
			var ports []int
			for _, line := range strings.Split(strings.TrimSpace(string(logged)), "\n") {
				var port int
				if _, err := fmt.Sscanf(line, "nats port %d", &port); err != nil {
					t.Fatalf("stand-in logged %q: %v", line, err)
				}
				ports = append(ports, port)
			}
			if len(ports) != 2 {
				t.Fatalf("started with NATS ports %v, want two starts", ports)
			}
			if same := ports[0] == ports[1]; same != tt.wantSame {
				t.Errorf("NATS ports %v: same on both starts %t, want %t", ports, same, tt.wantSame)
			}
			if r.NATSPort != ports[1] || r.NATSPort == 0 {
				t.Errorf("Receiver.NATSPort = %d, want the second start's %d", r.NATSPort, ports[1])
			}
			if tt.natsPort != 0 && r.NATSPort != tt.natsPort {
				t.Errorf("Receiver.NATSPort = %d, want the given %d", r.NATSPort, tt.natsPort)
			}
		})
	}
}
