// Package natsserver runs a NATS server with JetStream inside the current
// process. It is the default queue when no NATS_URL is configured, so that one
// command brings up a working YourCI, and it is what tests run against.
package natsserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// RandomPort asks for a port the kernel picks; [Server.Port] reports it.
const RandomPort = -1

// ReadyTimeout bounds how long Start waits for the server to accept clients.
// Recovering a large file store can take a while; an empty one takes
// milliseconds.
const ReadyTimeout = 30 * time.Second

// Options configure an in-process server. The zero value is not usable:
// StoreDir is required so that queued work survives a restart.
type Options struct {
	// StoreDir holds JetStream's file storage. It is created if missing.
	StoreDir string
	// Host is the address to listen on; empty means 127.0.0.1, so an
	// embedded server is never reachable from outside by accident.
	Host string
	// Port to listen on; 0 or RandomPort picks a free one.
	Port int
	// Logger receives the server's own log lines; nil discards them.
	Logger *slog.Logger
	// Credentials, when set, are required of every client; nil lets any
	// client in (tests, and nothing else).
	Credentials *Credentials
}

// Validate reports every problem with the options at once.
func (o Options) Validate() error {
	var errs []error
	if o.StoreDir == "" {
		errs = append(errs, errors.New("natsserver: StoreDir is required"))
	}
	if o.Port < RandomPort || o.Port > 65535 {
		errs = append(errs, fmt.Errorf("natsserver: port %d out of range", o.Port))
	}
	return errors.Join(errs...)
}

// Server is a running in-process NATS server with JetStream enabled. Its
// methods may be called from any goroutine.
type Server struct {
	ns   *server.Server
	port int
}

// Start runs a server and returns once it accepts connections, or an error
// if it cannot within ctx's deadline (or 30 seconds). The caller must call
// Shutdown.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.StoreDir, 0o750); err != nil {
		return nil, fmt.Errorf("creating JetStream store %s: %w", opts.StoreDir, err)
	}
	host := opts.Host
	if host == "" {
		host = "127.0.0.1"
	}
	port := opts.Port
	if port == 0 {
		port = RandomPort
	}
	sopts := &server.Options{
		Host:      host,
		Port:      port,
		JetStream: true,
		StoreDir:  opts.StoreDir,
		NoSigs:    true,
	}
	if c := opts.Credentials; c != nil {
		sopts.Username, sopts.Password = c.User, c.Password
	}
	ns, err := server.NewServer(sopts)
	if err != nil {
		return nil, fmt.Errorf("configuring embedded NATS server: %w", err)
	}
	logger := &slogAdapter{l: opts.Logger}
	if logger.l == nil {
		logger.l = slog.New(slog.DiscardHandler)
	}
	ns.SetLogger(logger, false, false)
	go ns.Start()

	wait := ReadyTimeout
	if deadline, ok := ctx.Deadline(); ok {
		wait = time.Until(deadline)
	}
	if err := waitReady(ns, logger, wait); err != nil {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, fmt.Errorf("embedded NATS server on %s: %w", net.JoinHostPort(host, strconv.Itoa(port)), err)
	}
	if !ns.JetStreamEnabled() {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, errors.New("embedded NATS server started without JetStream")
	}
	srv := &Server{ns: ns}
	if addr, ok := ns.Addr().(*net.TCPAddr); ok {
		srv.port = addr.Port
	}
	return srv, nil
}

// waitReady waits up to wait for ns to accept clients, and gives up at once
// when the server reports a fatal error (a port in use), so that a command
// that cannot start its JetStream says so now, not after ReadyTimeout.
func waitReady(ns *server.Server, logger *slogAdapter, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		if ns.ReadyForConnections(50 * time.Millisecond) {
			return nil
		}
		if fatal := logger.fatal(); fatal != "" {
			return errors.New(fatal)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %s: %s", wait, logger.lastError())
		}
	}
}

// URL is the client URL, nats://host:port, without credentials.
func (s *Server) URL() string { return s.ns.ClientURL() }

// Port is the port the server listens (or, once shut down, listened) on:
// start a server on it again to let clients reconnect.
func (s *Server) Port() int { return s.port }

// Shutdown stops the server and returns once it has stopped and flushed its
// store. Calling it more than once is harmless.
func (s *Server) Shutdown() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
}

// slogAdapter passes the server's printf-style log lines to slog. The
// last error is kept to explain a failed start.
type slogAdapter struct {
	l        *slog.Logger
	mu       sync.Mutex
	lastErr  string
	fatalErr string
}

func (a *slogAdapter) record(format string, v []any) string {
	msg := fmt.Sprintf(format, v...)
	a.mu.Lock()
	a.lastErr = msg
	a.mu.Unlock()
	return msg
}

func (a *slogAdapter) fatal() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.fatalErr
}

func (a *slogAdapter) lastError() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.lastErr == "" {
		return "no error logged"
	}
	return a.lastErr
}

func (a *slogAdapter) Noticef(format string, v ...any) { a.l.Info(fmt.Sprintf(format, v...)) }
func (a *slogAdapter) Warnf(format string, v ...any)   { a.l.Warn(fmt.Sprintf(format, v...)) }

// Fatalf logs a warning only: Start returns the fatal error, and the
// command logs it once, as its reason for exiting.
func (a *slogAdapter) Fatalf(format string, v ...any) {
	msg := a.record(format, v)
	a.mu.Lock()
	a.fatalErr = msg
	a.mu.Unlock()
	a.l.Warn(msg)
}
func (a *slogAdapter) Errorf(format string, v ...any) { a.l.Error(a.record(format, v)) }
func (a *slogAdapter) Debugf(format string, v ...any) { a.l.Debug(fmt.Sprintf(format, v...)) }
func (a *slogAdapter) Tracef(format string, v ...any) { a.l.Debug(fmt.Sprintf(format, v...)) }
