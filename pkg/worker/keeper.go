package worker

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/yourci/yourci/pkg/artifacts"
	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/pages"
	"github.com/yourci/yourci/pkg/pause"
)

// RecordWatcher delivers every build record as it changes, on every box;
// events.Records has it.
type RecordWatcher interface {
	WatchBuilds(ctx context.Context, fn func(events.BuildRecord)) error
}

// RecentRecords reads a repository's latest build records;
// events.Records has it.
type RecentRecords interface {
	RecentBuilds(ctx context.Context, repo events.Repo, n int) ([]events.BuildRecord, error)
}

// ShareReader reads each repository's share of test slots on the whole
// fleet, for the box page; cmd/worker makes one of events.Board.Shares and
// the workers' limits.
type ShareReader interface {
	RepoShares(ctx context.Context) ([]events.RepoShare, error)
}

// DefaultPageInterval is the least time between two renderings of one
// page: a build whose tests change state many times a second is rendered
// once a second, its latest state always last.
const DefaultPageInterval = time.Second

// pruneEvery is how often the keeper forgets the builds it no longer needs.
const pruneEvery = time.Minute

// watchRetry bounds the wait before watching the records again after the
// watch failed.
const watchRetry = 30 * time.Second

// PageLayout is what the pages need of the workspace: where it is, and
// where a build's and a mirror's directories are in it; artifacts.Layout
// (and so artifacts.Workspace) has it.
type PageLayout interface {
	Root() string
	BuildDir(b artifacts.Build) (string, error)
	MirrorDir(owner, repo string) (string, error)
}

// PageKeeperOptions are a PageKeeper's parts. All but Logger and Interval
// are required.
type PageKeeperOptions struct {
	Workspace PageLayout
	Watch     RecordWatcher
	Records   RecentRecords
	// Shares, when set, adds each repository's place in the test queue
	// to the box page.
	Shares ShareReader
	Logger *slog.Logger
	// Interval is DefaultPageInterval when zero.
	Interval time.Duration
}

// PageKeeper is the one writer of a box's pages: it follows every build
// record, whichever box changed it, and rewrites the page and build.json of
// each build whose directory this box holds, the page of each repository
// whose mirror it holds when a build's summary changes, and the box page
// at the workspace root. Each page is written at most once per Interval,
// and always again after its latest change.
type PageKeeper struct {
	opts PageKeeperOptions
	log  *slog.Logger
	wake chan struct{} // a record arrived; buffered, one is enough

	mu     sync.Mutex
	builds map[events.BuildKey]*keptBuild
	// pulls holds the latest build of every pull request seen, so that a
	// late revision of an older build, once its newer one is forgotten,
	// is not taken for the pull's latest.
	pulls map[pullKey]latestBuild
	repos map[events.Repo]*keptPage
	box   keptPage
}

type latestBuild struct {
	build   int
	closed  bool
	updated time.Time
}

// keptBuild is what the keeper holds of one build: its latest record and
// when its pages were written.
type keptBuild struct {
	rec     events.BuildRecord
	page    keptPage
	summary string // summary line the repository page last saw of it
}

// keptPage schedules one page: dirty says it must be written again, at
// rendered plus the interval at the earliest.
type keptPage struct {
	dirty    bool
	rendered time.Time
}

// NewPageKeeper checks that every part is there.
func NewPageKeeper(opts PageKeeperOptions) (*PageKeeper, error) {
	var errs []error
	if opts.Workspace == nil {
		errs = append(errs, errors.New("pages: no workspace"))
	}
	if opts.Watch == nil {
		errs = append(errs, errors.New("pages: no build record watch"))
	}
	if opts.Records == nil {
		errs = append(errs, errors.New("pages: no build records"))
	}
	if opts.Interval < 0 {
		errs = append(errs, errors.New("pages: negative interval"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Interval == 0 {
		opts.Interval = DefaultPageInterval
	}
	return &PageKeeper{opts: opts, log: opts.Logger, wake: make(chan struct{}, 1),
		builds: map[events.BuildKey]*keptBuild{}, pulls: map[pullKey]latestBuild{}, repos: map[events.Repo]*keptPage{}}, nil
}

// Run keeps the pages until ctx ends, then returns nil once the page being
// written (if any) is done. It uses two goroutines: the watch and the
// writer. Run may be called once.
func (k *PageKeeper) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { k.watch(ctx) })
	defer wg.Wait()
	timer := time.NewTimer(0)
	defer timer.Stop()
	lastPrune := time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-k.wake:
		case <-timer.C:
		}
		now := time.Now()
		if now.Sub(lastPrune) >= pruneEvery {
			k.prune(now)
			lastPrune = now
		}
		next := k.writeDue(ctx, now)
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(next)
	}
}

