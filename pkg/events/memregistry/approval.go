package memregistry

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/yourci/yourci/pkg/events"
)

// maxRerunClaims is how many claimants a build's re-run record remembers,
// as in events.Registry.
const maxRerunClaims = 64

// rerunRecord numbers one build's re-runs per test and remembers which
// claimant was given which numbers, oldest claim first.
type rerunRecord struct {
	last   map[string]int
	claims []rerunClaim
}

type rerunClaim struct {
	by   string
	runs map[string]int
}

// ApprovalOf returns the approval record of a pull request; one never
// asked about has the zero record.
func (r *Registry) ApprovalOf(ctx context.Context, repo events.Repo, pull int) (events.Approval, error) {
	if err := errors.Join(repo.Validate(), events.ValidatePull(pull)); err != nil {
		return events.Approval{}, err
	}
	if err := reach(ctx); err != nil {
		return events.Approval{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.approvals[pullID{repo, pull}], nil
}

// Approve records that by approved head commit sha, replacing any earlier
// approval; approving the same head by the same person again changes
// nothing, its time included.
func (r *Registry) Approve(ctx context.Context, repo events.Repo, pull int, sha, by string) error {
	if by == "" {
		return fmt.Errorf("approving %s#%d at %s without an approver: %w", repo.FullName(), pull, sha, events.ErrInvalidEvent)
	}
	return r.updateApproval(ctx, repo, pull, sha, func(a *events.Approval) {
		if a.SHA != sha || a.By != by {
			a.SHA, a.By, a.At = sha, by, r.Now().UTC()
		}
	})
}

// AskApproval records that the "approval needed" status of sha is being
// set now, and reports whether it had not been recorded already.
func (r *Registry) AskApproval(ctx context.Context, repo events.Repo, pull int, sha string) (first bool, err error) {
	err = r.updateApproval(ctx, repo, pull, sha, func(a *events.Approval) {
		first = a.Asked != sha
		if first {
			a.Asked, a.AskedAt = sha, r.Now().UTC()
		}
	})
	return first, err
}

// ForgetAsked undoes AskApproval for sha, so the next ask is first again.
func (r *Registry) ForgetAsked(ctx context.Context, repo events.Repo, pull int, sha string) error {
	return r.updateApproval(ctx, repo, pull, sha, func(a *events.Approval) {
		if a.Asked == sha {
			a.Asked, a.AskedAt = "", time.Time{}
		}
	})
}

// updateApproval applies change to a pull request's approval record.
func (r *Registry) updateApproval(ctx context.Context, repo events.Repo, pull int, sha string, change func(*events.Approval)) error {
	if err := checkBuildKey(repo, pull, sha); err != nil {
		return err
	}
	if err := reach(ctx); err != nil {
		return fmt.Errorf("recording approval of %s#%d: %w", repo.FullName(), pull, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	a := r.approvals[pullID{repo, pull}]
	change(&a)
	r.approvals[pullID{repo, pull}] = a
	return nil
}

// ClaimReruns numbers a new re-run of each of tests of a build (1, 2, 3,
// ... per test); the same claimant asking again gets the numbers it was
// given before, as long as it is among the last maxRerunClaims claimants.
func (r *Registry) ClaimReruns(ctx context.Context, repo events.Repo, pull, build int, tests []string, claimant string) (map[string]int, error) {
	if err := checkBuildKey(repo, pull, "-"); err != nil {
		return nil, err
	}
	if build < 1 || claimant == "" || len(tests) == 0 {
		return nil, fmt.Errorf("claiming re-runs of build %d by %q of %d tests: %w", build, claimant, len(tests), events.ErrInvalidEvent)
	}
	if err := reach(ctx); err != nil {
		return nil, fmt.Errorf("claiming re-runs of %s#%d build %d: %w", repo.FullName(), pull, build, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	id := buildID{pullID{repo, pull}, build}
	rec, ok := r.reruns[id]
	if !ok {
		rec = &rerunRecord{last: map[string]int{}}
		r.reruns[id] = rec
	}
	if runs, ok := rec.claimed(claimant); ok {
		return maps.Clone(runs), nil
	}
	runs := make(map[string]int, len(tests))
	for _, t := range tests {
		rec.last[t]++
		runs[t] = rec.last[t]
	}
	rec.claims = append(rec.claims, rerunClaim{by: claimant, runs: runs})
	if over := len(rec.claims) - maxRerunClaims; over > 0 {
		rec.claims = slices.Delete(rec.claims, 0, over)
	}
	return maps.Clone(runs), nil
}

// RerunsClaimed is what ClaimReruns gave claimant for build, and false
// when it claimed none (or the record forgot it). It changes nothing.
func (r *Registry) RerunsClaimed(ctx context.Context, repo events.Repo, pull, build int, claimant string) (map[string]int, bool, error) {
	if err := checkBuildKey(repo, pull, "-"); err != nil {
		return nil, false, err
	}
	if err := reach(ctx); err != nil {
		return nil, false, fmt.Errorf("reading re-runs of %s#%d build %d: %w", repo.FullName(), pull, build, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	rec, ok := r.reruns[buildID{pullID{repo, pull}, build}]
	if !ok {
		return nil, false, nil
	}
	runs, ok := rec.claimed(claimant)
	return maps.Clone(runs), ok, nil
}

func (rec *rerunRecord) claimed(claimant string) (map[string]int, bool) {
	if i := slices.IndexFunc(rec.claims, func(c rerunClaim) bool { return c.by == claimant }); i >= 0 {
		return rec.claims[i].runs, true
	}
	return nil, false
}
