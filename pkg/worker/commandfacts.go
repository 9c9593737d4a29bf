package worker

import (
	"context"
	"errors"
	"fmt"

	"github.com/yourci/yourci/pkg/artifacts"
	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/pipeline"
)

// gather looks up fact need for f's commands, as inst sees GitHub. An
// error is the lookup's: planCommands refuses on facts, never on errors.
func (h *commandHandler) gather(ctx context.Context, inst Installation, f *commandFacts, need fact) error {
	ev := f.ev
	switch need {
	case factWriter:
		ok, err := h.writers.canWrite(ctx, inst.Permissions, ev.Repo.Owner, ev.Repo.Name, ev.Author)
		f.writer = &ok
		return err
	case factSuitePulls:
		recs, err := h.records.RecentBuilds(ctx, ev.Repo, recentBuilds)
		if err != nil {
			return fmt.Errorf("reading the build records of %s: %w", ev.Repo.FullName(), err)
		}
		f.suitePulls, f.suitePullsKnown = pullsBuilding(recs, ev.Button.SHA), true
	case factHead:
		head, err := readHead(ctx, inst, ev.Repo, f.pull())
		f.head = head
		return err
	case factBuild:
		n, by, ok, err := h.reruns.BuildClaim(ctx, ev.Repo, f.pull(), f.head.sha)
		if err != nil {
			return fmt.Errorf("looking up the build of %s: %w", f.head.sha, err)
		}
		if !ok {
			n, by = 0, ""
		}
		f.build, f.buildBy = &n, by
	case factTests:
		return h.gatherTests(ctx, inst, f)
	case factBase:
		return h.gatherBase(ctx, inst, f)
	case factOwnReruns:
		f.ownRuns, f.ownRunsKnown = map[int]map[string]int{}, true
		for i := range ev.Commands {
			runs, ok, err := h.reruns.RerunsClaimed(ctx, ev.Repo, f.pull(), *f.build, rerunClaimant(ev, i))
			if err != nil {
				return fmt.Errorf("reading the re-runs this message numbered: %w", err)
			}
			if ok {
				f.ownRuns[i] = runs
			}
		}
	case factSeen:
		seen, err := h.ledger.SeeHead(ctx, ev.Repo, f.pull(), f.head.sha, h.now())
		if err != nil {
			return fmt.Errorf("reading when head %.7s was first seen: %w", f.head.sha, err)
		}
		f.seen = &seen
	case factApproval:
		rec, err := h.approvals.ApprovalOf(ctx, ev.Repo, f.pull())
		if err != nil {
			return fmt.Errorf("reading approval: %w", err)
		}
		f.approval = &rec
	case factAuthorWrites:
		ok, err := h.writers.canWrite(ctx, inst.Permissions, ev.Repo.Owner, ev.Repo.Name, f.head.author)
		f.authorWrites = &ok
		return err
	default:
		return permanent(fmt.Errorf("worker: no way to look up %v", need))
	}
	return nil
}

// readHead reads the pull request as it is now. A head that is not a
// commit id is a permanent error: GitHub will not send another.
func readHead(ctx context.Context, inst Installation, repo events.Repo, number int) (*headFacts, error) {
	pull, err := getPull(ctx, inst.Pulls, repo, number)
	if err != nil {
		return nil, err
	}
	pr := pull.pr
	h := &headFacts{state: pr.GetState(), sha: pr.GetHead().GetSHA(), author: pr.GetUser().GetLogin(),
		baseRef: pr.GetBase().GetRef(), cloneURL: pr.GetBase().GetRepo().GetCloneURL(), raw: pull.raw}
	if err := events.ValidateSHA(h.sha); h.state == "open" && err != nil {
		return nil, permanent(fmt.Errorf("head of pull request %s#%d: %w", repo.FullName(), number, err))
	}
	return h, nil
}

// gatherTests learns the target build's tests and their states in its
// record. A broken .yci.py is a fact (the build has no tests), not an
// error.
func (h *commandHandler) gatherTests(ctx context.Context, inst Installation, f *commandFacts) error {
	b := build(f.ev.Repo, f.pull(), *f.build)
	states, base, err := h.recordFacts(ctx, buildKey(f.ev.Repo, b.Pull, b.Number))
	if err != nil {
		return err
	}
	tests, err := h.tests.buildTests(ctx, inst, b, f.head, base)
	var cfgErr *pipeline.ConfigError
	if errors.As(err, &cfgErr) {
		f.tests = &buildTests{broken: cfgErr.Error()}
		return nil
	}
	if err != nil {
		return err
	}
	f.tests = &buildTests{tests: tests, states: states, tested: tested(f.head.sha, base)}
	if base != nil {
		f.tests.baseSHA = base.SHA
	}
	return nil
}