// watch follows the records until ctx ends, watching again after a pause
// when the watch fails.
func (k *PageKeeper) watch(ctx context.Context) {
	wait := time.Second
	for ctx.Err() == nil {
		err := k.opts.Watch.WatchBuilds(ctx, k.record)
		if err == nil || ctx.Err() != nil {
			return
		}
		k.log.Warn("watching build records for pages; trying again", "err", err, "after", wait)
		if pause.For(ctx, wait) != nil {
			return // ctx ended: the loop's condition would stop it too
		}
		wait = min(2*wait, watchRetry)
	}
}

// record takes in a new revision of a build's record.
func (k *PageKeeper) record(rec events.BuildRecord) {
	k.mu.Lock()
	defer k.mu.Unlock()
	b := k.builds[rec.Key]
	switch {
	case b == nil:
		b = &keptBuild{}
		k.builds[rec.Key] = b
		k.successorArrived(rec)
	case rec.Revision <= b.rec.Revision:
		return // a watch started again delivers what it delivered before
	case rec.SHA != b.rec.SHA:
		// A build's first revision may name only the base it merged;
		// its commit, which earlier builds' pages look for, comes next.
		k.successorArrived(rec)
	}
	b.rec = rec
	b.page.dirty = true
	p := pullKey{rec.Key.Repo, rec.Key.Pull}
	if l := k.pulls[p]; rec.Key.Build >= l.build {
		k.pulls[p] = latestBuild{build: rec.Key.Build, closed: rec.Closed, updated: rec.Updated}
	}
	if s := summaryLine(rec); s != b.summary {
		b.summary = s
		r := k.repos[rec.Key.Repo]
		if r == nil {
			r = &keptPage{}
			k.repos[rec.Key.Repo] = r
		}
		r.dirty = true
	}
	k.box.dirty = true
	select {
	case k.wake <- struct{}{}:
	default:
	}
}

// summaryLine is what the repository page shows of a build.
func summaryLine(rec events.BuildRecord) string {
	s := pages.Summarize(rec)
	closed := ""
	if rec.Closed {
		closed = " closed"
	}
	return s.State + ": " + s.Description + closed + " " + rec.Title
}

// writeDue writes every page whose time has come and returns how long until
// the next one is due (a long time when none is).
func (k *PageKeeper) writeDue(ctx context.Context, now time.Time) time.Duration {
	next := time.Hour
	due := func(p *keptPage) bool {
		if !p.dirty {
			return false
		}
		if at := p.rendered.Add(k.opts.Interval); at.After(now) {
			next = min(next, at.Sub(now))
			return false
		}
		p.dirty, p.rendered = false, now
		return true
	}
	k.mu.Lock()
	var builds []events.BuildRecord
	for _, b := range k.builds {
		if due(&b.page) {
			builds = append(builds, b.rec)
		}
	}
	var repos []events.Repo
	for repo, p := range k.repos {
		if due(p) {
			repos = append(repos, repo)
		}
	}
	var box []events.BuildRecord
	writeBox := due(&k.box)
	if writeBox {
		for key, b := range k.builds {
			if k.latestOpen(key) {
				box = append(box, b.rec)
			}
		}
	}
	k.mu.Unlock()

	for _, rec := range builds {
		k.writeBuild(ctx, rec)
	}
	for _, repo := range repos {
		k.writeRepo(ctx, repo)
	}
	if writeBox {
		k.writeBox(ctx, box, now)
	}
	return next
}

// latestOpen reports whether key is the latest build of an open pull.
func (k *PageKeeper) latestOpen(key events.BuildKey) bool {
	l := k.pulls[pullKey{key.Repo, key.Pull}]
	return l.build == key.Build && !l.closed
}

