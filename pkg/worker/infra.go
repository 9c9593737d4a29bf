package worker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"time"

	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/status"
)

// Infrastructure error kinds, the label of yci_infrastructure_errors_total.
const (
	InfraDisk    = "disk"
	InfraMirror  = "mirror"
	InfraSandbox = "sandbox"
)

// infraError marks a failure of this box, not of the code under test: a
// full disk, a sandbox that could not be set up, a mirror that could not
// be updated. The job is queued again with a growing delay, using no
// delivery (settleTest), until Options.InfraGiveUp has passed; the test's
// status says error with the reason while it lasts.
type infraError struct {
	kind string
	err  error
}

func (e infraError) Error() string { return e.err.Error() }
func (e infraError) Unwrap() error { return e.err }

// infrastructure marks err as an infrastructure error of kind.
func infrastructure(kind string, err error) error { return infraError{kind: kind, err: err} }

// noSpace tells whether err says the disk is full: ENOSPC or EDQUOT in
// its chain, or git's or another tool's message for it in its text.
func noSpace(err error) bool {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return true
	}
	msg := strings.ToLower(err.Error())
	return strings.Contains(msg, "no space left on device") || strings.Contains(msg, "disk quota exceeded")
}

// classifyPrepare turns a failure to prepare a test's working copy into
// an infrastructure error where the box, not the job, is at fault:
// a full disk. Other errors are returned unchanged.
func classifyPrepare(err error) error {
	var infra infraError
	if err == nil || errors.As(err, &infra) {
		return err
	}
	if noSpace(err) {
		return infrastructure(InfraDisk, err)
	}
	return err
}

// mirrorFailed is the infrastructure error of a mirror that could not be
// updated: a full disk, or (any other cause, GitHub unreachable included)
// a mirror lost for now.
func mirrorFailed(err error) error {
	err = fmt.Errorf("updating mirror: %w", err)
	if noSpace(err) {
		return infrastructure(InfraDisk, err)
	}
	return infrastructure(InfraMirror, err)
}

// countInfra counts err in yci_infrastructure_errors_total when it is an
// infrastructure error.
func (m *Metrics) countInfra(err error) {
	var infra infraError
	if errors.As(err, &infra) {
		m.infraError(infra.kind)
	}
}

// infraFailed reports err, an infrastructure error met before job's
// attempt ran: the test's status and record say error with the reason
// (never "running"), the metric counts it, and err is returned so that
// the job is queued again with a growing delay (settleTest). The retry
// sets the status again when it runs. A job that has waited out such
// errors for InfraGiveUp ends here as error instead (giveUpInfra).
func (h *testHandler) infraFailed(ctx context.Context, st status.Status, job events.TestJob, err error) error {
	if infraExpired(job, time.Now(), h.infraGiveUp) {
		return h.giveUpInfra(ctx, st, job, err)
	}
	var infra infraError
	kind := InfraDisk
	if errors.As(err, &infra) {
		kind = infra.kind
	}
	h.metrics.infraError(kind)
	st.Started = false
	st.State, st.Description = status.Error, infraRetrying(kind, err)
	h.rec.track(ctx, job, events.TestErrored, st, nil)
	return err
}

// infraRetrying is the description of a test waiting out an
// infrastructure error err of kind: the kind and cause, no path.
func infraRetrying(kind string, err error) string {
	return status.Errored("infrastructure (" + kind + "), retrying: " + status.ErrorReason(err))
}
