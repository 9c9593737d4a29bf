package worker

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/pipeline"
	"github.com/yourci/yourci/pkg/status"
)

// The test handler's decisions, in memory: no NATS, git or python. The
// real-process tests (worker_test.go, infrawait_test.go, ...) cover the
// wiring that carries them out.

func TestPlanTestStart(t *testing.T) {
	full := &fs.PathError{Op: "statfs", Path: "/var/lib/yci/secret/path", Err: syscall.ENOSPC}
	owed := events.TestJob{Attempt: 2, Outcome: &events.Outcome{State: "success", Description: "passed"}}
	cases := []struct {
		name    string
		f       testStartFacts
		step    testStep
		why     string // substring of the abandoned test's reason
		infraOf string // the kind of the error waited out
	}{
		{name: "fresh job runs", f: testStartFacts{job: events.TestJob{Attempt: 1}}, step: stepRun},
		{name: "last chance abandons as lost", f: testStartFacts{job: events.TestJob{Attempt: 3}, lastChance: true, delivered: 10},
			step: stepAbandon, why: "attempt 3 was lost 10 times (worker crashed or stopped)"},
		{name: "last chance below the floor names the disk", f: testStartFacts{job: events.TestJob{Attempt: 1}, lastChance: true, delivered: 10, diskLow: full},
			step: stepAbandon, why: "gave up after 10 tries: infrastructure (disk): statfs: no space left on device"},
		{name: "last chance outranks an owed outcome", f: testStartFacts{job: owed, lastChance: true, delivered: 10}, step: stepAbandon, why: "lost 10 times"},
		{name: "owed outcome is recorded, not run", f: testStartFacts{job: owed}, step: stepRecordOwed},
		{name: "owed outcome is recorded even below the floor", f: testStartFacts{job: owed, diskLow: full}, step: stepRecordOwed},
		{name: "below the floor waits for disk", f: testStartFacts{job: events.TestJob{Attempt: 1}, diskLow: full}, step: stepWaitInfra, infraOf: InfraDisk},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := planTestStart(c.f)
			if got.step != c.step {
				t.Fatalf("step = %v, want %v", got.step, c.step)
			}
			if c.why != "" && !strings.Contains(got.why, c.why) {
				t.Errorf("why = %q, want it to contain %q", got.why, c.why)
			}
			if strings.Contains(got.why, "/var/lib") {
				t.Errorf("why %q shows the box's paths", got.why)
			}
			if c.infraOf != "" {
				if kind := infraKindOf(got.err); kind != c.infraOf {
					t.Errorf("err = %v (kind %q), want an infrastructure error of kind %q", got.err, kind, c.infraOf)
				}
			} else if got.err != nil {
				t.Errorf("err = %v, want none", got.err)
			}
		})
	}
}

// infraKindOf is err's infrastructure kind, "" when it is none.
func infraKindOf(err error) string {
	var infra infraError
	if errors.As(err, &infra) {
		return infra.kind
	}
	return ""
}

