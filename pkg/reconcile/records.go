package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/google/go-github/v88/github"

	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/projector"
	"github.com/yourci/yourci/pkg/status"
)

// A projected build (events.BuildRecord.Projected) is repaired from its
// record, in both auth modes: the record is the one truth, and the sweep
// never writes GitHub for it. It changes the record and lets the lease
// holding projector (pkg/projector) write the difference.
//
//   - Tests the record holds unfinished with no job left in the queue for
//     StaleAfter are marked final in the record (so their check runs and
//     statuses end, where a rebuild's new check runs would leave them in
//     progress for good) and the head is rebuilt, or, past MaxRebuilds,
//     marked errored with the reason.
//   - Parts whose state on GitHub (check runs under App auth, commit
//     statuses otherwise) differs from what the record says, although the
//     record says the projector showed it, have their Shown mark cleared,
//     which makes the projector write them again.

// reshownMark replaces the Shown mark of a part GitHub shows otherwise
// than the record: no projected state has it, so the projector writes the
// part again. It is a mark rather than no entry, so the projector updates
// the part's check run instead of creating a second one.
const reshownMark = "reconcile: GitHub differs"

// Ready-made descriptions of tests the sweep ends.
const (
	lostRebuiltDescription = "lost: no job was left to finish it; the sweep queued a rebuild"
	lostGivenUpFormat      = "lost: left unfinished %s with no job queued, after %d rebuilds; push a commit to build again"
)

// shownView is how GitHub shows one part: a commit status's state, or a
// check run's status and conclusion ("completed/success").
type shownView string

// viewOf is how GitHub shows st when it is written: through check runs
// when checks, through commit statuses otherwise. Descriptions are left
// out: the writers cut and mask them, so they cannot be compared.
func viewOf(st status.Status, checks bool) shownView {
	if !checks {
		return shownView(st.State)
	}
	s, c := status.CheckState(st)
	if c == nil {
		return shownView(s)
	}
	return shownView(s + "/" + *c)
}

// partKey is how a part is found among GitHub's: its check run's
// external_id, or its status context.
func partKey(st status.Status, checks bool) string {
	if !checks {
		return status.Context(st.Test)
	}
	return status.ExternalID{Owner: st.Owner, Repo: st.Repo, Pull: st.Pull, SHA: st.SHA,
		Build: st.Build, Rerun: st.Rerun, Test: st.Test}.String()
}

// drift returns the parts of states that the record says are shown
// (their Shown mark is the state's own) but that GitHub, as onGitHub has
// it (by partKey; absent when GitHub has nothing), shows otherwise. A
// part the projector still owes is its business, not the sweep's.
func drift(states []projector.State, shown map[string]events.Shown, onGitHub map[string]shownView, checks bool) []string {
	var out []string
	for _, st := range states {
		prev, ok := shown[st.Part]
		if !ok || prev.Mark != st.Mark {
			continue
		}
		if got, ok := onGitHub[partKey(st.Status, checks)]; !ok || got != viewOf(st.Status, checks) {
			out = append(out, st.Part)
		}
	}
	return out
}

// unfinished are the names of rec's tests not in a final state.
func unfinished(rec events.BuildRecord) []string {
	var out []string
	for _, t := range rec.Tests {
		if !t.State.Final() {
			out = append(out, t.Name)
		}
	}
	return out
}

// lastChange is when rec's newest test changed: the last sign of life of
// the build.
func lastChange(rec events.BuildRecord) time.Time {
	var newest time.Time
	for _, t := range rec.Tests {
		if t.Updated.After(newest) {
			newest = t.Updated
		}
	}
	return newest
}

// readRecord fills in h.rec with the head's build record when a projector
// shows it; other records (none, or written without a projector) leave
// h.rec nil and the head to the statuses.
func (r *repoSweep) readRecord(ctx context.Context, h *head) error {
	if r.s.opts.Records == nil {
		return nil
	}
	rec, err := r.s.opts.Records.BuildRecord(ctx, events.BuildKey{Repo: r.t.repo, Pull: h.pull, Build: h.build})
	if errors.Is(err, events.ErrNoRecord) {
		return nil
	}
	if err != nil {
		return err
	}
	if rec.Projected && rec.SHA == h.sha {
		h.rec = &rec
	}
	return nil
}

// readShown fills in h.shown with how GitHub shows the head's parts: its
// check runs when the installation has them (App auth), its commit
// statuses otherwise. Both reads are conditional (usually a 304).
func (r *repoSweep) readShown(ctx context.Context, h *head) error {
	h.shown = map[string]shownView{}
	if r.inst.Checks == nil {
		if err := r.readStatuses(ctx, h); err != nil {
			return err
		}
		for _, st := range h.ours {
			h.shown[st.GetContext()] = shownView(st.GetState())
		}
		return nil
	}
	runs, err := allPages(ctx, r.s.pageSize, func(opts *github.ListOptions) ([]*github.CheckRun, *github.Response, error) {
		list, resp, err := r.inst.Checks.ListCheckRunsForRef(ctx, r.t.repo.Owner, r.t.repo.Name, h.sha,
			&github.ListCheckRunsOptions{Filter: github.Ptr("all"), ListOptions: *opts})
		return list.GetCheckRuns(), resp, err
	})
	if err != nil {
		return fmt.Errorf("reading check runs of %s: %w", h.sha, err)
	}
	for _, run := range runs {
		if !strings.HasPrefix(run.GetName(), status.ContextPrefix) {
			continue
		}
		v := run.GetStatus()
		if run.GetConclusion() != "" {
			v += "/" + run.GetConclusion()
		}
		h.shown[run.GetExternalID()] = shownView(v)
	}
	return nil
}

