package natsserver_test

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/yourci/yourci/pkg/natsserver"
	"github.com/yourci/yourci/pkg/natsserver/natstest"
)

// server is what both kinds of server offer.
type server interface {
	URL() string
	Port() int
	Shutdown()
}

var kinds = []struct {
	name  string
	start func(t *testing.T, opts natsserver.Options) server
}{
	{"embedded", func(t *testing.T, opts natsserver.Options) server {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s, err := natsserver.Start(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Shutdown)
		return s
	}},
	{"nats-server_binary", func(t *testing.T, opts natsserver.Options) server {
		return natstest.StartExternal(t, opts)
	}},
}

func TestStartServesJetStreamThatSurvivesRestart(t *testing.T) {
	t.Parallel()
	for _, kind := range kinds {
		t.Run(kind.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			opts := natsserver.Options{StoreDir: t.TempDir(), Port: natsserver.RandomPort}
			srv := kind.start(t, opts)
			if !strings.HasPrefix(srv.URL(), "nats://127.0.0.1:") || srv.Port() <= 0 {
				t.Fatalf("URL %q, port %d: want a local address and the port picked", srv.URL(), srv.Port())
			}
			js := jetStream(t, srv.URL())
			if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}, Storage: jetstream.FileStorage}); err != nil {
				t.Fatal(err)
			}
			if _, err := js.Publish(ctx, "s.x", []byte("kept")); err != nil {
				t.Fatal(err)
			}

			srv.Shutdown()
			srv.Shutdown()               // harmless
			again := kind.start(t, opts) // same store, any port
			s, err := jetStream(t, again.URL()).Stream(ctx, "S")
			if err != nil {
				t.Fatalf("stream after restart: %v", err)
			}
			msg, err := s.GetLastMsgForSubject(ctx, "s.x")
			if err != nil || string(msg.Data) != "kept" {
				t.Errorf("message after restart = %v, %v; want %q", msg, err, "kept")
			}
		})
	}
}

func TestStartLogsThroughSlog(t *testing.T) {
	t.Parallel()
	lines := &syncWriter{}
	logger := slog.New(slog.NewTextHandler(lines, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := natsserver.Start(ctx, natsserver.Options{StoreDir: t.TempDir(), Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	srv.Shutdown()
	if !strings.Contains(lines.String(), "Server is ready") {
		t.Errorf("server log lines did not reach the logger:\n%s", lines.String())
	}
}

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		opts    natsserver.Options
		wantErr []string
	}{
		{name: "store_dir_and_random_port_is_valid", opts: natsserver.Options{StoreDir: "x", Port: natsserver.RandomPort}},
		{name: "missing_store_dir_is_refused", opts: natsserver.Options{}, wantErr: []string{"StoreDir"}},
		{name: "every_problem_is_reported_at_once", opts: natsserver.Options{Port: 70000}, wantErr: []string{"StoreDir", "port 70000"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.opts.Validate()
			if len(tt.wantErr) == 0 && err != nil {
				t.Fatalf("Validate() = %v, want nil", err)
			}
			for _, want := range tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("Validate() = %v, want it to mention %q", err, want)
				}
			}
		})
	}
}

func TestStartRefusesInvalidOptions(t *testing.T) {
	t.Parallel()
	if srv, err := natsserver.Start(context.Background(), natsserver.Options{}); err == nil {
		srv.Shutdown()
		t.Fatal("Start without StoreDir succeeded")
	}
}

func TestStartExplainsWhyItIsNotReady(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	port := taken.Addr().(*net.TCPAddr).Port
	srv, err := natsserver.Start(ctx, natsserver.Options{StoreDir: t.TempDir(), Port: port})
	if err == nil {
		srv.Shutdown()
		t.Fatalf("Start on taken port %d succeeded", port)
	}
	if !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("Start on a taken port = %v, want the reason", err)
	}
}

func jetStream(t *testing.T, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// syncWriter collects the server's log lines, written from its goroutines.
type syncWriter struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
