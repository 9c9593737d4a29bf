package events

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Board reads what is queued and running, for operators' listings and
// metrics. It creates and changes nothing, so it may point at a server no
// worker has set up yet. Safe for concurrent use.
type Board struct {
	js   jetstream.JetStream
	opts Options
}

// NewBoard reads the stream, consumers and buckets opts names (defaults
// applied) through nc, which the caller keeps.
func NewBoard(nc *nats.Conn, opts Options) (*Board, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(opts.Timeout))
	if err != nil {
		return nil, fmt.Errorf("opening JetStream: %w", err)
	}
	return &Board{js: js, opts: opts}, nil
}

// Board reads the Bus's own stream and buckets on its connection.
func (b *Bus) Board() *Board { return &Board{js: b.js, opts: b.opts} }

// ConsumerBacklog is one durable consumer's share of the queue.
type ConsumerBacklog struct {
	Consumer string `json:"consumer"`
	// Pending messages are stored and not yet delivered to any worker.
	Pending uint64 `json:"pending"`
	// AckPending messages are delivered and not yet acknowledged: being
	// handled, or handed back to wait (a retry's NotBefore).
	AckPending int `json:"ack_pending"`
	// Redelivered counts the AckPending messages delivered more than once.
	Redelivered int `json:"redelivered"`
}

// Backlog reads handle_pull's and the test jobs' backlog from the server,
// the per-repository test consumers added up under TestConsumer's name; a
// consumer no worker has created yet counts as empty, and the test jobs
// no worker has taken count as waiting whether or not their repository's
// consumer exists yet.
func (b *Board) Backlog(ctx context.Context) ([]ConsumerBacklog, error) {
	pulls := ConsumerBacklog{Consumer: PullConsumer}
	info, err := b.consumerInfo(ctx, PullConsumer)
	if err != nil {
		return nil, err
	}
	if info != nil {
		pulls.Pending, pulls.AckPending, pulls.Redelivered = info.NumPending, info.NumAckPending, info.NumRedelivered
	}
	// A repository's consumer is created when a worker first looks at
	// its jobs, so the waiting jobs are counted from the stream: every
	// stored job is either delivered and not acked, or waiting.
	tests := ConsumerBacklog{Consumer: TestConsumer}
	err = b.eachTestConsumer(ctx, func(info *jetstream.ConsumerInfo) {
		tests.AckPending += info.NumAckPending
		tests.Redelivered += info.NumRedelivered
	})
	if err != nil {
		return nil, err
	}
	stored, err := storedTests(ctx, b.js, b.opts.Stream)
	if err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, err
	}
	var total uint64
	for _, n := range stored {
		total += n
	}
	tests.Pending = total - min(total, uint64(tests.AckPending))
	return []ConsumerBacklog{pulls, tests}, nil
}

// eachTestConsumer calls fn with the state of every consumer of test jobs:
// the per-repository ones and an earlier version's catch-all.
func (b *Board) eachTestConsumer(ctx context.Context, fn func(*jetstream.ConsumerInfo)) error {
	ctx, cancel := context.WithTimeout(ctx, b.opts.Timeout)
	defer cancel()
	stream, err := b.js.Stream(ctx, b.opts.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading stream %s: %w", b.opts.Stream, err)
	}
	list := stream.ListConsumers(ctx)
	for info := range list.Info() {
		if info.Name == TestConsumer || strings.HasPrefix(info.Name, TestConsumer+"_") {
			fn(info)
		}
	}
	if err := list.Err(); err != nil {
		return fmt.Errorf("listing consumers of %s: %w", b.opts.Stream, err)
	}
	return nil
}

// Shares is every repository with stored test jobs, with the slots it
// holds on the whole fleet and, under limits (the workers'), its place in
// the order in which a free slot serves them (FairOrder; 0: at its cap,
// or nothing to start). It is ordered by place, those without one last.
func (b *Board) Shares(ctx context.Context, limits RepoLimits) ([]RepoShare, error) {
	ctx, cancel := context.WithTimeout(ctx, b.opts.Timeout)
	defer cancel()
	kv, err := b.js.KeyValue(ctx, b.opts.RunningBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, nil // no worker has started: nothing is held or queued for tests
	}
	if err != nil {
		return nil, fmt.Errorf("opening bucket %s: %w", b.opts.RunningBucket, err)
	}
	shares, err := readShares(ctx, b.js, b.opts.Stream, kv, limits)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	places := map[Repo]int{}
	for _, sh := range FairOrder(shares) {
		places[sh.Repo] = sh.Place
	}
	for i := range shares {
		shares[i].Place = places[shares[i].Repo]
	}
	slices.SortFunc(shares, func(a, c RepoShare) int {
		return cmp.Or(cmp.Compare(placeless(a), placeless(c)), cmp.Compare(a.Place, c.Place),
			cmp.Compare(a.Repo.Owner, c.Repo.Owner), cmp.Compare(a.Repo.Name, c.Repo.Name))
	})
	return shares, nil
}

