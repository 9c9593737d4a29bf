package events

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/yourci/yourci/pkg/pause"
)

// maxRerunClaims bounds how many claimants a build's re-run record
// remembers: enough for the redeliveries of any recent command, and a
// record stays small however often a build is re-run.
const maxRerunClaims = 64

// rerunRecord is the key-value entry numbering one build's re-runs, per
// test, and remembering which claimant was given which numbers.
type rerunRecord struct {
	Last   map[string]int `json:"last"`
	Claims []rerunClaim   `json:"claims,omitempty"`
}

type rerunClaim struct {
	By   string         `json:"by"`
	Runs map[string]int `json:"runs"`
}

// rerunKey is the record's key: rerun.<owner>.<repo>.<pull>.<build>.
func rerunKey(repo Repo, pull, build int) string {
	return "rerun." + EncodeToken(repo.Owner) + "." + EncodeToken(repo.Name) + "." +
		strconv.Itoa(pull) + "." + strconv.Itoa(build)
}

// ClaimReruns numbers a new re-run of each of tests of a build: 1 for a
// test's first re-run, then 2, 3, ... atomically across every box. The
// same claimant (a command message's id) asking again, as a redelivered
// message does, gets the numbers it was given before, so a re-run is never
// queued twice under two numbers. The result maps each test to its number.
func (rr *Reruns) ClaimReruns(ctx context.Context, repo Repo, pull, build int, tests []string, claimant string) (map[string]int, error) {
	if err := checkBuildKey(repo, pull, "-"); err != nil {
		return nil, err
	}
	if build < 1 || claimant == "" || len(tests) == 0 {
		return nil, fmt.Errorf("claiming re-runs of build %d by %q of %d tests: %w", build, claimant, len(tests), ErrInvalidEvent)
	}
	key := rerunKey(repo, pull, build)
	for attempt := 1; attempt <= claimAttempts; attempt++ {
		rec, rev, err := rr.loadReruns(ctx, key)
		if err != nil {
			return nil, fmt.Errorf("claiming re-runs of %s#%d build %d: %w", repo.FullName(), pull, build, err)
		}
		if i := slices.IndexFunc(rec.Claims, func(c rerunClaim) bool { return c.By == claimant }); i >= 0 {
			return rec.Claims[i].Runs, nil
		}
		runs := make(map[string]int, len(tests))
		for _, t := range tests {
			rec.Last[t]++
			runs[t] = rec.Last[t]
		}
		rec.Claims = append(rec.Claims, rerunClaim{By: claimant, Runs: runs})
		if over := len(rec.Claims) - maxRerunClaims; over > 0 {
			rec.Claims = rec.Claims[over:]
		}
		err = rr.storeJSON(ctx, key, rec, rev)
		if err == nil {
			return runs, nil
		}
		if !errors.Is(err, errConflict) {
			return nil, fmt.Errorf("claiming re-runs of %s#%d build %d: %w", repo.FullName(), pull, build, err)
		}
		if err := pause.For(ctx, raceWait(attempt)); err != nil {
			return nil, fmt.Errorf("claiming re-runs of %s#%d build %d: %w", repo.FullName(), pull, build, err)
		}
	}
	return nil, fmt.Errorf("claiming re-runs of %s#%d build %d: lost %d races in a row", repo.FullName(), pull, build, claimAttempts)
}

// RerunsClaimed is what ClaimReruns gave claimant for build, and false
// when it claimed none (or so long ago that the record forgot it). It
// changes nothing: a command delivered again learns which re-runs it
// numbered before it failed, to queue those again rather than refuse
// them as busy.
func (rr *Reruns) RerunsClaimed(ctx context.Context, repo Repo, pull, build int, claimant string) (map[string]int, bool, error) {
	if err := checkBuildKey(repo, pull, "-"); err != nil {
		return nil, false, err
	}
	rec, _, err := rr.loadReruns(ctx, rerunKey(repo, pull, build))
	if err != nil {
		return nil, false, fmt.Errorf("reading re-runs of %s#%d build %d: %w", repo.FullName(), pull, build, err)
	}
	if i := slices.IndexFunc(rec.Claims, func(c rerunClaim) bool { return c.By == claimant }); i >= 0 {
		return rec.Claims[i].Runs, true, nil
	}
	return nil, false, nil
}

// loadReruns reads a re-run record and its revision; a missing record is
// empty with revision 0.
func (rr *Reruns) loadReruns(ctx context.Context, key string) (rerunRecord, uint64, error) {
	var rec rerunRecord
	rev, err := rr.loadJSON(ctx, key, &rec)
	if rec.Last == nil {
		rec.Last = map[string]int{}
	}
	return rec, rev, err
}