// gatherBase learns the base the target build merged, from its record,
// and, when it merged one, where the pull request's base branch is now:
// in the mirror, fetched first (a GitHub API read would cost the rate
// limit and could disagree with what a build fetches).
func (h *commandHandler) gatherBase(ctx context.Context, inst Installation, f *commandFacts) error {
	k := buildKey(f.ev.Repo, f.pull(), *f.build)
	rec, err := h.records.BuildRecord(ctx, k)
	if err != nil && !errors.Is(err, events.ErrNoRecord) {
		return fmt.Errorf("reading the record of build %d: %w", k.Build, err)
	}
	b := &baseFacts{tested: rec.Base}
	if t := rec.Base; t != nil && t.Merged && !t.Queued && t.SHA != "" {
		tip, err := h.tips.baseTip(ctx, inst, f.ev.Repo, f.head)
		switch {
		case errors.Is(err, artifacts.ErrNoBase):
			// The branch is gone: a new build could not merge into
			// it either; /retest re-runs on the old merge.
		case err != nil:
			return err
		default:
			b.tip = tip
		}
	}
	f.base = b
	return nil
}

// baseTipper tells where a pull request's base branch is now.
type baseTipper interface {
	// baseTip is the tip of head.baseRef, fetched just now; an error
	// wrapping artifacts.ErrNoBase when the branch is not there.
	baseTip(ctx context.Context, inst Installation, repo events.Repo, head *headFacts) (string, error)
}

func (c checkoutTests) baseTip(ctx context.Context, inst Installation, repo events.Repo, head *headFacts) (string, error) {
	if err := c.ws.UpdateMirror(ctx, repo.Owner, repo.Name, head.cloneURL, inst.Git); err != nil {
		return "", fmt.Errorf("updating mirror: %w", err)
	}
	tip, err := c.ws.BranchTip(ctx, repo.Owner, repo.Name, head.baseRef)
	if err != nil {
		return "", fmt.Errorf("reading the tip of %s: %w", head.baseRef, err)
	}
	return tip, nil
}

// tested is the commit a build of head checks out for its tests: its
// recorded merge, or head itself (no merge to make, or a build from before
// builds merged).
func tested(head string, base *events.TestedBase) string {
	if base != nil && base.Merged && base.Merge != "" {
		return base.Merge
	}
	return head
}

// testLister gives the tests of build b of a head; a broken .yci.py is a
// *pipeline.ConfigError.
type testLister interface {
	buildTests(ctx context.Context, inst Installation, b artifacts.Build, head *headFacts, base *events.TestedBase) ([]pipeline.Test, error)
}

// checkoutTests evaluates .yci.py again, in the build's checkout (made on
// this box if another box built it), to learn its tests' names and specs.
// The evaluation is the build's own: same commit (its merge of the head
// into the recorded base, made again where this box lacks it), same build
// number, same changed files, same pull request as tested.
type checkoutTests struct {
	ws   *artifacts.Workspace
	eval *pipeline.Evaluator
}

func (c checkoutTests) buildTests(ctx context.Context, inst Installation, b artifacts.Build, head *headFacts, base *events.TestedBase) ([]pipeline.Test, error) {
	if !c.ws.HasCommit(ctx, b.Owner, b.Repo, head.sha) || (base != nil && !c.ws.HasCommit(ctx, b.Owner, b.Repo, base.SHA)) {
		if err := c.ws.UpdateMirror(ctx, b.Owner, b.Repo, head.cloneURL, inst.Git); err != nil {
			return nil, fmt.Errorf("updating mirror: %w", err)
		}
	}
	sha, raw, change := tested(head.sha, base), head.raw, (*pipeline.Change)(nil)
	if base != nil {
		m, err := c.ws.RemakeMerge(ctx, b.Owner, b.Repo, head.sha, base.SHA, sha)
		if err != nil {
			return nil, fmt.Errorf("merging %.7s into %.7s again: %w", head.sha, base.SHA, err)
		}
		change = &pipeline.Change{Files: m.Changes}
		if raw, err = pullAsTested(raw, base.SHA); err != nil {
			return nil, permanent(err)
		}
	}
	src, err := c.ws.SourceDir(b)
	if err != nil {
		return nil, permanent(err)
	}
	if err := c.ws.Checkout(ctx, b, sha, head.baseRef, src); err != nil {
		return nil, fmt.Errorf("checking out %s: %w", sha, err)
	}
	tests, err := c.eval.EvaluateChange(ctx, src, b.Number, raw, change)
	var cfgErr *pipeline.ConfigError
	if err != nil && !errors.As(err, &cfgErr) {
		return nil, fmt.Errorf("evaluating .yci.py of build %d: %w", b.Number, err)
	}
	return tests, err
}
