package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/yourci/yourci/pkg/events"
)

// maxScanned bounds one scan of the stream. A backlog larger than this is
// not read to the end; the jobs not read are unknown, and Jobs.Complete
// says so, so callers treat everything as possibly live.
const maxScanned = 200000

// Backlog tells which jobs the queue holds. The stream keeps a job until a
// worker acknowledges it as done, so a job waiting, running, or waiting
// for its retry is there, and one that is done or was lost is not: this is
// the sweep's definition of a live job.
type Backlog interface {
	// Jobs returns the jobs queued for repo, or for every repository when
	// repo is the zero Repo.
	Jobs(ctx context.Context, repo events.Repo) (*Jobs, error)
}

// Jobs is a snapshot of queued jobs.
type Jobs struct {
	// Complete is false when the scan stopped before the end of the
	// stream; every question then answers "yes, maybe live".
	Complete bool
	heads    map[headKey]bool // a PullEvent for the head
	live     map[headKey]bool // a PullEvent or a TestJob for the head
	builds   map[buildKey]bool
}

type headKey struct {
	repo events.Repo
	pull int
	sha  string
}

type buildKey struct {
	repo  events.Repo
	pull  int
	build int
}

func newJobs() *Jobs {
	return &Jobs{Complete: true, heads: map[headKey]bool{}, live: map[headKey]bool{}, builds: map[buildKey]bool{}}
}

// PullQueued reports whether a PullEvent for this head commit is queued.
func (j *Jobs) PullQueued(repo events.Repo, pull int, sha string) bool {
	return !j.Complete || j.heads[headKey{repo, pull, sha}]
}

// HeadLive reports whether any job (its PullEvent or a test) for this head
// commit is queued or running.
func (j *Jobs) HeadLive(repo events.Repo, pull int, sha string) bool {
	return !j.Complete || j.live[headKey{repo, pull, sha}]
}

// BuildLive reports whether a test of this build is queued or running.
func (j *Jobs) BuildLive(repo events.Repo, pull, build int) bool {
	return !j.Complete || j.builds[buildKey{repo, pull, build}]
}

// StreamBacklog reads the jobs from the JetStream stream itself, by
// subject, without consuming them: the stream is a work queue, which
// allows no second consumer, so it uses message get with next_by_subj
// (nats-server 2.9 and later).
type StreamBacklog struct {
	js      jetstream.JetStream
	stream  string
	timeout time.Duration
}

// NewStreamBacklog reads the Bus's stream.
func NewStreamBacklog(bus *events.Bus) *StreamBacklog {
	o := bus.Options()
	return &StreamBacklog{js: bus.JetStream(), stream: o.Stream, timeout: o.Timeout}
}

// Jobs scans the messages of repo (or of all repositories) one by one.
// Its cost is one request per queued message, and it is only asked for
// repositories where something needs deciding.
func (b *StreamBacklog) Jobs(ctx context.Context, repo events.Repo) (*Jobs, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*b.timeout)
	defer cancel()
	stream, err := b.js.Stream(ctx, b.stream)
	if err != nil {
		return nil, fmt.Errorf("opening stream %s: %w", b.stream, err)
	}
	jobs := newJobs()
	subjects := []string{events.PullSubjects, events.TestSubjects}
	if repo != (events.Repo{}) {
		subjects = []string{events.PullSubject(repo), events.TestSubject(repo)}
	}
	for _, subject := range subjects {
		if err := b.scan(ctx, stream, subject, jobs); err != nil {
			return nil, err
		}
	}
	return jobs, nil
}

func (b *StreamBacklog) scan(ctx context.Context, stream jetstream.Stream, subject string, jobs *Jobs) error {
	var seq uint64 = 1
	for n := 0; ; n++ {
		if n == maxScanned {
			jobs.Complete = false
			return nil
		}
		msg, err := stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading queued jobs on %s: %w", subject, err)
		}
		jobs.add(msg.Subject, msg.Data)
		seq = msg.Sequence + 1
	}
}

// add records one message; one this version cannot read is skipped (the
// workers terminate it).
func (j *Jobs) add(subject string, data []byte) {
	switch {
	case strings.HasPrefix(subject, strings.TrimSuffix(events.PullSubjects, ">")):
		var ev events.PullEvent
		if json.Unmarshal(data, &ev) == nil {
			k := headKey{ev.Repo, ev.Number, ev.HeadSHA}
			j.heads[k], j.live[k] = true, true
		}
	case strings.HasPrefix(subject, strings.TrimSuffix(events.TestSubjects, ">")):
		var job events.TestJob
		if json.Unmarshal(data, &job) == nil {
			j.live[headKey{job.Repo, job.Number, job.HeadSHA}] = true
			j.builds[buildKey{job.Repo, job.Number, job.Build}] = true
		}
	}
}