// prune forgets builds whose pages are written and that the box page does
// not show (all but the latest build of each open pull request), and pull
// requests whose records have expired.
func (k *PageKeeper) prune(now time.Time) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for key, b := range k.builds {
		if !b.page.dirty && !k.latestOpen(key) {
			delete(k.builds, key)
		}
	}
	for p, l := range k.pulls {
		if now.Sub(l.updated) > events.DefaultRecordTTL {
			delete(k.pulls, p)
		}
	}
}

// writeBuild writes the build's index.html and build.json, when this box
// holds the build's directory.
func (k *PageKeeper) writeBuild(ctx context.Context, rec events.BuildRecord) {
	log := k.log.With("repo", rec.Key.Repo.FullName(), "pull", rec.Key.Pull, "build", rec.Key.Build)
	dir, err := k.opts.Workspace.BuildDir(build(rec.Key.Repo, rec.Key.Pull, rec.Key.Build))
	if err != nil {
		log.Warn("locating build pages", "err", err)
		return
	}
	if !isDir(dir) {
		return
	}
	html, err := pages.BuildPage(rec, k.successorCandidates(ctx, log, rec))
	if err != nil {
		log.Error("rendering build page", "err", err)
		return
	}
	state, err := pages.BuildJSON(rec)
	if err != nil {
		log.Error("rendering build state", "err", err)
		return
	}
	// build.json first: a page is never newer than the state it reads.
	k.writePages(log, dir, map[string][]byte{"build.json": state}, map[string][]byte{"index.html": html})
}

// writeRepo writes <owner>/<repo>/index.html from the repository's recent
// builds, when this box holds the repository.
func (k *PageKeeper) writeRepo(ctx context.Context, repo events.Repo) {
	log := k.log.With("repo", repo.FullName())
	mirror, err := k.opts.Workspace.MirrorDir(repo.Owner, repo.Name)
	if err != nil {
		log.Warn("locating repository page", "err", err)
		return
	}
	dir := path.Dir(mirror)
	if !isDir(dir) {
		return
	}
	recent, err := k.opts.Records.RecentBuilds(ctx, repo, recentBuilds)
	if err != nil {
		log.Warn("reading recent builds", "err", err)
		return
	}
	html, err := pages.RepoPage(repo, recent, time.Now())
	if err != nil {
		log.Error("rendering repository page", "err", err)
		return
	}
	k.writePages(log, dir, map[string][]byte{"index.html": html})
}

// writeBox writes index.html at the workspace root. A page whose shares
// could not be read is written without them.
func (k *PageKeeper) writeBox(ctx context.Context, builds []events.BuildRecord, now time.Time) {
	var shares []events.RepoShare
	if k.opts.Shares != nil {
		var err error
		if shares, err = k.opts.Shares.RepoShares(ctx); err != nil {
			k.log.Warn("reading repositories' shares of test slots for the box page", "err", err)
		}
	}
	html, err := pages.BoxPage(builds, now, shares...)
	if err != nil {
		k.log.Error("rendering box page", "err", err)
		return
	}
	k.writePages(k.log, k.opts.Workspace.Root(), map[string][]byte{"index.html": html})
}

// writePages writes each batch of files into dir, the workspace root or an
// absolute directory below it, in order.
func (k *PageKeeper) writePages(log *slog.Logger, dir string, batches ...map[string][]byte) {
	rel, err := relativeTo(k.opts.Workspace.Root(), dir)
	if err != nil {
		log.Error("locating pages", "err", err)
		return
	}
	root, err := os.OpenRoot(k.opts.Workspace.Root())
	if err != nil {
		log.Error("opening workspace for pages", "err", err)
		return
	}
	defer root.Close()
	for _, batch := range batches {
		for name, data := range batch {
			if err := pages.WriteFile(root, path.Join(rel, name), data); err != nil {
				log.Warn("writing page", "err", err)
			}
		}
	}
}

// isDir reports whether dir is there (as a directory, not a link).
func isDir(dir string) bool {
	info, err := os.Lstat(dir)
	return err == nil && info.IsDir()
}

// relativeTo is dir relative to root, slash-separated, for os.Root: "." for
// root itself.
func relativeTo(root, dir string) (string, error) {
	if dir == root {
		return ".", nil
	}
	rel, ok := strings.CutPrefix(dir, root+"/")
	if !ok {
		return "", errors.New(dir + " is not below " + root)
	}
	return rel, nil
}
