package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sys/unix"

	"github.com/yourci/yourci/pkg/artifacts"
	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/githubauth"
	"github.com/yourci/yourci/pkg/natsserver"
	"github.com/yourci/yourci/pkg/pipeline"
	"github.com/yourci/yourci/pkg/projector"
	"github.com/yourci/yourci/pkg/status"
	"github.com/yourci/yourci/pkg/version"
	"github.com/yourci/yourci/pkg/worker"
)

// Service is a running worker: its queue connection, its workspace and the
// HTTP server of its metrics. Close releases what NewService opened.
type Service struct {
	opts     Options
	log      *slog.Logger
	embedded *natsserver.Server
	bus      *events.Bus
	handlers *worker.Worker
	pages    *worker.PageKeeper
	// projector shows the build records on GitHub while it holds the lease.
	projector *projector.Projector
	disk      *worker.DiskGuard
	metrics   *http.Server
	listener  net.Listener
}

// NewService opens the workspace, connects to JetStream (starting the
// embedded one when no NATS_URL is set) and readies the job handlers.
func NewService(ctx context.Context, opts Options, log *slog.Logger) (_ *Service, err error) {
	s := &Service{opts: opts, log: log}
	// Tests run as this process's user: without this they could read the
	// worker's credentials from /proc/<pid>/environ and its memory.
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		log.Warn("cannot hide the worker's memory from its tests", "err", err)
	}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	ws, err := artifacts.Open(opts.Workspace)
	if err != nil {
		return nil, fmt.Errorf("opening workspace: %w", err)
	}
	// Before anything starts: without a working sandbox there is no service.
	box, err := opts.Sandbox.open(ctx, false, workspaceShares(ws), ws.Root(), opts.GitHub.AppPrivateKeyFile)
	if err != nil {
		return nil, err
	}
	lim, err := opts.Limits.open(false, opts.Jobs, log)
	if err != nil {
		return nil, err
	}
	log.Info("limits per test and evaluation", "limits", lim.String(), "swept_cgroups", lim.Swept())
	clients, err := githubauth.New(opts.GitHub)
	if err != nil {
		return nil, fmt.Errorf("configuring GitHub access: %w", err)
	}
	url, embedded, err := opts.NATS.Open(ctx, ws.Root(), log)
	if err != nil {
		return nil, err
	}
	s.embedded = embedded
	limits, err := opts.repoLimits()
	if err != nil {
		return nil, err
	}
	s.bus, err = events.Connect(ctx, url, "yourci-worker", events.Options{Grace: opts.Grace, AckWait: opts.AckWait,
		Replicas: opts.NATS.Replicas, RepoLimits: limits, Logger: log})
	if err != nil {
		return nil, err
	}
	python, err := pipeline.ResolvePython(ctx, "python3")
	if err != nil {
		return nil, err
	}
	evaluator := &pipeline.Evaluator{}
	runner := &pipeline.Runner{
		LogLimit:       opts.LogLimit,
		DefaultTimeout: opts.TestTimeout,
		SecretsFrom:    clients.Secrets,
	}
	if err := confine(ctx, box, lim, python, evaluator, runner); err != nil {
		return nil, err
	}
	policy, err := opts.policy()
	if err != nil {
		return nil, err
	}
	s.disk = opts.Disk.guard(ws.Root())
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		newBacklogCollector(s.bus.Board(), log), newDiskCollector(s.disk, log))
	s.handlers, err = worker.New(worker.Options{
		Workspace:      ws,
		Evaluator:      evaluator,
		Runner:         runner,
		GitHub:         installations{clients},
		Queue:          busQueue{s.bus.Queue(), s.bus.Registry(), s.bus.Heads()},
		HTTPRoot:       opts.HTTPRoot,
		Logger:         log,
		Metrics:        worker.NewMetrics(reg),
		Policy:         policy,
		ApprovalLabel:  opts.ApprovalLabel,
		KeepSuperseded: opts.KeepSuperseded,
		HeadOnly:       !opts.TestMerge,
		Records:        s.bus.Records(),
		Reruns:         busReruns{s.bus.Queue(), s.bus.Registry()},
		Running:        s.bus.Attempts(),
		Box:            boxName(opts.Workspace),
		PrepareTimeout: opts.PrepareTimeout,
		CommandTimeout: opts.CommandTimeout,
		Disk:           s.disk,
		InfraGiveUp:    opts.InfraGiveUp,
	})
	if err != nil {
		return nil, err
	}
	s.pages, err = worker.NewPageKeeper(worker.PageKeeperOptions{Workspace: ws, Watch: s.bus.Records(), Records: s.bus.Records(),
		Shares: boardShares{s.bus.Board(), limits}, Logger: log})
	if err != nil {
		return nil, err
	}
	s.projector, err = projector.New(projector.Options{
		Records: s.bus.Records(), Clients: installations{clients}, Holder: boxName(opts.Workspace) + "#" + strconv.Itoa(os.Getpid()),
		HTTPRoot: opts.HTTPRoot, Pacing: projector.Pacing{Hold: opts.StatusHold, SummaryInterval: opts.SummaryInterval},
		LeaseTTL: opts.ProjectorLease, StatusOptions: []status.Option{status.WithSecretsFrom(clients.Secrets)}, Logger: log,
		Metrics: projector.NewMetrics(reg),
	})
	if err != nil {
		return nil, err
	}
	if opts.MetricsListen != "" {
		s.listener, err = net.Listen("tcp", opts.MetricsListen)
		if err != nil {
			return nil, fmt.Errorf("listening for metrics: %w", err)
		}
		s.metrics = &http.Server{Handler: s.routes(reg), ReadHeaderTimeout: 5 * time.Second}
	}
	return s, nil
}

