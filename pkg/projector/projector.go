package projector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/pages"
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
// lease. Every worker runs one; only the lease holder writes.
type Projector struct {
	opts Options
	log  *slog.Logger
	ids  *status.CheckRunIDs
	wake chan struct{}

	mu      sync.Mutex
	leading bool
	// owed are the builds and head summaries with something to show, and
	// when to look next.
	owed  map[target]time.Time
	busy  map[target]bool
	fails map[target]int
	// seen is the latest revision the watch delivered of each owed
	// target: a read that returns an older one came from a replica that
	// lags (a NATS cluster serves key-value reads from any replica) and is
	// read again, not taken for the truth.
	seen map[target]uint64
	// writes counts the writes GitHub took, for Stats.
	writes int
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
	return &Projector{opts: opts, log: log.With("holder", opts.Holder), ids: status.NewCheckRunIDs(),
		wake: make(chan struct{}, 1), owed: map[target]time.Time{},
		busy: map[target]bool{}, fails: map[target]int{},
		seen: map[target]uint64{}}, nil
}

func setDefault(d *time.Duration, v time.Duration) {
	if *d <= 0 {
		*d = v
	}
}

// Writes returns how many writes GitHub took from this projector.
func (p *Projector) Writes() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.writes
}

// Leading reports whether this projector holds the lease now.
func (p *Projector) Leading() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.leading
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
	wg.Go(func() { p.keepLease(ctx) })
	// Writes under way when ctx ends may finish while the projector
	// settles, not after.
	writeCtx, stopWrites := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWrites()
	sem := make(chan struct{}, p.opts.Parallel)
	for ctx.Err() == nil {
		timer := p.dispatch(writeCtx, sem, &wg)
		select {
		case <-ctx.Done():
		case err := <-watchErr:
			timer.Stop()
			stopWrites()
			wg.Wait()
			return err
		case <-p.wake:
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

// observe notes a record's change: a projected record with something to
// show is owed a look now.
func (p *Projector) observe(rec events.BuildRecord) {
	if !rec.Projected {
		return
	}
	owes := false
	for _, st := range Project(rec, p.pageURL(rec.Key)) {
		shown, ok := rec.Shown[st.Part]
		if ok && shown.Mark == st.Mark {
			continue
		}
		owes = true
		break
	}
	p.note(target{build: rec.Key}, rec.Revision, owes)
}

// note records that the watch delivered revision rev of t, which owes
// GitHub a write or not.
func (p *Projector) note(t target, rev uint64, owes bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if rev > p.seen[t] {
		p.seen[t] = rev
	}
	if !owes {
		if !p.busy[t] {
			delete(p.owed, t)
			delete(p.fails, t)
			delete(p.seen, t)
		}
		return
	}
	if p.fails[t] == 0 {
		p.owed[t] = time.Time{} // at once; a failing target keeps its backoff
	} else if _, ok := p.owed[t]; !ok {
		p.owed[t] = time.Time{}
	}
	p.poke()
}

// poke wakes Run's loop; p.mu may be held.
func (p *Projector) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// dispatch starts a write of every owed target that is due and not being
// written, while this projector leads, and returns a timer for the next
// one due. A head's summary and the builds of its pull request are never
// written at once (see target.conflicts).
func (p *Projector) dispatch(ctx context.Context, sem chan struct{}, wg *sync.WaitGroup) *time.Timer {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	nextDue := time.Duration(-1)
	for k, at := range p.owed {
		if p.busy[k] || p.conflicts(k) {
			continue
		}
		if wait := at.Sub(now); wait > 0 || !p.leading {
			if wait > 0 && (nextDue < 0 || wait < nextDue) {
				nextDue = wait
			}
			continue
		}
		select {
		case sem <- struct{}{}:
		default:
			continue // every slot is busy: a finished write pokes the loop
		}
		p.busy[k] = true
		delete(p.owed, k)
		wg.Go(func() {
			defer func() { <-sem }()
			p.finish(k, p.lookAt(ctx, k))
		})
	}
	if nextDue < 0 {
		nextDue = time.Hour
	}
	return time.NewTimer(nextDue)
}

// finish records the outcome of showing k: later, when set, is when k is
// owed another look.
func (p *Projector) finish(k target, later time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.busy, k)
	if !later.IsZero() {
		if at, ok := p.owed[k]; !ok || later.Before(at) {
			p.owed[k] = later
		}
	}
	p.poke()
}

// keepLease takes and renews the lease every third of its TTL until ctx
// ends. Gaining it makes every known owed build due at once: the new
// holder shows what its predecessor left unshown.
func (p *Projector) keepLease(ctx context.Context) {
	every := p.opts.LeaseTTL / 3
	for {
		held, err := p.opts.Records.TakeLease(ctx, LeaseName, p.opts.Holder, p.opts.LeaseTTL)
		if err != nil && ctx.Err() == nil {
			p.log.Warn("taking the projector lease", "err", err)
		}
		p.setLeading(held && err == nil)
		t := time.NewTimer(every)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

func (p *Projector) setLeading(held bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if held == p.leading {
		return
	}
	p.leading = held
	p.log.Info("projector lease", "held", held)
	if held {
		p.opts.Metrics.Leading.Set(1)
	} else {
		p.opts.Metrics.Leading.Set(0)
	}
	if held {
		for k := range p.owed {
			p.owed[k] = time.Time{}
		}
		p.poke()
	}
}

// settle writes, until ctx ends, what every owed build owes now
// (a failed write is tried once more at once; held states stay held),
// when this projector leads, then gives up the lease.
func (p *Projector) settle(ctx context.Context) {
	p.mu.Lock()
	leading := p.leading
	var due []target
	for k := range p.owed {
		due = append(due, k) // a backoff ends now; holds stay (next)
	}
	p.mu.Unlock()
	if !leading {
		return
	}
	for _, k := range due {
		p.lookAt(ctx, k)
	}
	if err := p.opts.Records.DropLease(ctx, LeaseName, p.opts.Holder); err != nil {
		p.log.Warn("giving up the projector lease", "err", err)
	}
}

// pageURL is where the build's page is served, or "" when nowhere.
func (p *Projector) pageURL(k events.BuildKey) string {
	return pages.URL(p.opts.HTTPRoot, k)
}

// errNotLeading stops a write when the lease was lost meanwhile.
var errNotLeading = fmt.Errorf("projector lease lost")
