package events

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestConsumerFor names the durable consumer of r's test jobs (filter
// TestSubject(r)), which every worker shares and creates on demand. The
// name is TestConsumer, "_" and the subject's tokens encoded once more, so
// that two repositories never share a consumer; a name that would be long
// enough to trouble the server's file store is a hash of the subject
// instead (it has no "=", which every encoded name has).
func TestConsumerFor(r Repo) string {
	name := TestConsumer + "_" + EncodeToken(repoTokens(r))
	if len(name) <= maxConsumerName {
		return name
	}
	sum := sha256.Sum256([]byte(TestSubject(r)))
	return TestConsumer + "_sha256_" + hex.EncodeToString(sum[:20])
}

// maxConsumerName keeps a consumer's directory name on the server's file
// store well below the usual 255-byte limit of a file name.
const maxConsumerName = 200

// repoOfTestSubject is the repository a test subject names.
func repoOfTestSubject(subject string) (Repo, bool) {
	rest, ok := strings.CutPrefix(subject, testPrefix)
	if !ok {
		return Repo{}, false
	}
	return repoOfTokens(rest)
}

// repoOfTokens decodes "<owner>.<repo>", encoded tokens.
func repoOfTokens(s string) (Repo, bool) {
	o, n, ok := strings.Cut(s, ".")
	if !ok || strings.Contains(n, ".") {
		return Repo{}, false
	}
	owner, err1 := DecodeToken(o)
	name, err2 := DecodeToken(n)
	return Repo{Owner: owner, Name: name}, err1 == nil && err2 == nil
}

// why a repository may have a test job deliverable now.
type why int

const (
	// whyStored: the stream held its jobs when last read.
	whyStored why = iota + 1
	// whyFreed: one of its slots was given back (its cap may allow more).
	whyFreed
	// whyDue: one of its jobs was handed back, and its delay is over.
	whyDue
	// whyPublished: a job of it was just published. A look that finds
	// nothing then makes the consumer be ensured again (fetchNow).
	whyPublished
)

// dueJob is a repository whose handed-back job is due at at.
type dueJob struct {
	repo Repo
	at   time.Time
}

// fairTests is the source of test jobs of one ConsumeTests call. For each
// free slot it takes one job from the first repository in FairOrder that
// has one deliverable now, among those that may have one (ready), counting
// the slots each holds fleet-wide from a watch (holdBook): a free slot
// asks the server nothing but the fetch of its job. Nothing deliverable,
// it waits for a notification: a job published, a job handed back coming
// due (announceDue), a slot given back; and it reads the stream again
// (resync) after a reconnect, which may have lost notifications, and every
// AckWait while the stream holds test jobs (a crashed worker's job comes
// back unannounced). A worker with nothing queued anywhere sends nothing.
//
// Only the consume loop calls next, so the fields below mu are its own;
// notifications arrive on NATS's goroutines and take mu.
type fairTests struct {
	q      *Queue
	limits RepoLimits
	book   *holdBook
	// wake has a value when a notification came since the last look.
	wake chan struct{}

	mu        sync.Mutex
	consumers map[Repo]jetstream.Consumer
	ready     map[Repo]why
	due       []dueJob
	// dueMisses counts, per repository, the looks in a row that a due
	// announcement made and that found nothing (see missedDue).
	dueMisses map[Repo]int

	lastServed map[Repo]time.Time
	// stored: the stream held test jobs when last read, or may hold one
	// that no look found (expectStored); resyncAt is when to read it
	// again.
	stored     bool
	resyncAt   time.Time
	reconnects uint64
}

func newFairTests(q *Queue, limits RepoLimits, book *holdBook) *fairTests {
	return &fairTests{q: q, limits: limits, book: book, wake: make(chan struct{}, 1),
		consumers: map[Repo]jetstream.Consumer{}, ready: map[Repo]why{}, dueMisses: map[Repo]int{}, lastServed: map[Repo]time.Time{},
		reconnects: q.nc.Stats().Reconnects}
}

