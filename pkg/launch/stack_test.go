package launch

import (
	"context"
	"net"
	"os"
	"path/filepath"
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