// placeless is 1 for a share without a place, which sorts after the rest.
func placeless(s RepoShare) int {
	if s.Place == 0 {
		return 1
	}
	return 0
}

// consumerInfo is nil, without error, for a consumer or stream that does
// not exist.
func (b *Board) consumerInfo(ctx context.Context, name string) (*jetstream.ConsumerInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, b.opts.Timeout)
	defer cancel()
	c, err := b.js.Consumer(ctx, b.opts.Stream, name)
	if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading consumer %s: %w", name, err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading consumer %s: %w", name, err)
	}
	return info, nil
}

// JobState is where one queued job stands.
type JobState string

// The states of Entry.
const (
	// Queued: stored, not yet delivered to a worker.
	Queued JobState = "queued"
	// Preparing: a pull event a worker is handling (mirror, checkout,
	// .yci.py), or one handed back after a failure.
	Preparing JobState = "preparing"
	// Starting: a test delivered to a worker that has not started it yet
	// (its checkout), or one handed back to the queue.
	Starting JobState = "starting"
	// Running: a worker runs the attempt (see RunningAttempt).
	Running JobState = "running"
	// RetryWait: an attempt waiting for its NotBefore.
	RetryWait JobState = "retry-wait"
	// Reporting: an attempt that ran, whose final status is still owed.
	Reporting JobState = "reporting"
)

// Entry is one job of the queue, or one running attempt.
type Entry struct {
	State   JobState `json:"state"`
	Repo    Repo     `json:"repo"`
	Number  int      `json:"number"`
	HeadSHA string   `json:"head_sha"`
	// Build, Test and Attempt are zero for a pull event.
	Build   int    `json:"build,omitempty"`
	Test    string `json:"test,omitempty"`
	Attempt int    `json:"attempt,omitempty"`
	// Worker runs the attempt (Running only).
	Worker string `json:"worker,omitempty"`
	// Since is when the job was stored, or the attempt started.
	Since     time.Time `json:"since"`
	NotBefore time.Time `json:"not_before,omitzero"`
}

// Snapshot is the queue and the running attempts at one moment.
type Snapshot struct {
	Taken time.Time `json:"taken"`
	// Entries are ordered by repository, pull request, build (a pull
	// event first), test and attempt.
	Entries []Entry `json:"entries"`
	// Truncated says the queue held more than the limit asked for.
	Truncated bool `json:"truncated,omitempty"`
}

// Snapshot lists at most limit jobs of the stream (pull events and test
// attempts) with their state, and every running attempt. It reads the
// stream one message at a time, so it costs one request per job.
func (b *Board) Snapshot(ctx context.Context, limit int) (Snapshot, error) {
	snap := Snapshot{Taken: time.Now().UTC()}
	stream, err := b.js.Stream(ctx, b.opts.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return snap, nil
	}
	if err != nil {
		return snap, fmt.Errorf("reading stream %s: %w", b.opts.Stream, err)
	}
	running, err := b.runningAttempts(ctx)
	if err != nil {
		return snap, err
	}
	// The last stream sequence each consumer delivered, by its filter.
	delivered := map[string]uint64{}
	info, err := b.consumerInfo(ctx, PullConsumer)
	if err != nil {
		return snap, err
	}
	if info != nil {
		delivered[PullSubjects] = info.Delivered.Stream
	}
	err = b.eachTestConsumer(ctx, func(info *jetstream.ConsumerInfo) {
		delivered[info.Config.FilterSubject] = info.Delivered.Stream
	})
	if err != nil {
		return snap, err
	}
	first := stream.CachedInfo().State.FirstSeq
	pulls, more, err := readJobs(ctx, stream, PullSubjects, first, limit, func(m *jetstream.RawStreamMsg) (Entry, bool) {
		return pullEntry(m, delivered[PullSubjects])
	})
	if err != nil {
		return snap, err
	}
	tests, moreTests, err := readJobs(ctx, stream, TestSubjects, first, limit-len(pulls), func(m *jetstream.RawStreamMsg) (Entry, bool) {
		return testEntry(m, max(delivered[m.Subject], delivered[TestSubjects]), running, snap.Taken)
	})
	if err != nil {
		return snap, err
	}
	snap.Entries = append(pulls, tests...)
	// Attempts whose message is not among those read (past the limit).
	for _, a := range running {
		snap.Entries = append(snap.Entries, runningEntry(a))
	}
	snap.Truncated = more || moreTests
	slices.SortFunc(snap.Entries, compareEntries)
	return snap, nil
}