// actOnRecord repairs a projected build: a lost one is rebuilt (or ended),
// and parts GitHub shows otherwise than the record are shown again.
func (r *repoSweep) actOnRecord(ctx context.Context, log *slog.Logger, h *head, jobs *Jobs) error {
	rec := *h.rec
	log = log.With("build", h.build)
	if lost := unfinished(rec); len(lost) > 0 {
		if jobs.HeadLive(r.t.repo, h.pull, h.sha) {
			return nil // a worker has it; its tests finish or come back
		}
		age := r.s.opts.Now().Sub(lastChange(rec))
		if age < r.s.opts.StaleAfter {
			return nil
		}
		return r.repairLost(ctx, log.With("lost_for", age.Round(time.Second).String(), "tests", strings.Join(lost, " ")), h, age)
	}
	parts := drift(projector.Project(rec, ""), rec.Shown, h.shown, r.inst.Checks != nil)
	if len(parts) == 0 {
		return nil
	}
	return r.reshow(ctx, log, h, parts)
}

// repairLost ends the lost tests of h's build in its record, then queues
// a rebuild: the first MaxRebuilds times with the tests cancelled, after
// that with them errored and no rebuild, since rebuilding what keeps
// vanishing would loop. Ending them first matters under App auth: a
// rebuild's check runs are new ones, and the lost build's would otherwise
// stay in progress. When the rebuild cannot be queued the tests stay
// ended and the error says so; the next push builds again.
func (r *repoSweep) repairLost(ctx context.Context, log *slog.Logger, h *head, age time.Duration) error {
	mark := r.next.Rebuilds[h.pull]
	if mark.SHA != h.sha {
		mark = headMark{SHA: h.sha}
	}
	rebuild := mark.Rebuilds < r.s.opts.MaxRebuilds
	desc, conclusion := lostRebuiltDescription, string(status.ConclusionCancelled)
	if !rebuild {
		desc, conclusion = fmt.Sprintf(lostGivenUpFormat, humanAge(age), mark.Rebuilds), ""
	}
	k := events.BuildKey{Repo: r.t.repo, Pull: h.pull, Build: h.build}
	_, err := r.s.opts.Records.UpdateBuild(ctx, k, func(rec *events.BuildRecord) error {
		return endLost(rec, desc, conclusion, r.s.opts.Now())
	})
	if errors.Is(err, events.ErrUnchanged) {
		return nil // they finished meanwhile
	}
	if err != nil {
		return fmt.Errorf("ending the lost tests of build %d: %w", h.build, err)
	}
	if !rebuild {
		r.sum.Errored++
		log.Warn("tests left unfinished with no job after rebuilds: set to error", "rebuilds", mark.Rebuilds)
		return nil
	}
	// The delivery names the build being replaced: two sweeps repairing
	// the same build publish one message.
	if err := r.publish(ctx, log, h, fmt.Sprintf("reconcile-repair-%d", h.build), true); err != nil {
		return err
	}
	mark.Rebuilds++
	r.next.Rebuilds[h.pull] = mark
	r.sum.Rebuilt++
	log.Warn("tests left unfinished with no job: ended them and queued a rebuild", "rebuild", mark.Rebuilds)
	return nil
}

// endLost sets every unfinished test of rec to errored with desc and
// conclusion at now; events.ErrUnchanged when none is unfinished.
func endLost(rec *events.BuildRecord, desc, conclusion string, now time.Time) error {
	changed := false
	for i := range rec.Tests {
		t := &rec.Tests[i]
		if t.State.Final() {
			continue
		}
		t.State, t.Description, t.Conclusion, t.Report = events.TestErrored, desc, conclusion, nil
		t.Updated = now.UTC()
		changed = true
	}
	if !changed {
		return events.ErrUnchanged
	}
	return nil
}

// reshow clears the Shown marks of parts, so that the projector writes
// them again, unless the projector showed something new meanwhile.
func (r *repoSweep) reshow(ctx context.Context, log *slog.Logger, h *head, parts []string) error {
	seen := h.rec.Shown
	k := events.BuildKey{Repo: r.t.repo, Pull: h.pull, Build: h.build}
	var done []string
	_, err := r.s.opts.Records.UpdateBuild(ctx, k, func(rec *events.BuildRecord) error {
		done = done[:0]
		for _, part := range parts {
			cur, ok := rec.Shown[part]
			if !ok || cur.Mark != seen[part].Mark {
				continue // shown anew since the sweep compared
			}
			rec.Shown[part] = events.Shown{Mark: reshownMark, At: cur.At}
			done = append(done, part)
		}
		if len(done) == 0 {
			return events.ErrUnchanged
		}
		return nil
	})
	if errors.Is(err, events.ErrUnchanged) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("marking parts of build %d to show again: %w", h.build, err)
	}
	r.sum.Reshown += len(done)
	names := slices.Clone(done)
	for i, p := range names {
		names[i] = status.Context(p)
	}
	log.Warn("GitHub shows parts otherwise than the build record: the projector writes them again", "parts", strings.Join(names, " "))
	return nil
}
