package reconcile

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/yourci/yourci/pkg/events"
)

// maxScanned bounds one scan of the stream. A backlog larger than this is
// not read to the end; the jobs not read are unknown, and Jobs.Complete
// says so, so callers treat everything as possibly live.
const maxScanned = 200000

// Backlog tells which jobs the queue holds. The stream keeps a job until a
// worker acknowledges it as done, so a job waiting, running, or waiting
// for its retry is there, and one that is done or was lost is not: this is
// the sweep's definition of a live job, with the attempts a worker records
// as running (see StreamBacklog.WithRunning).
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

// QueueReader reads the queued messages of a subject without consuming
// them, oldest first, until fn returns false; events.Queue has it.
type QueueReader interface {
	Queued(ctx context.Context, subject string, fn func(subject string, data []byte) bool) error
}

// RunningLister lists the test attempts workers run now; events.Board has
// it.
type RunningLister interface {
	Running(ctx context.Context) ([]events.RunningAttempt, error)
}

// StreamBacklog reads the jobs from the JetStream stream itself, by
// subject, without consuming them.
type StreamBacklog struct {
	queue   QueueReader
	running RunningLister
}

// WithRunning makes b count the attempts running lists as live too: an
// attempt still running on a box whose message left the stream (purged by
// hand) must not be rebuilt beside itself. It returns b.
func (b *StreamBacklog) WithRunning(running RunningLister) *StreamBacklog {
	b.running = running
	return b
}

// NewStreamBacklog reads the stream through queue.
func NewStreamBacklog(queue QueueReader) *StreamBacklog {
	return &StreamBacklog{queue: queue}
}

// Jobs reads the messages of repo (or of all repositories) one by one, at
// most maxScanned per subject (Complete is false past that). Its cost is
// one request per queued message, and it is only asked for repositories
// where something needs deciding.
func (b *StreamBacklog) Jobs(ctx context.Context, repo events.Repo) (*Jobs, error) {
	jobs := newJobs()
	subjects := []string{events.PullSubjects, events.TestSubjects}
	if repo != (events.Repo{}) {
		subjects = []string{events.PullSubject(repo), events.TestSubject(repo)}
	}
	for _, subject := range subjects {
		n := 0
		err := b.queue.Queued(ctx, subject, func(subject string, data []byte) bool {
			if n == maxScanned {
				jobs.Complete = false
				return false
			}
			n++
			jobs.add(subject, data)
			return true
		})
		if err != nil {
			return nil, err
		}
	}
	if b.running == nil {
		return jobs, nil
	}
	running, err := b.running.Running(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing running attempts: %w", err)
	}
	for _, a := range running {
		if repo == (events.Repo{}) || a.Repo == repo {
			jobs.live[headKey{a.Repo, a.Number, a.HeadSHA}] = true
			jobs.builds[buildKey{a.Repo, a.Number, a.Build}] = true
		}
	}
	return jobs, nil
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
