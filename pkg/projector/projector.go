package projector

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/status"
)

// Records is what a Projector needs of the record store; events.Records
// and memrecords.Store have it.
type Records interface {
	WatchBuilds(ctx context.Context, fn func(events.BuildRecord)) error
	BuildRecord(ctx context.Context, k events.BuildKey) (events.BuildRecord, error)
	UpdateBuild(ctx context.Context, k events.BuildKey, change func(*events.BuildRecord) error) (events.BuildRecord, error)
	TakeLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error)
	DropLease(ctx context.Context, name, holder string) error
	WatchHeadSummaries(ctx context.Context, fn func(events.HeadSummary)) error
	HeadSummary(ctx context.Context, k events.HeadKey) (events.HeadSummary, error)
	UpdateHeadSummary(ctx context.Context, k events.HeadKey, change func(*events.HeadSummary) error) (events.HeadSummary, error)
}

// Client is GitHub as one installation (or the configured token) sees it,
// for writing. Checks is set only under GitHub App auth: only an App may
// write check runs.
type Client struct {
	Statuses status.StatusCreator
	Checks   status.CheckRunClient
}

// Clients gives the Client of an installation (0 with token auth).
type Clients interface {
	Client(ctx context.Context, installation int64) (Client, error)
}

// LeaseName is the lease whose holder is the fleet's one projector.
const LeaseName = "projector"

// Defaults of Options.
const (
	DefaultLeaseTTL     = 10 * time.Second
	DefaultSettle       = 10 * time.Second
	DefaultParallel     = 4
	DefaultFirstBackoff = time.Second
	DefaultMaxBackoff   = 30 * time.Second
)

// Options are a Projector's parts and settings. Records, Clients and
// Holder are required.
type Options struct {
	Records Records
	Clients Clients
	// Holder names this projector in the lease: unique per process.
	Holder string
	// HTTPRoot is where build pages are served; the summary links to the
	// build's page under it. Empty links nowhere.
	HTTPRoot string
	Pacing   Pacing
	// LeaseTTL is how long the lease lasts unrenewed (default
	// DefaultLeaseTTL): a dead holder's successor waits at most this long.
	// It is renewed every third of it.
	LeaseTTL time.Duration
	// Settle bounds what Run spends, after its context ends, writing what
	// is owed (default DefaultSettle).
	Settle time.Duration
	// Parallel is how many builds are written at once (default
	// DefaultParallel); one build's parts are written in order.
	Parallel int
	// FirstBackoff and MaxBackoff bound the growing wait before a build
	// whose write failed is tried again, from its latest record.
	FirstBackoff, MaxBackoff time.Duration
	// StatusOptions tune the writes (secrets to mask, attempt timeout).
	StatusOptions []status.Option
	Logger        *slog.Logger
	// Metrics, when set, counts what the projector does.
	Metrics *Metrics
}

// Projector keeps GitHub in line with the build records while it holds the
// lease. Every worker runs one; only the lease holder writes. It is made
// of parts with one job each: the lease (whether this projector is the
// fleet's writer), the schedule (what is owed GitHub and when, with the
// backoff of failed writes) and the writer (reading a record and writing
// GitHub what it owes); the Projector feeds the schedule from the watch
// and runs the writes it hands out.
type Projector struct {
	opts   Options
	log    *slog.Logger
	lease  *lease
	sched  *schedule
	writer *writer
}

