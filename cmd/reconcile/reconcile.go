package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"golang.org/x/sys/unix"

	"github.com/yourci/yourci/pkg/artifacts"
	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/githubauth"
	"github.com/yourci/yourci/pkg/reconcile"
)

// Exit statuses, as the usage text documents them.
const (
	exitOK          = 0
	exitFailed      = 1
	exitUsage       = 2
	exitLocked      = 3
	exitRateLimited = 4
)

// Reconcile is one run of the command: its JetStream connection and where
// it prints. Close releases what Open opened.
type Reconcile struct {
	opts Options
	log  *slog.Logger
	out  io.Writer
	bus  *events.Bus
}

// Open connects to JetStream. Without NATS_URL it joins the embedded
// JetStream a worker or receiver runs on the box, and never starts one: a
// sweep or cleanup run from cron in some directory must not queue work
// where no worker will ever look. opts must have passed Validate.
func Open(ctx context.Context, opts Options, log *slog.Logger, out io.Writer) (_ *Reconcile, err error) {
	r := &Reconcile{opts: opts, log: log, out: out}
	// It runs with the same credentials as the worker on boxes where tests
	// run: they must not read its environment or memory through /proc.
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		log.Warn("cannot hide the sweep's memory from other processes", "err", err)
	}
	defer func() {
		if err != nil {
			r.Close()
		}
	}()
	url, err := opts.NATS.Join(".")
	if err != nil {
		return nil, err
	}
	r.bus, err = events.Connect(ctx, url, "yourci-reconcile", events.Options{PublishOnly: true, Replicas: opts.NATS.Replicas, Logger: log})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// Run sweeps, or cleans up in cleanup mode, and prints what it did. Its
// error wraps reconcile.ErrLocked, is a *reconcile.RateLimitedError, or
// says what failed; ctx's cancellation (SIGTERM) stops the sweep between
// two requests, and the summary is printed all the same.
func (r *Reconcile) Run(ctx context.Context) error {
	if r.opts.cleanup() {
		return r.cleanup(ctx)
	}
	return r.sweep(ctx)
}

func (r *Reconcile) sweep(ctx context.Context) error {
	store, err := reconcile.OpenStore(ctx, r.bus, reconcile.StoreOptions{Replicas: r.opts.NATS.Replicas})
	if err != nil {
		return err
	}
	auth, err := githubauth.New(r.opts.GitHub)
	if err != nil {
		return err
	}
	repos, err := reconcile.ParseRepositories(r.opts.Repositories)
	if err != nil {
		return err
	}
	cache := reconcile.NewCache(store, reconcile.CacheOptions{Reserve: r.opts.RateReserve, Logger: r.log})
	clients := reconcile.NewClients(auth, cache)
	opts := reconcile.Options{
		GitHub: clients, Repositories: repos,
		Queue: sweepQueue{r.bus.Queue(), r.bus.Registry()}, Backlog: reconcile.NewStreamBacklog(r.bus.Queue()).WithRunning(r.bus.Board()), Store: store,
		Records:     r.bus.Records(),
		Requests:    cache.Requests,
		StaleAfter:  r.opts.StaleAfter,
		MaxRebuilds: r.opts.MaxRebuilds,
		Lock:        reconcile.LockOptions{TTL: r.opts.LockTTL, Wait: r.opts.Wait},
		Logger:      r.log,
	}
	if app, isApp, err := clients.App(); err != nil {
		return err
	} else if isApp {
		opts.App = app
	}
	sweeper, err := reconcile.New(opts)
	if err != nil {
		return err
	}
	sum, err := sweeper.Sweep(ctx)
	if errors.Is(err, reconcile.ErrLocked) {
		return err
	}
	if werr := sum.WriteText(r.out); werr != nil {
		return errors.Join(err, fmt.Errorf("printing the summary: %w", werr))
	}
	if r.opts.MetricsFile != "" {
		if werr := sum.WriteMetrics(r.opts.MetricsFile, err); werr != nil {
			return errors.Join(err, werr)
		}
	}
	return err
}

func (r *Reconcile) cleanup(ctx context.Context) error {
	ws, err := artifacts.Open(r.opts.Workspace)
	if err != nil {
		return err
	}
	rep, err := reconcile.Cleanup(ctx, ws, reconcile.NewStreamBacklog(r.bus.Queue()), reconcile.CleanupOptions{
		OlderThan: r.opts.CleanupOlderThan, RunningWindow: r.opts.RunningWindow,
		CacheUnusedFor: r.opts.CacheUnusedFor,
	})
	if werr := reconcile.WriteCleanupReport(r.out, rep); werr != nil {
		return errors.Join(err, fmt.Errorf("printing the cleanup report: %w", werr))
	}
	return err
}

// Close closes the NATS connection.
func (r *Reconcile) Close() {
	if r.bus != nil {
		if err := r.bus.Close(); err != nil {
			r.log.Warn("closing NATS connection", "err", err)
		}
	}
}

// exitStatus maps Run's error to the documented exit status.
func exitStatus(err error) int {
	var limited *reconcile.RateLimitedError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, reconcile.ErrLocked):
		return exitLocked
	case errors.As(err, &limited):
		return exitRateLimited
	}
	return exitFailed
}

// sweepQueue is reconcile.Queue made of the Bus parts it spans: the
// publication of pull events and the build numbers of heads.
type sweepQueue struct {
	*events.Queue
	*events.Registry
}