func TestPlanPrepared(t *testing.T) {
	netErr := errors.New("connection reset by peer")
	noSpaceErr := fmt.Errorf("clearing the previous attempt's copy: %w", &fs.PathError{Op: "unlinkat", Path: "/x", Err: syscall.ENOSPC})
	cases := []struct {
		name    string
		f       preparedFacts
		step    testStep
		err     error // the error handed back, when it is this one
		infraOf string
	}{
		{name: "current head prepared runs", f: preparedFacts{known: true}, step: stepRun},
		{name: "head check that cannot tell hands back", f: preparedFacts{err: netErr}, step: stepHandBack, err: netErr},
		{name: "head check that cannot tell outranks staleness", f: preparedFacts{stale: "closed", err: netErr}, step: stepHandBack, err: netErr},
		{name: "superseded head drops", f: preparedFacts{known: true, stale: "head moved", newSHA: "bbb"}, step: stepDrop},
		{name: "closed pull request drops", f: preparedFacts{known: true, stale: "pull request closed"}, step: stepDrop},
		{name: "stale head drops despite a failed preparation", f: preparedFacts{known: true, stale: "closed", err: permanent(netErr)}, step: stepDrop},
		{name: "full disk while preparing waits", f: preparedFacts{known: true, err: noSpaceErr}, step: stepWaitInfra, infraOf: InfraDisk},
		{name: "mirror failure waits", f: preparedFacts{known: true, err: mirrorFailed(netErr)}, step: stepWaitInfra, infraOf: InfraMirror},
		{name: "full disk in the mirror waits for disk", f: preparedFacts{known: true, err: mirrorFailed(syscall.ENOSPC)}, step: stepWaitInfra, infraOf: InfraDisk},
		{name: "permanent failure ends the test", f: preparedFacts{known: true, err: permanent(netErr)}, step: stepFailPrepare},
		{name: "other failure hands back", f: preparedFacts{known: true, err: netErr}, step: stepHandBack, err: netErr},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := planPrepared(c.f)
			if got.step != c.step {
				t.Fatalf("step = %v, want %v", got.step, c.step)
			}
			if c.err != nil && !errors.Is(got.err, c.err) {
				t.Errorf("err = %v, want %v", got.err, c.err)
			}
			if kind := infraKindOf(got.err); kind != c.infraOf {
				t.Errorf("infrastructure kind = %q, want %q (err %v)", kind, c.infraOf, got.err)
			}
			if (got.step == stepRun || got.step == stepDrop) && got.err != nil {
				t.Errorf("err = %v, want none for %v", got.err, got.step)
			}
		})
	}
}

