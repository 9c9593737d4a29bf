package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sys/unix"

	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/natsserver"
	"github.com/yourci/yourci/pkg/version"
	"github.com/yourci/yourci/pkg/webhook"
)

// HTTP server limits. GitHub gives up on an answer after 10 s, so a
// request whose headers and body have not arrived within 5 s is cut off
// (408): a trickling client holds its connection and its bytes no longer
// than that, and a real delivery still has the publish timeout left. The
// answer waits for at most the publish timeout.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 5 * time.Second
	writeTimeout      = readTimeout + githubTimeout
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 64 << 10
	natsDialTimeout   = 5 * time.Second
)

// Receiver is a running webhook receiver: its listener, its NATS
// connection (and the embedded JetStream when it started one) and its HTTP
// server. Run serves until its context ends; Close releases what New
// opened. Addr may be called from any goroutine.
type Receiver struct {
	opts     Options
	log      *slog.Logger
	natsURL  string
	embedded *natsserver.Server // nil when NATS_URL is set or another process runs it
	nc       *nats.Conn
	closed   chan struct{} // closed when nc is closed for good
	bus      *events.Bus
	listener net.Listener
	server   *http.Server

	closeOnce sync.Once
	closeErr  error
}

// New validates opts, connects to JetStream (starting or joining the
// embedded one when no NATS_URL is set), ensures the stream exists and
// starts listening, so that Addr is known before Run. On error nothing is
// left open.
func New(ctx context.Context, opts Options, log *slog.Logger) (_ *Receiver, err error) {
	// The receiver holds the webhook secret and the NATS password, and on
	// a single box runs as the same user as the tests: they must not read
	// its environment or memory through /proc.
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		log.Warn("cannot hide the receiver's memory from other processes", "err", err)
	}
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration: %w", err)
	}
	secret, err := opts.secret()
	if err != nil {
		return nil, err
	}
	r := &Receiver{opts: opts, log: log, closed: make(chan struct{})}
	defer func() {
		if err != nil {
			err = errors.Join(err, r.Close())
		}
	}()
	if err := r.connect(ctx); err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics, err := webhook.NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	budget, err := webhook.NewBudget(opts.MaxInflightBytes)
	if err != nil {
		return nil, err
	}
	hook, err := webhook.NewHandler(secret, r.bus.Queue(),
		webhook.WithBudget(budget),
		webhook.WithLogger(log),
		webhook.WithMetrics(metrics),
		webhook.WithApprovalLabel(opts.ApprovalLabel),
		webhook.WithPublishTimeout(opts.PublishTimeout),
		webhook.WithHeadAnnouncer(r.bus.Heads()),
		webhook.WithHeadRecorder(r.bus.Heads()),
		webhook.WithCommands(r.bus.Queue()),
	)
	if err != nil {
		return nil, err
	}
	r.listener, err = net.Listen("tcp", opts.Listen)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", opts.Listen, err)
	}
	r.server = &http.Server{
		Handler:           r.routes(hook, reg),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return r, nil
}

// connect dials JetStream and sets up the stream.
func (r *Receiver) connect(ctx context.Context) error {
	var err error
	r.natsURL, r.embedded, err = r.opts.NATS.Open(ctx, ".", r.log)
	if err != nil {
		return err
	}
	nc, err := nats.Connect(r.natsURL,
		nats.Name("yourci-receiver"),
		nats.Timeout(natsDialTimeout),
		// Reconnect forever: a restarted NATS server is waited for, and
		// /healthz says so meanwhile.
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
		// No buffering while disconnected: a publish fails at once and
		// GitHub gets its 503 now, not after the publish timeout.
		nats.ReconnectBufSize(-1),
		nats.DrainTimeout(r.opts.ShutdownTimeout),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil { // nil when this receiver closes it
				r.log.Warn("NATS connection lost", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			r.log.Info("NATS connection restored", "server", nc.ConnectedUrlRedacted())
		}),
		nats.ClosedHandler(func(*nats.Conn) { close(r.closed) }),
	)
	if err != nil {
		return fmt.Errorf("connecting to NATS at %s: %w", events.Redact(r.natsURL), err)
	}
	r.nc = nc
	r.bus, err = events.New(ctx, nc, events.Options{PublishOnly: true, Replicas: r.opts.NATS.Replicas, Logger: r.log})
	if err != nil {
		return fmt.Errorf("setting up JetStream at %s: %w", events.Redact(r.natsURL), err)
	}
	return nil
}

