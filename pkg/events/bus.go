package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Names of the JetStream objects YourCI uses, shared by every process on
// every box.
const (
	DefaultStream = "YCI"
	DefaultBucket = "yci_builds"
	// DefaultRecordBucket holds the build records (see BuildRecord), apart
	// from DefaultBucket because its entries expire (RecordTTL) while
	// build numbers must not.
	DefaultRecordBucket = "yci_build_records"
	// PullConsumer is the durable consumer every worker shares, so each
	// message is handled by one worker at a time. Test jobs have one such
	// consumer per repository (TestConsumerFor) and TestConsumer, the
	// catch-all of earlier versions, is removed on start (its queued jobs
	// then go to the per-repository consumers); Board.Backlog reports the
	// per-repository consumers together under its name.
	PullConsumer = "handle_pull"
	TestConsumer = "handle_test"
)

// Defaults for Options; the comment on each says why.
const (
	// DefaultAckWait: a worker keeps a running job alive with InProgress
	// every AckWait/3 (KeepAlive), so a live worker's job never expires,
	// however slow the test; a crashed worker's job is delivered again
	// between 2/3 AckWait and AckWait after the crash (13-20 s). Twenty
	// seconds lets two keep-alives in a row be lost (a short NATS
	// reconnect, a loaded box) before a slow test is redelivered; a
	// longer outage may run a test twice, which costs time, never a
	// wrong status (the later run reports the same commit). Changing it
	// updates the durable consumers in place (nats-server 2.9.10 allows
	// it; see TestAckWaitChangeUpdatesConsumers).
	DefaultAckWait = 20 * time.Second
	// DefaultMaxDeliver: a delivery is used up by a worker crash, a
	// shutdown hand-back or one wait for NotBefore; ten lets a job live
	// through several rolling restarts, while a message that crashes
	// every worker stops after ten tries and reaches the handler marked
	// LastChance, so it ends as an error status.
	DefaultMaxDeliver = 10
	// DefaultMaxAckPending: jobs waiting for NotBefore (retry waits of
	// many minutes) are pending acknowledgement the whole time, and the
	// server stops delivering once this many are pending. Worker slots
	// bound running jobs on their own, so this only needs to be far above
	// the number of retries that can wait at once.
	DefaultMaxAckPending = 20000
	// DefaultMaxNakDelay: the longest a job waits in one delayed Nak;
	// longer waits take several steps, each of which costs a delivery,
	// which is why a job near MaxDeliver is re-published instead. An hour
	// covers ordinary retry waits in one step.
	DefaultMaxNakDelay = time.Hour
	// DefaultHandBackDelay: a panicking handler's job comes back after
	// this, so a deterministic crash does not spin through MaxDeliver in
	// milliseconds and a transient one is retried soon.
	DefaultHandBackDelay = 5 * time.Second
	// DefaultPollWait: how long a pull or command slot waits for a
	// message in one pull request (one request per PollWait on an idle
	// worker), and how long a stopping worker may wait for that request
	// to end. Test slots wait for notifications instead (see fairTests)
	// and only check the connection for a reconnect this often, locally.
	DefaultPollWait = time.Second
	// DefaultTimeout bounds a JetStream API call that is not repeated
	// through a leader election (a try of a setup step, the board's
	// reads, a scan of the queue or the records, a lease), when the
	// caller gives no earlier deadline.
	DefaultTimeout = 10 * time.Second
	// DefaultElectionWait bounds the tries, together, of a call repeated
	// while a NATS cluster elects a leader (publish, ack, key-value; see
	// retry) when the caller gives no earlier deadline. Debian's
	// nats-server 2.9 lets a follower wait 4 to 9 s before it stands, a
	// split vote starts another round, and a loaded box is slower still:
	// a claim made during one election gave up after 10 s (issue 17).
	// Thirty seconds is three rounds; a worker's handler waits rather
	// than hand its job back, and AckWait is kept by its progress beat.
	DefaultElectionWait = 30 * time.Second
	// DuplicateWindow is how long the stream remembers message ids;
	// JetStream's own default, kept explicit because de-duplication of
	// webhook redeliveries, and of a publish's tries during a leader
	// election, depends on it (Validate keeps ElectionWait below it).
	DuplicateWindow = 2 * time.Minute
	// DefaultRecordTTL: a build record is dropped this long after its last
	// change (the bucket's MaxAge, which nats-server 2.9 has), so records
	// are never kept forever. Thirty days outlives the workspace cleanup
	// that deploy/cron suggests (14 days), so a page never lacks the record
	// of a build still on disk, and keeps a month of retries for the
	// repository page's flaky-test table.
	DefaultRecordTTL = 30 * 24 * time.Hour
)