// markReady records that r may have a job deliverable, for reason w, and
// wakes the loop.
func (f *fairTests) markReady(r Repo, w why) {
	f.mu.Lock()
	f.ready[r] = max(f.ready[r], w)
	f.mu.Unlock()
	f.signal()
}

func (f *fairTests) signal() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// listen subscribes to test jobs published and handed back, and follows
// the slots given back, until stop is called.
func (f *fairTests) listen() (stop func(), err error) {
	published, err := f.q.nc.Subscribe(TestSubjects, func(m *nats.Msg) {
		if r, ok := repoOfTestSubject(m.Subject); ok {
			f.markReady(r, whyPublished)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("watching test publications: %w", err)
	}
	due, err := f.q.nc.Subscribe(duePrefix+">", func(m *nats.Msg) {
		if r, delay, ok := dueOf(m.Subject, m.Data); ok {
			f.mu.Lock()
			f.due = append(f.due, dueJob{repo: r, at: time.Now().Add(delay + dueSlack)})
			f.mu.Unlock()
			f.signal()
		}
	})
	if err != nil {
		f.unsubscribe(published)
		return nil, fmt.Errorf("watching test jobs handed back: %w", err)
	}
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		for {
			select {
			case <-done:
				return
			case r := <-f.book.freed:
				// Only a cap makes a slot given back let a job go.
				if f.limits.For(r).MaxRunning > 0 {
					f.markReady(r, whyFreed)
				}
			}
		}
	}()
	return func() {
		f.unsubscribe(published)
		f.unsubscribe(due)
		close(done)
		<-finished
	}, nil
}

func (f *fairTests) unsubscribe(sub *nats.Subscription) {
	if err := sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		f.q.log.Warn("unsubscribing from test notifications", "subject", sub.Subject, "err", err)
	}
}

// next returns one test job and the func to call when its handler has
// returned (it gives the repository's slot back), or no job after waiting
// for a notification.
func (f *fairTests) next(ctx context.Context) (jetstream.Msg, func(), error) {
	now := time.Now()
	if err := f.resyncIfDue(ctx, now); err != nil {
		return nil, nil, err
	}
	held := f.book.held()
	for _, s := range FairOrder(f.candidates(now, held)) {
		msg, done, err := f.take(ctx, s)
		if err != nil {
			return nil, nil, err
		}
		if msg != nil {
			f.lastServed[s.Repo] = now
			if !f.stored {
				// The job stays stored until it is acked: look again
				// AckWait from now, in case it comes back unannounced.
				f.stored, f.resyncAt = true, now.Add(f.q.opts.AckWait)
			}
			return msg, done, nil
		}
	}
	f.wait(ctx)
	return nil, nil, nil
}

// candidates are the shares of the repositories that may have a job
// deliverable at now: ready ones, and those whose handed-back job is due.
func (f *fairTests) candidates(now time.Time, held map[Repo]int) []RepoShare {
	f.mu.Lock()
	defer f.mu.Unlock()
	later := f.due[:0]
	for _, d := range f.due {
		if d.at.After(now) {
			later = append(later, d)
		} else {
			f.ready[d.repo] = max(f.ready[d.repo], whyDue)
		}
	}
	f.due = later
	out := make([]RepoShare, 0, len(f.ready))
	for r := range f.ready {
		out = append(out, RepoShare{Repo: r, Held: held[r], Limit: f.limits.For(r), LastServed: f.lastServed[r]})
	}
	return out
}

// wait returns on a notification, when a handed-back job is due, when the
// stream is to be read again, on a reconnect, or when ctx ends. The
// reconnect is checked locally, every PollWait, asking the server
// nothing.
func (f *fairTests) wait(ctx context.Context) {
	now, until := time.Now(), time.Time{}
	f.mu.Lock()
	for _, d := range f.due {
		if until.IsZero() || d.at.Before(until) {
			until = d.at
		}
	}
	f.mu.Unlock()
	if f.stored && (until.IsZero() || f.resyncAt.Before(until)) {
		until = f.resyncAt
	}
	var timeout <-chan time.Time
	if !until.IsZero() {
		t := time.NewTimer(until.Sub(now))
		defer t.Stop()
		timeout = t.C
	}
	check := time.NewTicker(f.q.opts.PollWait)
	defer check.Stop()
	for {
		select {
		case <-f.wake:
			return
		case <-timeout:
			return
		case <-check.C:
			if f.q.nc.Stats().Reconnects != f.reconnects {
				return
			}
		case <-ctx.Done():
			return
		}
	}
}