// routes serves /metrics and a /healthz that fails while NATS is away
// or a handler is stuck past its deadline (naming it).
func (s *Service) routes(reg *prometheus.Registry) http.Handler {
	r := chi.NewRouter()
	r.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	r.Get("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if !s.bus.Connected() {
			http.Error(w, "NATS unreachable", http.StatusServiceUnavailable)
			return
		}
		if err := s.handlers.Watchdog().Check(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
		// The worker stays healthy below the floor: it hands tests back
		// and keeps serving the queue; the line says why nothing runs.
		if free, floor, err := s.disk.Free(); err == nil {
			below := ""
			if free < floor {
				below = " (below the floor: no test attempt starts)"
			}
			fmt.Fprintf(w, "workspace disk: %d bytes free, floor %d%s\n", free, floor, below)
		}
	})
	return r
}

// MetricsAddr is where /metrics is served, or "" when it is not.
func (s *Service) MetricsAddr() string {
	if s.listener == nil {
		return ""
	}
	return s.listener.Addr().String()
}

// Run consumes both kinds of work until ctx is cancelled, then lets running
// jobs finish within the grace period (handing back the rest) and returns.
func (s *Service) Run(ctx context.Context) error {
	if s.metrics != nil {
		go func() {
			if err := s.metrics.Serve(s.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("serving metrics", "err", err)
			}
		}()
	}
	stopWatch, err := s.bus.Heads().WatchHeads(func(a events.HeadAnnouncement) {
		s.handlers.HeadChanged(a)
		s.handlers.PullClosed(ctx, a)
	})
	if err != nil {
		return err
	}
	defer stopWatch()
	// The projector outlives the consumers: what they record while they
	// hand work back is shown before it settles and gives up its lease.
	projCtx, stopProjector := context.WithCancel(context.WithoutCancel(ctx))
	projDone := make(chan error, 1)
	go func() { projDone <- s.projector.Run(projCtx) }()
	defer func() {
		stopProjector()
		if err := <-projDone; err != nil {
			s.log.Error("showing records on GitHub", "err", err)
		}
		s.log.Info("projector writes", "writes", s.projector.Writes())
	}()
	pagesDone := make(chan error, 1)
	go func() { pagesDone <- s.pages.Run(ctx) }()
	defer func() { // it returns once ctx is cancelled
		if err := <-pagesDone; err != nil {
			s.log.Error("keeping pages", "err", err)
		}
	}()
	// Pull events have slots of their own: preparing a new head, and the
	// head announcement that stops its superseded tests, never wait for a
	// running test to end. Comment commands too: an answer to /retest
	// must not wait behind hour-long tests.
	pullSlots, testSlots := events.NewSlots(s.opts.PullSlots), events.NewSlots(s.opts.Jobs)
	errs := make(chan error, 3)
	go func() { errs <- s.bus.Queue().ConsumePulls(ctx, pullSlots, s.handlers.HandlePull) }()
	go func() { errs <- s.bus.Queue().ConsumeTests(ctx, testSlots, s.handlers.HandleTest) }()
	go func() { errs <- s.bus.Queue().ConsumeCommands(ctx, events.NewSlots(1), s.handlers.HandleCommand) }()
	s.log.Info("worker started", "version", version.String(), "workspace", s.opts.Workspace,
		"jobs", s.opts.Jobs, "pull_slots", s.opts.PullSlots, "metrics", s.MetricsAddr(),
		"max_running_per_repo", s.opts.MaxRunningPerRepo, "repo_limits", s.opts.RepoLimitsFile,
		"sandbox", s.opts.Sandbox.backend(false), "test_network", s.opts.Sandbox.Network,
		"attempt_disk", s.opts.Disk.AttemptDisk, "min_free_disk", s.opts.Disk.MinFreeDisk)
	err = errors.Join(<-errs, <-errs, <-errs)
	s.log.Info("worker stopped")
	return err
}