// routes wires the receiver's three endpoints.
func (r *Receiver) routes(hook http.Handler, reg *prometheus.Registry) http.Handler {
	mux := chi.NewRouter()
	mux.Method(http.MethodPost, "/webhook", hook)
	mux.Get("/healthz", r.healthz)
	mux.Method(http.MethodGet, "/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return mux
}

// healthz answers 200 while the NATS connection is up and 503 otherwise:
// without NATS every webhook would be refused.
func (r *Receiver) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if !r.nc.IsConnected() {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "NATS %s\n", r.nc.Status())
		return
	}
	fmt.Fprintln(w, "ok")
}

// Addr is the address the receiver listens on, with the port it got.
func (r *Receiver) Addr() string { return r.listener.Addr().String() }

// NATSURL is the JetStream the receiver publishes to.
func (r *Receiver) NATSURL() string { return r.natsURL }

// Run serves webhooks until ctx ends, then shuts down gracefully: it stops
// accepting connections, lets in-flight deliveries finish (each one is
// published and answered, or not acknowledged at all) within
// ShutdownTimeout, then drains the NATS connection. It returns nil after a
// clean shutdown. Run is called once.
func (r *Receiver) Run(ctx context.Context) error {
	served := make(chan error, 1)
	go func() { served <- r.server.Serve(r.listener) }()
	r.log.Info("receiver started", "version", version.String(), "listen", r.Addr(), "nats", events.Redact(r.natsURL), "embedded_nats", r.embedded != nil)

	select {
	case err := <-served:
		return fmt.Errorf("serving HTTP: %w", err)
	case <-ctx.Done():
	}
	r.log.Info("receiver stopping", "timeout", r.opts.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.opts.ShutdownTimeout)
	defer cancel()
	var errs []error
	if err := r.server.Shutdown(sctx); err != nil {
		errs = append(errs, fmt.Errorf("waiting for in-flight deliveries: %w", err))
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		errs = append(errs, fmt.Errorf("serving HTTP: %w", err))
	}
	if err := r.drain(sctx); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	r.log.Info("receiver stopped")
	return nil
}

// drain flushes the NATS connection and waits until it is closed.
func (r *Receiver) drain(ctx context.Context) error {
	err := r.nc.Drain()
	switch {
	case errors.Is(err, nats.ErrConnectionReconnecting):
		// NATS is away: Drain closed the connection, and with no
		// reconnect buffer nothing was waiting to be sent.
		r.log.Warn("NATS unreachable at shutdown; nothing was pending")
	case err != nil && !errors.Is(err, nats.ErrConnectionClosed):
		return fmt.Errorf("draining NATS connection: %w", err)
	}
	select {
	case <-r.closed:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("draining NATS connection: %w", ctx.Err())
	}
}

// Close releases everything New opened: the listener and any connection
// still open, the NATS connection, and the embedded JetStream if this
// receiver started it. It is safe to call more than once and after Run.
func (r *Receiver) Close() error {
	r.closeOnce.Do(func() {
		var errs []error
		if r.server != nil {
			if err := r.server.Close(); err != nil {
				errs = append(errs, fmt.Errorf("closing HTTP server: %w", err))
			}
		}
		// Serve closes the listener it was given; a receiver that never
		// ran still holds it.
		if r.listener != nil {
			if err := r.listener.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
				errs = append(errs, fmt.Errorf("closing listener: %w", err))
			}
		}
		if r.nc != nil {
			r.nc.Close()
		}
		if r.embedded != nil {
			r.embedded.Shutdown()
		}
		r.closeErr = errors.Join(errs...)
	})
	return r.closeErr
}
