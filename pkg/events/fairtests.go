package events

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
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

// Slot holds in the running bucket: hold.<owner>.<repo>.<id>, one per test
// a worker took, so every worker counts the slots each repository holds
// fleet-wide. A capped repository's ids are 0 to MaxRunning-1, each
// created at most once (Create), which makes the cap strict; others take
// a random id. A holder refreshes its key every RunningRefresh and
// deletes it when the test's handler returns; a crashed worker's keys
// expire with the bucket's MaxAge (RunningTTL).
const holdPrefix = "hold."

func holdKey(r Repo, id string) string { return holdPrefix + repoTokens(r) + "." + id }

// repoOfHoldKey is the repository a hold key counts for.
func repoOfHoldKey(key string) (Repo, bool) {
	rest, ok := strings.CutPrefix(key, holdPrefix)
	if !ok {
		return Repo{}, false
	}
	i := strings.LastIndexByte(rest, '.')
	if i < 0 {
		return Repo{}, false
	}
	return repoOfTokens(rest[:i])
}

// holdRecord is a hold key's value, for operators reading the bucket.
type holdRecord struct {
	Since time.Time `json:"since"`
}

// fairTests is the source of test jobs of one ConsumeTests call: for each
// free slot it reads which repositories have stored jobs and how many
// slots each holds fleet-wide, and takes one job from the first
// repository in FairOrder that has one deliverable now. Only the consume
// loop calls next, so lastServed and empty need no lock; consumers has
// one, as handlers' done funcs run elsewhere (see hold).
type fairTests struct {
	q      *Queue
	limits RepoLimits
	// wake has a value when a test job was published since the last look.
	wake chan struct{}

	mu        sync.Mutex
	consumers map[Repo]jetstream.Consumer

	lastServed map[Repo]time.Time
	// empty holds repositories whose consumer gave nothing, until a
	// publish or PollWait: their jobs wait for a retry time or run.
	empty map[Repo]time.Time
}

func newFairTests(q *Queue, limits RepoLimits) *fairTests {
	return &fairTests{q: q, limits: limits, wake: make(chan struct{}, 1),
		consumers: map[Repo]jetstream.Consumer{}, lastServed: map[Repo]time.Time{}, empty: map[Repo]time.Time{}}
}

// watchPublishes wakes next whenever a test job is published, so an idle
// worker starts a new job at once rather than at its next poll.
func (f *fairTests) watchPublishes() (stop func(), err error) {
	sub, err := f.q.nc.Subscribe(TestSubjects, func(*nats.Msg) {
		select {
		case f.wake <- struct{}{}:
		default:
		}
	})
	if err != nil {
		return nil, fmt.Errorf("watching test publications: %w", err)
	}
	return func() {
		if err := sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			f.q.log.Warn("unsubscribing from test publications", "err", err)
		}
	}, nil
}

// next returns one test job and the func to call when its handler has
// returned (it gives the repository's slot back), or no job after waiting
// up to PollWait for a publication.
func (f *fairTests) next(ctx context.Context) (jetstream.Msg, func(), error) {
	callCtx, cancel := f.q.callContext(ctx)
	shares, err := readShares(callCtx, f.q.js, f.q.opts.Stream, f.q.running, f.limits)
	cancel()
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	for i := range shares {
		shares[i].LastServed = f.lastServed[shares[i].Repo]
	}
	for _, s := range FairOrder(shares) {
		if until, ok := f.empty[s.Repo]; ok && now.Before(until) {
			continue
		}
		msg, done, err := f.take(ctx, s)
		if err != nil {
			return nil, nil, err
		}
		if msg != nil {
			f.lastServed[s.Repo] = now
			return msg, done, nil
		}
		f.empty[s.Repo] = now.Add(f.q.opts.PollWait)
	}
	t := time.NewTimer(f.q.opts.PollWait)
	defer t.Stop()
	select {
	case <-f.wake:
		clear(f.empty)
	case <-t.C:
	case <-ctx.Done():
	}
	return nil, nil, nil
}