// readJobs reads the stream's messages on subject from seq on, at most
// limit, through entry; more says messages were left unread.
func readJobs(ctx context.Context, stream jetstream.Stream, subject string, seq uint64, limit int,
	entry func(*jetstream.RawStreamMsg) (Entry, bool)) (out []Entry, more bool, err error) {
	for {
		m, err := stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return out, false, nil
		}
		if err != nil {
			return out, false, fmt.Errorf("reading %s from sequence %d: %w", subject, seq, err)
		}
		if len(out) >= limit {
			return out, true, nil
		}
		if e, ok := entry(m); ok {
			out = append(out, e)
		}
		seq = m.Sequence + 1
	}
}

func pullEntry(m *jetstream.RawStreamMsg, delivered uint64) (Entry, bool) {
	ev, err := decode[PullEvent](m.Data)
	if err != nil {
		return Entry{}, false
	}
	state := Queued
	if m.Sequence <= delivered {
		state = Preparing
	}
	return Entry{State: state, Repo: ev.Repo, Number: ev.Number, HeadSHA: ev.HeadSHA, Since: m.Time.UTC()}, true
}

// testEntry classifies one test message, taking its running record out of
// running when there is one.
func testEntry(m *jetstream.RawStreamMsg, delivered uint64, running map[string]RunningAttempt, now time.Time) (Entry, bool) {
	job, err := decode[TestJob](m.Data)
	if err != nil {
		return Entry{}, false
	}
	key := runningKey(job.Repo, job.Number, job.Build, job.Test.Name, job.Attempt)
	if a, ok := running[key]; ok && job.Outcome == nil {
		delete(running, key)
		return runningEntry(a), true
	}
	e := Entry{Repo: job.Repo, Number: job.Number, HeadSHA: job.HeadSHA, Build: job.Build, Test: job.Test.Name,
		Attempt: job.Attempt, Since: m.Time.UTC(), NotBefore: job.NotBefore}
	switch {
	case job.Outcome != nil:
		e.State = Reporting
	case job.NotBefore.After(now):
		e.State = RetryWait
	case m.Sequence <= delivered:
		e.State = Starting
	default:
		e.State = Queued
	}
	return e, true
}

func runningEntry(a RunningAttempt) Entry {
	return Entry{State: Running, Repo: a.Repo, Number: a.Number, HeadSHA: a.HeadSHA, Build: a.Build,
		Test: a.Test, Attempt: a.Attempt, Worker: a.Worker, Since: a.Started}
}

func compareEntries(a, b Entry) int {
	return cmp.Or(
		cmp.Compare(a.Repo.Owner, b.Repo.Owner), cmp.Compare(a.Repo.Name, b.Repo.Name),
		cmp.Compare(a.Number, b.Number), cmp.Compare(a.Build, b.Build),
		cmp.Compare(a.Test, b.Test), cmp.Compare(a.Attempt, b.Attempt),
		a.Since.Compare(b.Since),
	)
}

// runningAttempts reads every running-attempt record, by key; none when
// the bucket does not exist yet.
// Running returns every test attempt a worker runs now, as the workers
// recorded it (see MarkRunning), in key order; none before any worker
// made the bucket. An attempt whose worker died is listed until its entry
// expires (RunningTTL).
func (b *Board) Running(ctx context.Context) ([]RunningAttempt, error) {
	m, err := b.runningAttempts(ctx)
	if err != nil {
		return nil, err
	}
	keys := slices.Sorted(maps.Keys(m))
	out := make([]RunningAttempt, len(keys))
	for i, k := range keys {
		out[i] = m[k]
	}
	return out, nil
}

func (b *Board) runningAttempts(ctx context.Context) (map[string]RunningAttempt, error) {
	out := map[string]RunningAttempt{}
	kv, err := b.js.KeyValue(ctx, b.opts.RunningBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("opening bucket %s: %w", b.opts.RunningBucket, err)
	}
	w, err := kv.Watch(ctx, runPrefix+">", jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("reading bucket %s: %w", b.opts.RunningBucket, err)
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("reading bucket %s: %w", b.opts.RunningBucket, ctx.Err())
		case e := <-w.Updates():
			if e == nil { // every current entry has been read
				return out, nil
			}
			var a RunningAttempt
			if err := json.Unmarshal(e.Value(), &a); err != nil {
				continue // not ours to judge; it expires
			}
			out[e.Key()] = a
		}
	}
}