// Options configure a Bus. The zero value gives the production settings.
type Options struct {
	// Stream and Bucket name the stream and key-value bucket; tests may
	// use their own. Defaults: DefaultStream, DefaultBucket.
	Stream string
	Bucket string
	// RecordBucket names the bucket of build records; default
	// DefaultRecordBucket. RecordTTL is how long a record lives after its
	// last change; default DefaultRecordTTL.
	RecordBucket string
	RecordTTL    time.Duration
	// RunningBucket holds the running-attempt records (MarkRunning);
	// default DefaultRunningBucket.
	RunningBucket string
	// Memory keeps the stream and bucket in memory instead of files
	// (tests only: a restart loses every queued job).
	Memory bool
	// Replicas for the stream and bucket on a NATS cluster; default 1.
	Replicas int

	AckWait       time.Duration // default DefaultAckWait
	MaxDeliver    int           // default DefaultMaxDeliver; at least 3
	MaxAckPending int           // default DefaultMaxAckPending
	MaxNakDelay   time.Duration // default DefaultMaxNakDelay
	HandBackDelay time.Duration // default DefaultHandBackDelay
	PollWait      time.Duration // default DefaultPollWait
	Timeout       time.Duration // default DefaultTimeout
	ElectionWait  time.Duration // default DefaultElectionWait

	// Grace is how long handlers run on after the context given to
	// ConsumePulls or ConsumeTests is cancelled, before their own context
	// is cancelled and they must hand their message back. Default 0.
	Grace time.Duration

	// PublishOnly leaves the consumers alone: the receiver and reconcile
	// only publish, and the consumers' settings (AckWait above all) are
	// the workers' to decide. ConsumePulls and ConsumeTests then fail.
	PublishOnly bool

	// RepoLimits cap and weigh each repository's share of test slots
	// (ConsumeTests); every worker must be given the same. The zero value
	// caps nothing and weighs all alike.
	RepoLimits RepoLimits

	// Logger receives what the Bus handles itself (undecodable messages,
	// panics, requeues); default slog.Default().
	Logger *slog.Logger

	// dueEarly is taken off every due announcement's delay: zero, except
	// in tests that play a server slower than its announcements
	// (export_test.go). Fixed at New, like every option, it needs no lock.
	dueEarly time.Duration
}