func TestPlanAttemptEnd(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	flaky := pipeline.Test{Name: "unit", Retries: 2, RetryIncrement: time.Minute}
	once := pipeline.Test{Name: "lint"}
	job := func(attempt int) events.TestJob {
		return events.TestJob{Attempt: attempt, InfraSince: now.Add(-time.Hour), InfraRetries: 4}
	}
	passed := pipeline.Result{Outcome: pipeline.Passed, Duration: 3 * time.Second}
	failed := pipeline.Result{Outcome: pipeline.Failed, ExitCode: 1, Duration: time.Second}
	timedOut := pipeline.Result{Outcome: pipeline.TimedOut, ExitCode: -1}
	noSandbox := pipeline.Result{Outcome: pipeline.Errored, ExitCode: -1, Reason: "bwrap: setting up uid map"}
	cases := []struct {
		name  string
		f     attemptFacts
		want  attemptEnd // step, state, description, conclusion, removeCopy, wait compared
		next  int        // the next attempt's number, for stepRetry
		check func(t *testing.T, got attemptEnd)
	}{
		{name: "pass is final", f: attemptFacts{job: job(1), test: flaky, res: passed},
			want: attemptEnd{step: stepFinal, state: status.Success, description: status.Passed(3*time.Second, 1), removeCopy: true}},
		{name: "failure with retries left retries after its wait", f: attemptFacts{job: job(2), test: flaky, res: failed},
			want: attemptEnd{step: stepRetry, state: status.Pending, description: status.RetryingIn(2*time.Minute, 3, 3), wait: 2 * time.Minute}, next: 3},
		{name: "timeout with retries left retries", f: attemptFacts{job: job(1), test: flaky, res: timedOut},
			want: attemptEnd{step: stepRetry, state: status.Pending, description: status.RetryingIn(time.Minute, 2, 3), wait: time.Minute}, next: 2},
		{name: "last failure is final", f: attemptFacts{job: job(3), test: flaky, res: failed},
			want: attemptEnd{step: stepFinal, state: status.Failure, description: status.Failed(1, 3, 3, time.Second), removeCopy: true}},
		{name: "last timeout is final and says timed out", f: attemptFacts{job: job(1), test: once, res: timedOut, timeout: 10 * time.Minute},
			want: attemptEnd{step: stepFinal, state: status.Failure, description: status.TimedOut(10*time.Minute, 1, 1), conclusion: status.ConclusionTimedOut, removeCopy: true}},
		{name: "errored attempt is final without a retry", f: attemptFacts{job: job(1), test: flaky, res: pipeline.Result{Outcome: pipeline.Errored, ExitCode: 2, Reason: "log write failed"}},
			want: attemptEnd{step: stepFinal, state: status.Error, description: status.Errored("log write failed"), removeCopy: true}},
		{name: "runner error becomes an errored result without paths", f: attemptFacts{job: job(1), test: flaky, res: passed,
			runErr: fmt.Errorf("starting: %w", &fs.PathError{Op: "open", Path: "/var/lib/yci/x/out.txt", Err: syscall.EACCES})},
			want: attemptEnd{step: stepFinal, state: status.Error, description: status.Errored("starting: open: permission denied"), removeCopy: true},
			check: func(t *testing.T, got attemptEnd) {
				if got.res.Outcome != pipeline.Errored {
					t.Errorf("recorded outcome = %v, want errored", got.res.Outcome)
				}
			}},
		{name: "sandbox that never started waits for infrastructure", f: attemptFacts{job: job(1), test: flaky, res: noSandbox},
			want: attemptEnd{step: stepWaitInfra}},
		{name: "runner error with exit -1 is the runner's, not the sandbox's", f: attemptFacts{job: job(1), test: once, res: noSandbox, runErr: errors.New("boom")},
			want: attemptEnd{step: stepFinal, state: status.Error, description: status.Errored("boom"), removeCopy: true}},
		{name: "disk stop ends the attempt", f: attemptFacts{job: job(1), test: flaky, res: failed, diskStopped: true},
			want: attemptEnd{step: stepStopForDisk, removeCopy: true}},
		{name: "stale head outranks a disk stop", f: attemptFacts{job: job(1), test: flaky, res: failed, diskStopped: true, staleStop: true},
			want: attemptEnd{step: stepStopStale, removeCopy: true}},
		{name: "stale head outranks a stopping worker", f: attemptFacts{job: job(1), test: flaky, res: failed, staleStop: true, stopping: true},
			want: attemptEnd{step: stepStopStale, removeCopy: true}},
		{name: "stopping worker hands a disk-stopped attempt back", f: attemptFacts{job: job(1), test: flaky, res: failed, diskStopped: true, stopping: true},
			want: attemptEnd{step: stepRequeueStopped}},
		{name: "stopping worker hands back even a pass", f: attemptFacts{job: job(1), test: flaky, res: passed, stopping: true},
			want: attemptEnd{step: stepRequeueStopped}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.f.now = now
			got := planAttemptEnd(c.f)
			if got.step != c.want.step {
				t.Fatalf("step = %v, want %v", got.step, c.want.step)
			}
			if got.state != c.want.state || got.description != c.want.description || got.conclusion != c.want.conclusion {
				t.Errorf("status = %q %q %q, want %q %q %q", got.state, got.description, got.conclusion, c.want.state, c.want.description, c.want.conclusion)
			}
			if got.removeCopy != c.want.removeCopy || got.wait != c.want.wait {
				t.Errorf("removeCopy, wait = %v, %v; want %v, %v", got.removeCopy, got.wait, c.want.removeCopy, c.want.wait)
			}
			if got.step == stepRetry {
				n := got.next
				if n.Attempt != c.next || !n.NotBefore.Equal(now.Add(got.wait)) || !n.InfraSince.IsZero() || n.InfraRetries != 0 {
					t.Errorf("next = attempt %d not before %v, infra %v/%d; want attempt %d not before %v, infra waits reset",
						n.Attempt, n.NotBefore, n.InfraSince, n.InfraRetries, c.next, now.Add(got.wait))
				}
			}
			if c.check != nil {
				c.check(t, got)
			}
		})
	}
}
