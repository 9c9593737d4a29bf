package events

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/yourci/yourci/pkg/pause"
)

// claimAttempts bounds compare-and-set retries in ClaimBuild. Each retry
// means another box claimed a build of the same pull request in between;
// a hundred in a row means something is wrong.
const claimAttempts = 100

// pullRecord is the key-value entry for one pull request, holding both the
// counter and the head commits built, so that one compare-and-set covers
// "is this commit built?" and "take the next number".
type pullRecord struct {
	Last int            `json:"last"`
	SHAs map[string]int `json:"shas"`
	// Claims says, per head commit, which message claimed its latest build
	// and whether that build's tests are all queued.
	Claims map[string]shaClaim `json:"claims,omitempty"`
}

type shaClaim struct {
	By     string `json:"by"`
	Queued bool   `json:"queued,omitempty"`
}

// Claim is a head commit's build as ClaimBuildFor found or made it.
type Claim struct {
	Build int
	// Mine says the caller holds the build and must (go on to) queue its
	// tests: the call made it, or the same claimant made it earlier and
	// has not marked it queued (a redelivered message whose handler died).
	Mine bool
	// Fresh says this call allocated the number.
	Fresh bool
	// Queued says the build's tests were all queued (MarkQueued).
	Queued bool
}

// pullKey is the record's key: pull.<owner>.<repo>.<number>, names encoded.
func pullKey(repo Repo, pull int) string {
	return "pull." + EncodeToken(repo.Owner) + "." + EncodeToken(repo.Name) + "." + strconv.Itoa(pull)
}

// ClaimBuild is ClaimBuildFor with no claimant: fresh is true when this
// call allocated the number.
func (r *Registry) ClaimBuild(ctx context.Context, repo Repo, pull int, sha string, rebuild bool) (build int, fresh bool, err error) {
	c, err := r.ClaimBuildFor(ctx, repo, pull, sha, "", rebuild)
	return c.Build, c.Fresh, err
}

// ClaimBuildFor returns the build of head commit sha of a pull request for
// claimant, the identity of the message asking (its MsgID). If sha
// already has a build, that build is returned, Mine only when the same
// claimant made it and has not marked it queued, so a redelivered message
// carries on with its own build while any other message for the commit
// builds nothing. Otherwise, or with rebuild, it allocates the pull
// request's next number (1, 2, 3, ... with no gaps, atomically across
// every box sharing the server). Numbers are kept for as long as the bucket
// lives, beyond any restart.
func (r *Registry) ClaimBuildFor(ctx context.Context, repo Repo, pull int, sha, claimant string, rebuild bool) (Claim, error) {
	if err := checkBuildKey(repo, pull, sha); err != nil {
		return Claim{}, err
	}
	key := pullKey(repo, pull)
	for attempt := 1; attempt <= claimAttempts; attempt++ {
		rec, rev, err := r.loadPull(ctx, key)
		if err != nil {
			return Claim{}, fmt.Errorf("claiming build of %s#%d at %s: %w", repo.FullName(), pull, sha, err)
		}
		if n, ok := rec.SHAs[sha]; ok {
			c := rec.Claims[sha]
			if claimant != "" && c.By == claimant {
				return Claim{Build: n, Mine: !c.Queued, Queued: c.Queued}, nil
			}
			if !rebuild {
				return Claim{Build: n, Queued: c.Queued}, nil
			}
		}
		rec.Last++
		rec.SHAs[sha] = rec.Last
		rec.Claims[sha] = shaClaim{By: claimant}
		err = r.storeJSON(ctx, key, rec, rev)
		if err == nil {
			return Claim{Build: rec.Last, Mine: true, Fresh: true}, nil
		}
		if !errors.Is(err, errConflict) {
			return Claim{}, fmt.Errorf("claiming build of %s#%d at %s: %w", repo.FullName(), pull, sha, err)
		}
		// Another claim won the race: read again, after a short random
		// pause so that racing claimers spread out.
		if err := pause.For(ctx, raceWait(attempt)); err != nil {
			return Claim{}, fmt.Errorf("claiming build of %s#%d at %s: %w", repo.FullName(), pull, sha, err)
		}
	}
	return Claim{}, fmt.Errorf("claiming build of %s#%d at %s: lost %d races in a row", repo.FullName(), pull, sha, claimAttempts)
}