// Close stops the metrics server, the NATS connection and the embedded
// server, in that order.
func (s *Service) Close() {
	if s.metrics != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.metrics.Shutdown(ctx); err != nil {
			s.log.Warn("stopping metrics server", "err", err)
		}
	} else if s.listener != nil {
		s.listener.Close()
	}
	if s.bus != nil {
		if err := s.bus.Close(); err != nil {
			s.log.Warn("closing NATS connection", "err", err)
		}
	}
	if s.embedded != nil {
		s.embedded.Shutdown()
	}
}

// installations adapts the configured GitHub credentials to what the job
// handlers ask for.
type installations struct{ clients *githubauth.Clients }

// Client is projector.Clients: the writers of an installation, check runs
// only under App auth.
func (i installations) Client(ctx context.Context, id int64) (projector.Client, error) {
	c, err := i.clients.ForInstallation(ctx, id)
	if err != nil {
		return projector.Client{}, err
	}
	pc := projector.Client{Statuses: c.Repositories}
	if i.clients.Method() == githubauth.MethodApp {
		pc.Checks = c.Checks
	}
	return pc, nil
}

func (i installations) Installation(ctx context.Context, id int64) (worker.Installation, error) {
	c, err := i.clients.ForInstallation(ctx, id)
	if err != nil {
		return worker.Installation{}, err
	}
	user, pass, err := i.clients.GitCredentials(ctx, id)
	if err != nil {
		return worker.Installation{}, err
	}
	inst := worker.Installation{
		Pulls:       c,
		Permissions: c.Repositories,
		Issues:      c.Issues,
		Git:         artifacts.GitAuth{Username: user, Password: pass},
		// Comment commands.
		Comments:  c.Issues,
		Reactions: c.Reactions,
	}
	return inst, nil
}

// boxName is how listings name this worker: host and workspace, which
// together tell two workers on one box apart.
func boxName(workspace string) string {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown-host"
	}
	if abs, err := filepath.Abs(workspace); err == nil {
		workspace = abs
	}
	return host + ":" + workspace
}

// busQueue is worker.Queue made of the Bus parts it spans: build numbers
// and approvals, the publication of tests, and head announcements.
type busQueue struct {
	*events.Queue
	*events.Registry
	*events.Heads
}

// boardShares is worker.ShareReader: the board's shares under this
// worker's limits.
type boardShares struct {
	board  *events.Board
	limits events.RepoLimits
}

func (b boardShares) RepoShares(ctx context.Context) ([]events.RepoShare, error) {
	return b.board.Shares(ctx, b.limits)
}

// busReruns is worker.RerunQueue made of the Bus parts it spans.
type busReruns struct {
	*events.Queue
	*events.Registry
}
