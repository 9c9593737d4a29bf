package worker

import (
	"errors"
	"fmt"
	"time"

	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/pipeline"
	"github.com/yourci/yourci/pkg/status"
)

// This file holds the test handler's decisions, apart from what carries
// them out (test.go): each is a pure function from the facts the handler
// gathered to a step, so that every branch is tested in memory
// (testplan_test.go) and the real-process tests are left for the wiring.
// A delivery is decided in three places: when it arrives (planTestStart),
// once the head is checked and the copy prepared (planPrepared), and once
// the attempt ended (planAttemptEnd).

// testStep is what the test handler does next with a job.
type testStep int

const (
	// stepRun goes on: check the head and prepare, or run the attempt.
	stepRun testStep = iota
	// stepAbandon ends a test lost MaxDeliver times as error.
	stepAbandon
	// stepRecordOwed records the final state a job carries (Outcome)
	// without running the test again.
	stepRecordOwed
	// stepWaitInfra waits out an infrastructure error: the status says
	// why, the job is queued to try again (infraFailed, settleTest), or
	// ends once it waited InfraGiveUp.
	stepWaitInfra
	// stepDrop drops a test whose head went stale before it ran.
	stepDrop
	// stepFailPrepare ends a test whose copy cannot be prepared.
	stepFailPrepare
	// stepHandBack hands the delivery back to the queue with its error.
	stepHandBack
	// stepStopForDisk ends an attempt stopped because its disk filled.
	stepStopForDisk
	// stepStopStale ends an attempt stopped because its head went stale.
	stepStopStale
	// stepRequeueStopped hands back an attempt the stopping worker cut
	// short, its record saying it is queued again.
	stepRequeueStopped
	// stepRetry queues the next attempt after its wait.
	stepRetry
	// stepFinal records the test's final state.
	stepFinal
)

var testStepNames = [...]string{"run", "abandon", "record owed", "wait for infrastructure", "drop", "fail prepare",
	"hand back", "stop for disk", "stop stale", "requeue stopped", "retry", "final"}

func (s testStep) String() string {
	return enumName(s, testStepNames[:], "testStep")
}

// testStartFacts are what the handler knows of a delivery as it arrives.
type testStartFacts struct {
	job events.TestJob
	// lastChance is Delivery.LastChance: this delivery is the job's
	// MaxDeliver-th.
	lastChance bool
	delivered  uint64
	// diskLow is Disk.BelowFloor's error: no attempt starts below it.
	diskLow error
}

// testStart is the plan of a delivery as it arrives: its step and, for
// stepAbandon, why the test ends and, for stepWaitInfra, the error waited
// out.
type testStart struct {
	step testStep
	why  string
	err  error
}

// planTestStart decides what a delivery calls for before anything is
// prepared. A last chance ends the test whatever else holds: it crashed
// (or waited for disk) on every delivery before.
func planTestStart(f testStartFacts) testStart {
	switch {
	case f.lastChance:
		why := fmt.Sprintf("attempt %d was lost %d times (worker crashed or stopped)", f.job.Attempt, f.delivered)
		if f.diskLow != nil {
			// The deliveries went to waiting for disk space, not to crashes.
			why = fmt.Sprintf("gave up after %d tries: infrastructure (disk): %s", f.delivered, status.ErrorReason(f.diskLow))
		}
		return testStart{step: stepAbandon, why: why}
	case f.job.Outcome != nil:
		// The attempt ran, and a worker from before records were
		// mandatory queued its final state for later.
		return testStart{step: stepRecordOwed}
	case f.diskLow != nil:
		return testStart{step: stepWaitInfra, err: infrastructure(InfraDisk, f.diskLow)}
	}
	return testStart{step: stepRun}
}

// preparedFacts are what the handler knows once it checked the job's head
// and, when the head is current, prepared its copy: known is whether the
// check could tell, stale why the head is no longer the test's (empty when
// it is), newSHA the head that superseded it (empty when the pull request
// closed or the reason is another), err the check's or preparation's error.
type preparedFacts struct {
	known         bool
	stale, newSHA string
	err           error
}

// prepared is the plan once the copy is prepared: its step, and the error
// to hand back (or wait out) with it.
type prepared struct {
	step testStep
	err  error
}