// MarkQueued records that every test of build, the latest of sha, is
// queued: a redelivery of the message that claimed it then has nothing
// left to do.
func (r *Registry) MarkQueued(ctx context.Context, repo Repo, pull int, sha string, build int) error {
	if err := checkBuildKey(repo, pull, sha); err != nil {
		return err
	}
	key := pullKey(repo, pull)
	for attempt := 1; attempt <= claimAttempts; attempt++ {
		rec, rev, err := r.loadPull(ctx, key)
		if err != nil {
			return fmt.Errorf("marking build %d of %s#%d queued: %w", build, repo.FullName(), pull, err)
		}
		if rec.SHAs[sha] != build {
			return nil // a rebuild has taken over the commit
		}
		c := rec.Claims[sha]
		c.Queued = true
		rec.Claims[sha] = c
		err = r.storeJSON(ctx, key, rec, rev)
		if err == nil {
			return nil
		}
		if !errors.Is(err, errConflict) {
			return fmt.Errorf("marking build %d of %s#%d queued: %w", build, repo.FullName(), pull, err)
		}
		if err := pause.For(ctx, raceWait(attempt)); err != nil {
			return fmt.Errorf("marking build %d of %s#%d queued: %w", build, repo.FullName(), pull, err)
		}
	}
	return fmt.Errorf("marking build %d of %s#%d queued: lost %d races in a row", build, repo.FullName(), pull, claimAttempts)
}

// BuildOf returns the latest build number of head commit sha, and false
// when it has none.
func (r *Registry) BuildOf(ctx context.Context, repo Repo, pull int, sha string) (build int, ok bool, err error) {
	if err := checkBuildKey(repo, pull, sha); err != nil {
		return 0, false, err
	}
	rec, _, err := r.loadPull(ctx, pullKey(repo, pull))
	if err != nil {
		return 0, false, fmt.Errorf("looking up build of %s#%d at %s: %w", repo.FullName(), pull, sha, err)
	}
	build, ok = rec.SHAs[sha]
	return build, ok, nil
}

// BuildClaim is BuildOf with the claimant of that build (the id of the
// message that claimed it, as given to ClaimBuildFor): a command that
// queued a rebuild knows its own build when its message comes again.
func (r *Registry) BuildClaim(ctx context.Context, repo Repo, pull int, sha string) (build int, by string, ok bool, err error) {
	if err := checkBuildKey(repo, pull, sha); err != nil {
		return 0, "", false, err
	}
	rec, _, err := r.loadPull(ctx, pullKey(repo, pull))
	if err != nil {
		return 0, "", false, fmt.Errorf("looking up build of %s#%d at %s: %w", repo.FullName(), pull, sha, err)
	}
	build, ok = rec.SHAs[sha]
	return build, rec.Claims[sha].By, ok, nil
}

// checkBuildKey refuses what cannot name a pull request's head: the
// repository and number by the one definition (Repo.Validate,
// ValidatePull); the sha only when empty, as records are keyed by it and
// never put into a path. A merge group's number must be its head's.
func checkBuildKey(repo Repo, pull int, sha string) error {
	errs := []error{repo.Validate(), ValidatePull(pull), validateGroupHead(pull, sha)}
	if sha == "" {
		errs = append(errs, fmt.Errorf("empty head sha: %w", ErrInvalidEvent))
	}
	return errors.Join(errs...)
}

// loadPull reads a record and its revision; a missing record is empty with
// revision 0.
func (r *Registry) loadPull(ctx context.Context, key string) (pullRecord, uint64, error) {
	var rec pullRecord
	rev, err := r.loadJSON(ctx, key, &rec)
	if rec.SHAs == nil {
		rec.SHAs = map[string]int{}
	}
	if rec.Claims == nil {
		rec.Claims = map[string]shaClaim{}
	}
	return rec, rev, err
}