// resyncIfDue reads which repositories have test jobs stored, when the
// connection came back since the last read, when it is the first look, or
// AckWait after the last read while jobs were stored: each is marked
// ready, and every consumer is ensured again at its next look (one an
// operator deleted is created again).
func (f *fairTests) resyncIfDue(ctx context.Context, now time.Time) error {
	reconnects := f.q.nc.Stats().Reconnects
	first, reconnected := f.resyncAt.IsZero(), reconnects != f.reconnects
	if !first && !reconnected && (!f.stored || now.Before(f.resyncAt)) {
		return nil
	}
	callCtx, cancel := f.q.callContext(ctx)
	stored, err := storedTests(callCtx, f.q.js, f.q.opts.Stream)
	cancel()
	if err != nil {
		return err
	}
	f.reconnects, f.stored, f.resyncAt = reconnects, false, now.Add(f.q.opts.AckWait)
	if first || reconnected {
		// This read is made because notifications may have been lost,
		// and it may itself come too soon: a job published before this
		// worker's subscription took effect (or while it reconnected)
		// can be stored after the read answered. Read once more.
		f.expectStored(now)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !first {
		clear(f.consumers)
	}
	for subject, n := range stored {
		if r, ok := repoOfTestSubject(subject); ok && n > 0 {
			f.stored = true
			f.ready[r] = max(f.ready[r], whyStored)
		}
	}
	return nil
}

// take fetches one job of s.Repo if one is deliverable now, and otherwise
// forgets that the repository may have one. A capped repository's slot is
// claimed first and given back when there is no job, so two workers never
// exceed the cap; an uncapped one's is recorded after the fetch, saving
// two calls per repository with nothing to give.
func (f *fairTests) take(ctx context.Context, s RepoShare) (jetstream.Msg, func(), error) {
	cons, err := f.consumer(ctx, s.Repo)
	if err != nil {
		return nil, nil, err
	}
	if s.Limit.MaxRunning == 0 {
		msg, err := f.fetchNow(s.Repo, cons)
		if msg == nil || err != nil {
			return nil, nil, err
		}
		return msg, f.q.hold(ctx, s.Repo, randomHoldID(), false), nil
	}
	for i := range s.Limit.MaxRunning {
		release := f.q.hold(ctx, s.Repo, strconv.Itoa(i), true)
		if release == nil {
			continue // taken by another slot
		}
		msg, err := f.fetchNow(s.Repo, cons)
		if msg == nil || err != nil {
			release()
			return nil, nil, err
		}
		return msg, release, nil
	}
	return nil, nil, nil // the cap filled up since the counts were read
}

// probeWait is how long a look at one repository's consumer waits for a
// message. A request that does not wait (NoWait) has no expiry, and one
// to a consumer created again under the same name has been seen to go
// unanswered for good; a short expiry always ends it, and costs its
// length only for a repository with nothing deliverable, which is then
// left alone until a notification says otherwise. It also covers a job
// whose publication reached this worker before the stream stored it.
const probeWait = 50 * time.Millisecond

// fetchNow takes one message if r's consumer cons has one deliverable
// now. When it gets none, r is no longer ready; when a publication had
// made it ready, the consumer is forgotten too and looked at once more,
// ensured again: nats-server 2.9 answers a request to a consumer an
// operator deleted as if it had nothing to give.
func (f *fairTests) fetchNow(r Repo, cons jetstream.Consumer) (jetstream.Msg, error) {
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(min(probeWait, f.q.opts.PollWait)))
	if err != nil {
		f.forget(r, whyStored)
		return nil, fmt.Errorf("requesting a message of %s: %w", r.FullName(), err)
	}
	var got jetstream.Msg
	for msg := range batch.Messages() {
		got = msg
	}
	f.mu.Lock()
	if got != nil {
		delete(f.dueMisses, r)
		f.mu.Unlock()
		return got, nil
	}
	switch f.ready[r] {
	case whyPublished:
		delete(f.consumers, r)
		f.ready[r] = whyStored // one more look, with the consumer ensured
		f.expectStored(time.Now())
	case whyDue:
		delete(f.ready, r)
		f.missedDue(r, time.Now())
	default:
		delete(f.ready, r)
	}
	f.mu.Unlock()
	if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, jetstream.ErrNoMessages) {
		return nil, fmt.Errorf("waiting for a message of %s: %w", r.FullName(), err)
	}
	return nil, nil
}