// planPrepared decides whether the attempt runs. A head that went stale
// drops the test even when its preparation failed; a disk that filled
// while it was prepared makes it wait, not fail.
func planPrepared(f preparedFacts) prepared {
	if !f.known {
		return prepared{step: stepHandBack, err: f.err}
	}
	if f.stale != "" {
		return prepared{step: stepDrop}
	}
	err := classifyPrepare(f.err)
	var infra infraError
	if errors.As(err, &infra) {
		return prepared{step: stepWaitInfra, err: err}
	}
	var perm permanentError
	if errors.As(err, &perm) {
		return prepared{step: stepFailPrepare, err: err}
	}
	if err != nil {
		return prepared{step: stepHandBack, err: err}
	}
	return prepared{step: stepRun}
}

// attemptFacts are what the handler knows once an attempt ended: whether
// the disk guard stopped it, whether a head announcement did, whether the
// worker is stopping, what the runner returned, and the test's retry
// policy (Test) and timeout.
type attemptFacts struct {
	job                    events.TestJob
	test                   pipeline.Test
	timeout                time.Duration
	diskStopped, staleStop bool
	stopping               bool
	res                    pipeline.Result
	runErr                 error
	now                    time.Time
}

// attemptEnd is the plan once an attempt ended: its step; res, the
// result as recorded (a runner's error made an Errored result); for
// stepRetry the next attempt's job and wait; for stepFinal the status's
// state, description and conclusion; removeCopy whether the working copy
// goes (its last attempt, or a stop).
type attemptEnd struct {
	step        testStep
	res         pipeline.Result
	next        events.TestJob
	wait        time.Duration
	state       status.State
	description string
	conclusion  status.Conclusion
	removeCopy  bool
}

// planAttemptEnd decides what became of an attempt. A head that went
// stale outranks a full disk: the test is over either way, and it is the
// push that stopped it; a stopping worker hands the attempt back unless a
// stop of its own already ended it.
func planAttemptEnd(f attemptFacts) attemptEnd {
	switch {
	case f.diskStopped && !f.staleStop && !f.stopping:
		return attemptEnd{step: stepStopForDisk, res: f.res, removeCopy: true}
	case f.staleStop:
		return attemptEnd{step: stepStopStale, removeCopy: true}
	case f.stopping:
		return attemptEnd{step: stepRequeueStopped}
	case f.runErr == nil && f.res.Outcome == pipeline.Errored && f.res.ExitCode == -1:
		// The test never ran: its sandbox could not be set up, or bash
		// could not start. The box failed, not the code: run it again later.
		return attemptEnd{step: stepWaitInfra, res: f.res}
	}
	res := f.res
	if f.runErr != nil {
		res = pipeline.Result{Outcome: pipeline.Errored, Reason: status.ErrorReason(f.runErr)}
	}
	t, attempts := f.test, f.test.Retries+1
	if wait, retry := pipeline.NextRetry(t, f.job.Attempt, res.Outcome); retry {
		next := f.job
		next.Attempt++
		next.InfraSince, next.InfraRetries = time.Time{}, 0 // the next attempt waits anew
		next.NotBefore = f.now.Add(wait).UTC()
		return attemptEnd{step: stepRetry, res: res, next: next, wait: wait,
			state: status.Pending, description: status.RetryingIn(wait, next.Attempt, attempts)}
	}
	// The test's last attempt: its log stays, its copy goes before the
	// final status says the test is done.
	p := attemptEnd{step: stepFinal, res: res, removeCopy: true}
	switch res.Outcome {
	case pipeline.Passed:
		p.state, p.description = status.Success, status.Passed(res.Duration, f.job.Attempt)
	case pipeline.Failed:
		p.state, p.description = status.Failure, status.Failed(res.ExitCode, f.job.Attempt, attempts, res.Duration)
	case pipeline.TimedOut:
		p.state, p.description = status.Failure, status.TimedOut(f.timeout, f.job.Attempt, attempts)
		p.conclusion = status.ConclusionTimedOut
	default:
		p.state, p.description = status.Error, status.Errored(res.Reason)
	}
	return p
}
