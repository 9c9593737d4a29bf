package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrInvalidEvent is returned for an event or job missing what every
// consumer needs (repository, pull number, head sha, ...); publishing it
// would only make a worker terminate it.
var ErrInvalidEvent = errors.New("invalid event")

// PublishPull stores ev (with its version set: versionOf) on the stream and returns once
// JetStream has acknowledged it, so a caller that got nil may tell GitHub the
// webhook was taken. Its message id is ev.MsgID(): the same delivery of the
// same head commit published again within DuplicateWindow is stored once,
// which also makes the tries of a publish repeated during a leader
// election (until ctx's deadline, see retry) one message.
//
// ev.Pull is compacted but not checked again: see PullEvent.encode.
func (q *Queue) PublishPull(ctx context.Context, ev PullEvent) error {
	ev.Version = versionOf(ev.Number)
	if err := ev.validate(); err != nil {
		return err
	}
	data, err := ev.encode()
	if err != nil {
		return fmt.Errorf("encoding message %s: %w", ev.MsgID(), err)
	}
	return q.publishData(ctx, PullSubject(ev.Repo), ev.MsgID(), data)
}

// encode is json.Marshal(e), except that Pull is compacted by a copy that
// skips strings whole (appendCompact) where encoding/json would step
// through every byte with its scanner, and its <, > and & are not escaped:
// the pull request is most of an event's bytes, and a receiver cut it from
// a body it had checked was JSON. Pull must be one JSON object; validate
// checks only its ends.
func (e PullEvent) encode() ([]byte, error) {
	pull := e.Pull
	e.Pull = nil
	data, err := json.Marshal(e)
	if err != nil || len(pull) == 0 {
		return data, err
	}
	const member = `,"pull":`
	out := make([]byte, 0, len(data)+len(member)+len(pull))
	out = append(out, data[:len(data)-1]...) // without its closing '}'
	out = append(out, member...)
	out = appendCompact(out, pull)
	return append(out, '}'), nil
}

// PublishTest stores job (with its version set: versionOf) on the stream and returns once
// JetStream has acknowledged it. Its message id is job.MsgID(): publishing
// the same attempt of the same test twice queues it once.
func (q *Queue) PublishTest(ctx context.Context, job TestJob) error {
	job.Version = versionOf(job.Number)
	if err := job.validate(); err != nil {
		return err
	}
	return q.publish(ctx, TestSubject(job.Repo), job.MsgID(), job)
}

// publish stores v under id and waits for the acknowledgement. On a
// cluster electing the stream's leader it keeps trying (see retry) until
// ctx's deadline or Options.ElectionWait, whichever is first.
func (s *store) publish(ctx context.Context, subject, id string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding message %s: %w", id, err)
	}
	return s.publishData(ctx, subject, id, data)
}

// publishData is publish of a message already encoded.
func (s *store) publishData(ctx context.Context, subject, id string, data []byte) error {
	// Safe to repeat even when an earlier try was stored and only its
	// acknowledgement lost: the stream keeps one message per id within
	// DuplicateWindow, and answers a repeat with the first one's ack.
	err := s.retry(ctx, true, func(ctx context.Context) error {
		_, err := s.js.Publish(ctx, subject, data,
			jetstream.WithMsgID(id),
			jetstream.WithExpectStream(s.opts.Stream),
			// retry paces the tries, for every kind of leaderless error.
			jetstream.WithRetryAttempts(0),
		)
		return err
	})
	if err != nil {
		return fmt.Errorf("publishing %s: %w", id, err)
	}
	return nil
}

// callContext bounds one JetStream call that is not repeated through a
// leader election by Options.Timeout unless ctx already has an earlier
// deadline. Calls that are (publish, ack, every read and write of the
// buckets: see retry) bound themselves by Options.ElectionWait and must
// not be wrapped in it: its shorter bound would end their repeats early,
// as it did around a claim while a loaded cluster elected (issue 17).
func (s *store) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.opts.Timeout)
}

func (e PullEvent) validate() error {
	err := checkBuildKey(e.Repo, e.Number, e.HeadSHA)
	if len(e.Pull) > MaxPullLen {
		err = errors.Join(err, fmt.Errorf("pull request of %d bytes, over %d: %w", len(e.Pull), MaxPullLen, ErrInvalidEvent))
	}
	if n := len(e.Pull); n > 0 && (e.Pull[0] != '{' || e.Pull[n-1] != '}') {
		err = errors.Join(err, fmt.Errorf("pull request is not a JSON object: %w", ErrInvalidEvent))
	}
	return err
}

func (j TestJob) validate() error {
	errs := []error{checkBuildKey(j.Repo, j.Number, j.HeadSHA)}
	if j.Build < 1 {
		errs = append(errs, fmt.Errorf("build %d: %w", j.Build, ErrInvalidEvent))
	}
	if err := ValidateTestName(j.Test.Name); err != nil {
		errs = append(errs, err)
	}
	if j.Attempt < 1 {
		errs = append(errs, fmt.Errorf("attempt %d: %w", j.Attempt, ErrInvalidEvent))
	}
	if j.Rerun < 0 {
		errs = append(errs, fmt.Errorf("rerun %d: %w", j.Rerun, ErrInvalidEvent))
	}
	return errors.Join(errs...)
}