// expectStored makes the loop read the stream again AckWait from now at
// the latest, when a job may be stored that no look has found: one whose
// publication was heard before the stream stored it (on a busy server the
// looks can come first), or one a read may have come too soon for (see
// resyncIfDue). Without it such a job would wait for the next
// notification, however long that is. Only the consume loop calls it.
func (f *fairTests) expectStored(now time.Time) {
	if !f.stored {
		f.stored, f.resyncAt = true, now.Add(f.q.opts.AckWait)
	}
}

// dueLooks is how many more looks a due announcement is worth when its
// job is not deliverable yet, at dueSlack doubled each time (40 ms to
// 5.1 s, 10 s in all), before the worker waits for the next
// notification or resync.
const dueLooks = 8

// missedDue notes that a look a due announcement made found nothing, and
// plans the next look at r while the announcement is worth one. The
// server delivers a handed-back job when its delay is over by its own
// clock, which starts when it processes the Nak: on a busy box, later
// than the announcement says. Without another look that job would wait
// for the next resync, a whole AckWait. A job another worker took costs
// only these few looks. Called with mu held.
func (f *fairTests) missedDue(r Repo, now time.Time) {
	n := f.dueMisses[r]
	if n >= dueLooks {
		delete(f.dueMisses, r)
		return
	}
	f.dueMisses[r] = n + 1
	f.due = append(f.due, dueJob{repo: r, at: now.Add(dueSlack << (n + 1))})
}

// forget drops r's consumer, to be ensured again at the next look, which
// happens for a reason no weaker than w.
func (f *fairTests) forget(r Repo, w why) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.consumers, r)
	f.ready[r] = max(f.ready[r], w)
}

// consumer returns r's durable consumer, creating it, or updating its
// settings to this worker's, the first time this call looks at r.
func (f *fairTests) consumer(ctx context.Context, r Repo) (jetstream.Consumer, error) {
	f.mu.Lock()
	cons, ok := f.consumers[r]
	f.mu.Unlock()
	if ok {
		return cons, nil
	}
	cons, err := f.q.ensureConsumer(ctx, TestConsumerFor(r), TestSubject(r))
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.consumers[r] = cons
	f.mu.Unlock()
	return cons, nil
}

// readShares reads, for every repository with test jobs stored in the
// stream, how many are stored and how many slots it holds fleet-wide (in
// running), with its limit.
func readShares(ctx context.Context, js jetstream.JetStream, streamName string, running jetstream.KeyValue, limits RepoLimits) ([]RepoShare, error) {
	stored, err := storedTests(ctx, js, streamName)
	if err != nil {
		return nil, err
	}
	held, err := heldSlots(ctx, running)
	if err != nil {
		return nil, err
	}
	var out []RepoShare
	for subject, n := range stored {
		r, ok := repoOfTestSubject(subject)
		if !ok || n == 0 {
			continue
		}
		out = append(out, RepoShare{Repo: r, Stored: n, Held: held[r], Limit: limits.For(r)})
	}
	return out, nil
}

// storedTests counts the test jobs stored in the stream per subject.
func storedTests(ctx context.Context, js jetstream.JetStream, streamName string) (map[string]uint64, error) {
	stream, err := js.Stream(ctx, streamName)
	if err != nil {
		return nil, fmt.Errorf("opening stream %s: %w", streamName, err)
	}
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(TestSubjects))
	if err != nil {
		return nil, fmt.Errorf("counting test jobs per repository: %w", err)
	}
	return info.State.Subjects, nil
}
