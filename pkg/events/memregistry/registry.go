// Package memregistry is an in-memory, state-based stand-in for the
// registry of pkg/events: the build numbers of head commits and who
// claimed them (events.Registry's ClaimBuildFor, MarkQueued, BuildClaim),
// approvals, re-run numbers, first sightings of heads, comment and reply
// claims, and the head records of events.Heads. It keeps the state the
// build bucket keeps and answers as the real registry does, compare-and-set
// outcomes included, so that handlers' decisions are tested in
// milliseconds without a NATS server; contract_test.go runs the same calls
// against both and requires the same answers. It is for tests; nothing
// survives the process.
package memregistry

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/yourci/yourci/pkg/events"
)

// Registry keeps a registry's state in memory. Its methods may be called
// concurrently; each change is one step under a lock, which is what the
// real registry's compare-and-set loops amount to. The zero value is not
// usable: call New.
//
// It has as many methods as the parts it stands in for together
// (events.Registry with its Approvals, Reruns and Comments, and the head
// records of events.Heads): one fake, so that a handler test seeds and
// reads one state, as the real parts share one bucket.
type Registry struct {
	// Now is the clock Approve and AskApproval stamp records with, as the
	// real registry stamps them with its box's clock. Set it before use.
	Now func() time.Time

	mu        sync.Mutex
	pulls     map[pullID]*pullRecord
	approvals map[pullID]events.Approval
	reruns    map[buildID]*rerunRecord
	seen      map[headID]time.Time
	comments  map[commentID]string
	replies   map[replyID]replyGrant
	heads     map[pullID]events.HeadRecord
	// failBuilds, while set, fails every call on build numbers.
	failBuilds error
}

type pullID struct {
	repo events.Repo
	pull int
}

type buildID struct {
	pullID
	build int
}

type headID struct {
	pullID
	sha string
}

// pullRecord is one pull request's build numbers, as the real registry's
// pull.<owner>.<repo>.<n> entry holds them.
type pullRecord struct {
	last   int
	shas   map[string]int
	claims map[string]shaClaim
}

type shaClaim struct {
	by     string
	queued bool
}

// New returns an empty Registry on the real clock.
func New() *Registry {
	return &Registry{Now: time.Now,
		pulls: map[pullID]*pullRecord{}, approvals: map[pullID]events.Approval{},
		reruns: map[buildID]*rerunRecord{}, seen: map[headID]time.Time{},
		comments: map[commentID]string{}, replies: map[replyID]replyGrant{},
		heads: map[pullID]events.HeadRecord{}}
}

// ErrUnreachable is what a test may pass to FailBuilds.
var ErrUnreachable = errors.New("registry unreachable")

// FailBuilds makes every call on build numbers (ClaimBuild, ClaimBuildFor,
// MarkQueued, BuildOf, BuildClaim) fail with err, changing nothing, until
// it is called with nil: the build bucket cannot be reached, while the
// rest of the registry answers, so a test shows what a handler does when
// its claim fails.
func (r *Registry) FailBuilds(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failBuilds = err
}

// ClaimBuild is ClaimBuildFor with no claimant, as events.Registry's.
func (r *Registry) ClaimBuild(ctx context.Context, repo events.Repo, pull int, sha string, rebuild bool) (build int, fresh bool, err error) {
	c, err := r.ClaimBuildFor(ctx, repo, pull, sha, "", rebuild)
	return c.Build, c.Fresh, err
}

