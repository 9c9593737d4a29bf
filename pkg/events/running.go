package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// DefaultRunningBucket holds one entry per test attempt running now, on
// any box: the stream alone says a job was delivered, not who runs it.
const DefaultRunningBucket = "yci_running"

// Timing of the running-attempt records; the comment on each says why.
const (
	// RunningTTL: an entry its worker stops refreshing (the worker
	// crashed) disappears after this, soon after its job is delivered
	// again (DefaultAckWait); the worker that takes the job over writes
	// the same key with its own name. It is the bucket's MaxAge, the same
	// for every process, so it is a constant rather than an option.
	RunningTTL = 30 * time.Second
	// RunningRefresh: three refreshes per RunningTTL, so one lost write
	// does not make a running attempt vanish from the listing.
	RunningRefresh = RunningTTL / 3
)

// RunningAttempt is one test attempt a worker runs now, as that worker
// recorded it with MarkRunning.
type RunningAttempt struct {
	Repo    Repo      `json:"repo"`
	Number  int       `json:"number"`
	HeadSHA string    `json:"head_sha"`
	Build   int       `json:"build"`
	Test    string    `json:"test"`
	Attempt int       `json:"attempt"`
	Worker  string    `json:"worker"`
	Started time.Time `json:"started"`
}

// RunningAttemptOf is the record of job about to run on worker, started now.
func RunningAttemptOf(job TestJob, worker string, now time.Time) RunningAttempt {
	return RunningAttempt{Repo: job.Repo, Number: job.Number, HeadSHA: job.HeadSHA, Build: job.Build,
		Test: job.Test.Name, Attempt: job.Attempt, Worker: worker, Started: now.UTC()}
}

// runPrefix starts the keys of running attempts; the bucket also holds
// the slots repositories hold (holdPrefix).
const runPrefix = "run."

// runningKey is run.<owner>.<repo>.<pull>.<build>.<test>.<attempt>, names
// encoded: one key per attempt, so two attempts never share an entry.
func runningKey(repo Repo, pull, build int, test string, attempt int) string {
	return runPrefix + EncodeToken(repo.Owner) + "." + EncodeToken(repo.Name) + "." + strconv.Itoa(pull) + "." +
		strconv.Itoa(build) + "." + EncodeToken(test) + "." + strconv.Itoa(attempt)
}

func (a RunningAttempt) key() string { return runningKey(a.Repo, a.Number, a.Build, a.Test, a.Attempt) }

// MarkRunning records a as running and keeps the record fresh every
// RunningRefresh until done is called, which removes it. A record whose
// worker dies expires after RunningTTL. Failing to write the record never
// stops a test: the error is returned for the caller to log, and done is
// usable either way. It fails on a publish-only Bus.
func (at *Attempts) MarkRunning(ctx context.Context, a RunningAttempt) (done func(), err error) {
	if at.running == nil {
		return func() {}, errors.New("recording a running attempt: the bus was set up to publish only")
	}
	data, err := json.Marshal(a)
	if err != nil {
		return func() {}, fmt.Errorf("encoding running attempt: %w", err)
	}
	key := a.key()
	put := func(ctx context.Context) error {
		_, err := at.running.Put(ctx, key, data)
		return err
	}
	err = put(ctx)
	if err != nil {
		err = fmt.Errorf("recording %s as running: %w", key, err)
	}
	stop := keepFresh(ctx, put, func(err error) {
		at.log.Warn("refreshing running attempt", "key", key, "err", err)
	})
	return func() {
		stop()
		if err := at.running.Delete(context.WithoutCancel(ctx), key); err != nil {
			at.log.Warn("removing running attempt; it expires by itself", "key", key, "err", err)
		}
	}, err
}

// keepFresh calls refresh every RunningRefresh, telling failed of each
// error, until the stop it returns is called; stop waits for a call under
// way to end. ctx's values go along but not its cancellation: a key with a
// TTL stays fresh until its holder says it is done with it.
func keepFresh(ctx context.Context, refresh func(context.Context) error, failed func(error)) (stop func()) {
	refreshCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(RunningRefresh)
		defer t.Stop()
		for {
			select {
			case <-refreshCtx.Done():
				return
			case <-t.C:
			}
			if err := refresh(refreshCtx); err != nil && refreshCtx.Err() == nil {
				failed(err)
			}
		}
	}()
	return func() {
		cancel()
		<-finished
	}
}