// take fetches one job of s.Repo if one is deliverable now. A capped
// repository's slot is claimed first and given back when there is no job,
// so two workers never exceed the cap; an uncapped one's is recorded
// after the fetch, saving two calls per repository with nothing to give.
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
		id := strconv.FormatUint(rand.Uint64(), 36)
		return msg, f.hold(ctx, s.Repo, id, false), nil
	}
	for i := range s.Limit.MaxRunning {
		release := f.hold(ctx, s.Repo, strconv.Itoa(i), true)
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
	return nil, nil, nil // the cap filled up since shares were read
}

// probeWait is how long a look at one repository's consumer waits for a
// message. A request that does not wait (NoWait) has no expiry, and one
// to a consumer created again under the same name has been seen to go
// unanswered for good; a short expiry always ends it, and costs its
// length only for a repository with nothing deliverable, which is then
// skipped until the next publication or PollWait.
const probeWait = 50 * time.Millisecond

// fetchNow takes one message if r's consumer cons has one deliverable
// now. When it gets none it forgets cons, so that the next look ensures
// the consumer again (one call, at most once per PollWait or publication
// per repository): a consumer an operator deleted is created again, which
// matters as nats-server 2.9 answers a request to a deleted consumer as
// if it had nothing to give.
func (f *fairTests) fetchNow(r Repo, cons jetstream.Consumer) (jetstream.Msg, error) {
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(min(probeWait, f.q.opts.PollWait)))
	if err != nil {
		f.forget(r)
		return nil, fmt.Errorf("requesting a message of %s: %w", r.FullName(), err)
	}
	var got jetstream.Msg
	for msg := range batch.Messages() {
		got = msg
	}
	if got != nil {
		return got, nil
	}
	f.forget(r)
	if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, jetstream.ErrNoMessages) {
		return nil, fmt.Errorf("waiting for a message of %s: %w", r.FullName(), err)
	}
	return nil, nil
}

func (f *fairTests) forget(r Repo) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.consumers, r)
}

// hold writes r's slot key id and keeps it fresh until the returned func
// is called, which deletes it. With exclusive, the key is created only if
// no one holds it, and hold returns nil when someone does. A failed write
// of an uncapped repository's key only skews the counts a little and is
// logged; a capped one's that fails for another reason than a holder is
// taken as held, as a cap must not be passed on a guess.
func (f *fairTests) hold(ctx context.Context, r Repo, id string, exclusive bool) func() {
	kv, key := f.q.running, holdKey(r, id)
	data, err := json.Marshal(holdRecord{Since: time.Now().UTC()})
	if err != nil {
		panic(err) // a struct of a time cannot fail to encode
	}
	var rev uint64
	if exclusive {
		rev, err = kv.Create(ctx, key, data)
		if err != nil {
			if !errors.Is(err, jetstream.ErrKeyExists) {
				f.q.log.Warn("claiming a slot of a capped repository", "repo", r.FullName(), "key", key, "err", err)
			}
			return nil
		}
	} else if rev, err = kv.Put(ctx, key, data); err != nil {
		f.q.log.Warn("recording a slot held", "repo", r.FullName(), "key", key, "err", err)
	}
	stop := keepFresh(ctx, func(ctx context.Context) error {
		next, err := kv.Update(ctx, key, data, rev)
		if err == nil {
			rev = next
		}
		return err
	}, func(err error) {
		f.q.log.Warn("refreshing a slot held", "repo", r.FullName(), "key", key, "err", err)
	})
	return func() {
		stop()
		ctx, cancel := f.q.callContext(context.WithoutCancel(ctx))
		defer cancel()
		if err := kv.Delete(ctx, key, jetstream.LastRevision(rev)); err != nil {
			f.q.log.Warn("giving a slot back; it expires by itself", "repo", r.FullName(), "key", key, "err", err)
		}
	}
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

// heldSlots counts the hold keys of each repository in kv.
func heldSlots(ctx context.Context, kv jetstream.KeyValue) (map[Repo]int, error) {
	out := map[Repo]int{}
	w, err := kv.Watch(ctx, holdPrefix+">", jetstream.IgnoreDeletes(), jetstream.MetaOnly())
	if err != nil {
		return nil, fmt.Errorf("counting slots held: %w", err)
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("counting slots held: %w", ctx.Err())
		case e := <-w.Updates():
			if e == nil {
				return out, nil
			}
			if r, ok := repoOfHoldKey(e.Key()); ok {
				out[r]++
			}
		}
	}
}