// ClaimBuildFor returns the build of head commit sha for claimant, as
// events.Registry.ClaimBuildFor does: a head already built keeps its
// build (Mine only for the claimant that made it and has not marked it
// queued); a new head, or any head with rebuild, takes the pull request's
// next number.
func (r *Registry) ClaimBuildFor(ctx context.Context, repo events.Repo, pull int, sha, claimant string, rebuild bool) (events.Claim, error) {
	if err := checkBuildKey(repo, pull, sha); err != nil {
		return events.Claim{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.reachBuilds(ctx); err != nil {
		return events.Claim{}, fmt.Errorf("claiming build of %s#%d at %s: %w", repo.FullName(), pull, sha, err)
	}
	rec := r.pull(pullID{repo, pull})
	if n, ok := rec.shas[sha]; ok {
		c := rec.claims[sha]
		if claimant != "" && c.by == claimant {
			return events.Claim{Build: n, Mine: !c.queued, Queued: c.queued}, nil
		}
		if !rebuild {
			return events.Claim{Build: n, Queued: c.queued}, nil
		}
	}
	rec.last++
	rec.shas[sha] = rec.last
	rec.claims[sha] = shaClaim{by: claimant}
	return events.Claim{Build: rec.last, Mine: true, Fresh: true}, nil
}

// MarkQueued records that every test of build, the latest of sha, is
// queued; a build a rebuild has replaced is left alone, as
// events.Registry.MarkQueued leaves it.
func (r *Registry) MarkQueued(ctx context.Context, repo events.Repo, pull int, sha string, build int) error {
	if err := checkBuildKey(repo, pull, sha); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.reachBuilds(ctx); err != nil {
		return fmt.Errorf("marking build %d of %s#%d queued: %w", build, repo.FullName(), pull, err)
	}
	rec := r.pull(pullID{repo, pull})
	if rec.shas[sha] != build {
		return nil
	}
	c := rec.claims[sha]
	c.queued = true
	rec.claims[sha] = c
	return nil
}

// BuildOf returns the latest build number of head commit sha, and false
// when it has none.
func (r *Registry) BuildOf(ctx context.Context, repo events.Repo, pull int, sha string) (build int, ok bool, err error) {
	build, _, ok, err = r.BuildClaim(ctx, repo, pull, sha)
	return build, ok, err
}

// BuildClaim is BuildOf with the claimant of that build.
func (r *Registry) BuildClaim(ctx context.Context, repo events.Repo, pull int, sha string) (build int, by string, ok bool, err error) {
	if err := checkBuildKey(repo, pull, sha); err != nil {
		return 0, "", false, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.reachBuilds(ctx); err != nil {
		return 0, "", false, fmt.Errorf("looking up build of %s#%d at %s: %w", repo.FullName(), pull, sha, err)
	}
	rec, found := r.pulls[pullID{repo, pull}]
	if !found {
		return 0, "", false, nil
	}
	build, ok = rec.shas[sha]
	return build, rec.claims[sha].by, ok, nil
}

// HeadBuild is what the registry holds of a head commit's latest build.
type HeadBuild struct {
	Build int
	// By is the claimant that claimed it ("" for none given).
	By string
	// Queued says MarkQueued marked the build's tests all queued.
	Queued bool
}

// HeadBuild returns what the registry holds of sha's latest build, and
// false when sha has none, for tests to check what a handler left
// behind. It reads the state only: the real registry tells the same
// through ClaimBuildFor and BuildClaim, by changing nothing.
func (r *Registry) HeadBuild(repo events.Repo, pull int, sha string) (HeadBuild, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec, ok := r.pulls[pullID{repo, pull}]
	if !ok {
		return HeadBuild{}, false
	}
	n, ok := rec.shas[sha]
	c := rec.claims[sha]
	return HeadBuild{Build: n, By: c.by, Queued: c.queued}, ok
}

// reach stands for a round trip to the server: a done ctx fails it, as
// it fails the real registry's requests.
func reach(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("reaching the registry: %w", err)
	}
	return nil
}

// reachBuilds is reach for the build numbers, which FailBuilds fails
// too. r.mu is held.
func (r *Registry) reachBuilds(ctx context.Context) error {
	if r.failBuilds != nil {
		return r.failBuilds
	}
	return reach(ctx)
}

// pull returns id's record, made empty when it has none. r.mu is held.
func (r *Registry) pull(id pullID) *pullRecord {
	rec, ok := r.pulls[id]
	if !ok {
		rec = &pullRecord{shas: map[string]int{}, claims: map[string]shaClaim{}}
		r.pulls[id] = rec
	}
	return rec
}

// checkBuildKey refuses what events.Registry refuses as a head's key:
// an invalid repository or number, an empty sha, or a merge group whose
// number is not its head's.
func checkBuildKey(repo events.Repo, pull int, sha string) error {
	errs := []error{repo.Validate(), events.ValidatePull(pull)}
	if sha == "" {
		errs = append(errs, fmt.Errorf("empty head sha: %w", events.ErrInvalidEvent))
	}
	if events.IsGroup(pull) && sha != "" {
		switch n, err := events.GroupNumber(sha); {
		case err != nil:
			errs = append(errs, err)
		case n != pull:
			errs = append(errs, fmt.Errorf("merge group number %d is not head %.9s's: %w", pull, sha, events.ErrInvalidEvent))
		}
	}
	return errors.Join(errs...)
}