func (o Options) withDefaults() Options {
	setDefault(&o.Stream, DefaultStream)
	setDefault(&o.Bucket, DefaultBucket)
	setDefault(&o.RecordBucket, DefaultRecordBucket)
	setDefault(&o.RecordTTL, DefaultRecordTTL)
	setDefault(&o.RunningBucket, DefaultRunningBucket)
	setDefault(&o.Replicas, 1)
	setDefault(&o.AckWait, DefaultAckWait)
	setDefault(&o.MaxDeliver, DefaultMaxDeliver)
	setDefault(&o.MaxAckPending, DefaultMaxAckPending)
	setDefault(&o.MaxNakDelay, DefaultMaxNakDelay)
	setDefault(&o.HandBackDelay, DefaultHandBackDelay)
	setDefault(&o.PollWait, DefaultPollWait)
	setDefault(&o.Timeout, DefaultTimeout)
	setDefault(&o.ElectionWait, DefaultElectionWait)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// Validate reports every problem with the options (after defaults are
// applied) at once.
func (o Options) Validate() error {
	o = o.withDefaults()
	var errs []error
	durations := map[string]time.Duration{
		"AckWait": o.AckWait, "MaxNakDelay": o.MaxNakDelay, "HandBackDelay": o.HandBackDelay,
		"PollWait": o.PollWait, "Timeout": o.Timeout, "ElectionWait": o.ElectionWait, "RecordTTL": o.RecordTTL,
	}
	for name, d := range durations {
		if d < 0 {
			errs = append(errs, fmt.Errorf("events: %s %s is negative", name, d))
		}
	}
	// A publish is retried through a leader election until ElectionWait;
	// the stream recognises a repeat only within DuplicateWindow.
	if o.ElectionWait >= DuplicateWindow {
		errs = append(errs, fmt.Errorf("events: ElectionWait %s is not below the duplicate window %s: a retried publish could be stored twice", o.ElectionWait, DuplicateWindow))
	}
	if o.Grace < 0 {
		errs = append(errs, fmt.Errorf("events: Grace %s is negative", o.Grace))
	}
	// A job waiting for NotBefore takes its first delayed Nak at
	// delivery 1 and is re-published from delivery MaxDeliver-1 on; with
	// fewer than 3 it would be re-published on every delivery.
	if o.MaxDeliver < 3 {
		errs = append(errs, fmt.Errorf("events: MaxDeliver %d is below 3", o.MaxDeliver))
	}
	if o.MaxAckPending < 1 {
		errs = append(errs, fmt.Errorf("events: MaxAckPending %d is below 1", o.MaxAckPending))
	}
	if o.Replicas < 1 || o.Replicas > 5 {
		errs = append(errs, fmt.Errorf("events: Replicas %d is not between 1 and 5", o.Replicas))
	}
	return errors.Join(errs...)
}

// Bus is YourCI's connection to JetStream. It owns the connection when
// Connect opened it, creates or updates the stream, its consumers and the
// key-value buckets, and hands out the parts that use them: Queue (jobs),
// Registry (build numbers, approvals, re-runs), Records (build records),
// Attempts (attempts running now), Heads (head announcements) and Board (the
// queue as pages show it). All methods may be called concurrently. Half
// its methods are the named steps of setting the stream and buckets up
// (setup.go), called once by New; the rest hand out the parts.
type Bus struct {
	*store
	ownConn bool
	// closed is closed when a connection Connect opened has closed.
	closed chan struct{}
}

// New sets up the stream, both consumers and the key-value bucket on nc,
// creating or updating them to match opts (whichever process starts first
// creates them; concurrent starts are safe), and returns a Bus using them.
// The caller keeps ownership of nc.
func New(ctx context.Context, nc *nats.Conn, opts Options) (*Bus, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(opts.Timeout))
	if err != nil {
		return nil, fmt.Errorf("opening JetStream: %w", err)
	}
	b := &Bus{store: &store{opts: opts, nc: nc, js: js, log: opts.Logger}}
	if err := b.setup(ctx); err != nil {
		return nil, err
	}
	return b, nil
}

// Connect dials url with reconnection forever (a restarted NATS server is
// waited for, not fatal) and returns a Bus that owns the connection; Close
// releases it. name identifies the process in the server's monitoring.
func Connect(ctx context.Context, url, name string, opts Options) (*Bus, error) {
	closed := make(chan struct{})
	nc, err := nats.Connect(url,
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
		nats.Timeout(DefaultTimeout),
		nats.DrainTimeout(DefaultTimeout),
		nats.ClosedHandler(func(*nats.Conn) { close(closed) }),
	)
	if err != nil {
		return nil, fmt.Errorf("connecting to NATS at %s: %w", Redact(url), err)
	}
	b, err := New(ctx, nc, opts)
	if err != nil {
		nc.Close()
		return nil, err
	}
	b.ownConn = true
	b.closed = closed
	return b, nil
}

// Close drains and closes the connection if Connect opened it, and returns
// once the drain is over: the acks and hand-backs sent last (a worker
// stopping) have then reached the server, not just a socket buffer. It does
// not wait for consumers: cancel their contexts and let them return first.
func (b *Bus) Close() error {
	if !b.ownConn {
		return nil
	}
	if err := b.nc.Flush(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		b.log.Warn("flushing NATS connection before closing", "err", err)
	}
	if err := b.nc.Drain(); err != nil {
		return fmt.Errorf("draining NATS connection: %w", err)
	}
	select {
	case <-b.closed:
		return nil
	case <-time.After(2 * DefaultTimeout):
		b.nc.Close()
		return errors.New("draining NATS connection: timed out")
	}
}

// Options returns the options in effect, defaults applied.
func (b *Bus) Options() Options { return b.opts }
