package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/yourci/yourci/pkg/status"
)

// repair deals with a head commit whose yci statuses stayed pending for
// longer than StaleAfter while the queue holds no job for it, so nothing
// will ever finish them (a job lost with a NATS store, a message purged by
// hand, a worker box gone with its build). It serves builds recorded
// without a projector only (workers run with -projector=false, or records
// from before projectors): a projected build is repaired through its
// record (repairLost), and only this path still writes statuses itself,
// since no projector would write them.
//
// The first MaxRebuilds times it publishes the pull request again with
// Rebuild set: the worker then takes a new build number and runs every
// test afresh (and skips it if the pull request was closed or moved on
// meanwhile). A rebuild is what a person would do, and the only way to get
// real results. Past that the loss is not an accident, and rebuilding
// again would loop; the pending statuses are set to error with the reason,
// so the pull request shows the truth and the next push starts over.
func (r *repoSweep) repair(ctx context.Context, log *slog.Logger, h *head, age time.Duration) error {
	mark := r.next.Rebuilds[h.pull]
	if mark.SHA != h.sha {
		mark = headMark{SHA: h.sha}
	}
	contexts := make([]string, len(h.pending))
	for i, st := range h.pending {
		contexts[i] = st.GetContext()
	}
	log = log.With("pending_for", age.Round(time.Second).String(), "contexts", strings.Join(contexts, " "))
	if mark.Rebuilds < r.s.opts.MaxRebuilds {
		// The delivery names the build being replaced: two sweeps
		// repairing the same build publish one message.
		if err := r.publish(ctx, log, h, "reconcile-repair-"+strconv.Itoa(h.build), true); err != nil {
			return err
		}
		mark.Rebuilds++
		r.next.Rebuilds[h.pull] = mark
		r.sum.Rebuilt++
		log.Warn("statuses left pending with no job: queued a rebuild", "rebuild", mark.Rebuilds)
		return nil
	}
	reason := fmt.Sprintf("left pending %s with no job queued, after %d rebuilds; push a commit to build again",
		humanAge(age), mark.Rebuilds)
	rep := status.NewReporter(r.inst.Statuses, append([]status.Option{status.WithLogger(log)}, r.s.opts.StatusOptions...)...)
	var errs []error
	for _, st := range h.pending {
		err := rep.Set(ctx, status.Status{
			Owner: r.t.repo.Owner, Repo: r.t.repo.Name, SHA: h.sha,
			Test:  strings.TrimPrefix(strings.TrimPrefix(st.GetContext(), status.ContextPrefix), "/"),
			State: status.Error, Description: status.Errored(reason), TargetURL: st.GetTargetURL(),
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("setting %s to error: %w", st.GetContext(), err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	r.sum.Errored++
	log.Warn("statuses left pending with no job after rebuilds: set to error", "rebuilds", mark.Rebuilds)
	return nil
}

// humanAge writes an age as people read it: "2h", "2h5m", "45m".
func humanAge(d time.Duration) string {
	h, m := int(d.Hours()), int(d.Minutes())%60
	switch {
	case h == 0:
		return fmt.Sprintf("%dm", m)
	case m == 0:
		return fmt.Sprintf("%dh", h)
	}
	return fmt.Sprintf("%dh%dm", h, m)
}