// New checks opts and returns a Projector.
func New(opts Options) (*Projector, error) {
	var errs []error
	if opts.Records == nil {
		errs = append(errs, errors.New("projector: no records"))
	}
	if opts.Clients == nil {
		errs = append(errs, errors.New("projector: no GitHub clients"))
	}
	if opts.Holder == "" {
		errs = append(errs, errors.New("projector: no holder name"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	setDefault(&opts.LeaseTTL, DefaultLeaseTTL)
	setDefault(&opts.Settle, DefaultSettle)
	setDefault(&opts.FirstBackoff, DefaultFirstBackoff)
	setDefault(&opts.MaxBackoff, DefaultMaxBackoff)
	if opts.Parallel <= 0 {
		opts.Parallel = DefaultParallel
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics(nil)
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("holder", opts.Holder)
	sched := newSchedule(opts.Parallel, opts.FirstBackoff, opts.MaxBackoff)
	l := &lease{store: opts.Records, holder: opts.Holder, ttl: opts.LeaseTTL, log: log,
		gauge: opts.Metrics.Leading, gained: sched.dueNow}
	// Each write is tried once: the schedule retries from the record.
	statusOpts := append([]status.Option{status.WithLogger(log), status.WithMaxAttempts(1),
		status.WithBackoff(opts.FirstBackoff, opts.MaxBackoff)}, opts.StatusOptions...)
	w := &writer{records: opts.Records, clients: opts.Clients, pacing: opts.Pacing,
		httpRoot: opts.HTTPRoot, statusOptions: statusOpts, ids: status.NewCheckRunIDs(),
		log: log, metrics: opts.Metrics, leader: l, seen: sched}
	return &Projector{opts: opts, log: log, lease: l, sched: sched, writer: w}, nil
}

func setDefault(d *time.Duration, v time.Duration) {
	if *d <= 0 {
		*d = v
	}
}

// Writes returns how many writes GitHub took from this projector.
func (p *Projector) Writes() int {
	return int(p.writer.writes.Load())
}

// Leading reports whether this projector holds the lease now.
func (p *Projector) Leading() bool {
	return p.lease.Leading()
}

// Run watches the records and, while it holds the lease, writes what they
// owe GitHub, until ctx ends. Then it settles: for at most Options.Settle
// it lets writes under way finish and writes what is owed now (failed
// writes once more; held states stay held), gives the lease up and
// returns. It returns an error only when the watch cannot run.
func (p *Projector) Run(ctx context.Context) error {
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	watchErr := make(chan error, 2)
	go func() { watchErr <- p.opts.Records.WatchBuilds(watchCtx, p.observe) }()
	go func() { watchErr <- p.opts.Records.WatchHeadSummaries(watchCtx, p.observeHead) }()
	var wg sync.WaitGroup
	wg.Go(func() { p.lease.keep(ctx) })
	// Writes under way when ctx ends may finish while the projector
	// settles, not after.
	writeCtx, stopWrites := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWrites()
	for ctx.Err() == nil {
		timer := time.NewTimer(p.dispatch(writeCtx, &wg))
		select {
		case <-ctx.Done():
		case err := <-watchErr:
			if ctx.Err() != nil {
				break // the watch ended with ctx: settle all the same
			}
			timer.Stop()
			stopWrites()
			wg.Wait()
			return err
		case <-p.sched.wake:
		case <-timer.C:
		}
		timer.Stop()
	}
	settleCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.opts.Settle)
	defer cancel()
	context.AfterFunc(settleCtx, stopWrites)
	wg.Wait()
	p.settle(settleCtx)
	return nil
}

// dispatch starts a write of every target the schedule hands out now, and
// returns how long until the next one is due.
func (p *Projector) dispatch(ctx context.Context, wg *sync.WaitGroup) time.Duration {
	due, wait := p.sched.take(time.Now(), p.lease.Leading())
	for _, k := range due {
		wg.Go(func() { p.sched.finish(k, p.writer.look(ctx, k)) })
	}
	return wait
}

// observe notes a record's change: a projected record with something to
// show is owed a look now.
func (p *Projector) observe(rec events.BuildRecord) {
	if !rec.Projected {
		return
	}
	p.sched.note(target{build: rec.Key}, rec.Revision, buildOwes(rec, p.writer.pageURL(rec.Key)))
}

// observeHead notes a head summary's change, as observe does a build's.
func (p *Projector) observeHead(h events.HeadSummary) {
	p.sched.note(target{head: h.Key()}, h.Revision, headOwes(h))
}

// settle writes, until ctx ends, what every owed target owes now
// (a failed write is tried once more at once; held states stay held),
// when this projector leads, then gives up the lease.
func (p *Projector) settle(ctx context.Context) {
	if !p.lease.Leading() {
		return
	}
	for _, k := range p.sched.pending() {
		p.writer.look(ctx, k) // a backoff ends now; holds stay (next)
	}
	p.lease.drop(ctx)
}
