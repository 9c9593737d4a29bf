package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/yourci/yourci/pkg/artifacts"
	"github.com/yourci/yourci/pkg/events"
)

// maxRecordedConflicts bounds the conflicting paths a build record keeps;
// the log lists them all.
const maxRecordedConflicts = 20

// baseMerger makes the merge each build tests and records its base in the
// build's record, so that every box and every redelivery tests the same
// commit. Its methods may be called concurrently.
type baseMerger struct {
	workspace mergeWorkspace
	records   mergeRecords
	// headOnly is Options.HeadOnly: heads are tested alone, unmerged.
	headOnly bool
}

// mergeWorkspace makes merges in the mirror; artifacts.Workspace has it.
type mergeWorkspace interface {
	MergeBuild(ctx context.Context, owner, repo, head, base string, merge bool) (artifacts.Merged, error)
	RemakeMerge(ctx context.Context, owner, repo, head, base, want string) (artifacts.Merged, error)
}

// mergeRecords reads and changes a build's record; BuildRecords has it.
type mergeRecords interface {
	BuildRecord(ctx context.Context, k events.BuildKey) (events.BuildRecord, error)
	UpdateBuild(ctx context.Context, k events.BuildKey, change func(*events.BuildRecord) error) (events.BuildRecord, error)
}

// merge decides what build k tests of head: head merged into the
// tip of baseRef in the mirror (just updated), or head alone when the
// worker tests heads alone. The base it merged is recorded at once, before
// anything is checked out: a redelivered build (after a crash) makes the
// same merge again from the record, whatever the base did meanwhile, so
// its pin and checkouts stay valid; a fresh claim (fresh) has no such
// record to read (see mergeFacts). A merge group's head is GitHub's merge
// already, made from baseSHA (the group's base commit): it is tested as it
// is, its changes counted from baseSHA, whatever the branch did since.
func (g *baseMerger) merge(ctx context.Context, k events.BuildKey, head, baseRef, baseSHA string, fresh bool) (artifacts.Merged, error) {
	f := mergeFacts{head: head, group: events.IsGroup(k.Pull), headOnly: g.headOnly, fresh: fresh}
	plan := planMerge(f)
	if plan.step == mergeReadRecord {
		rec, err := g.records.BuildRecord(ctx, k)
		if err != nil && !errors.Is(err, events.ErrNoRecord) {
			return artifacts.Merged{}, fmt.Errorf("reading the record of build %s: %w", k, err)
		}
		f.read, f.recorded = true, rec.Base
		plan = planMerge(f)
	}
	switch plan.step {
	case mergeRemake:
		m, err := g.workspace.RemakeMerge(ctx, k.Repo.Owner, k.Repo.Name, head, plan.base, plan.want)
		if err != nil {
			return artifacts.Merged{}, classifyPrepare(fmt.Errorf("merging %.7s into %.7s again: %w", head, plan.base, err))
		}
		return m, nil
	case mergeGroup:
		return g.mergeGroup(ctx, k, head, baseRef, baseSHA)
	}
	m, err := g.workspace.MergeBuild(ctx, k.Repo.Owner, k.Repo.Name, head, baseRef, plan.merge)
	if errors.Is(err, artifacts.ErrNoBase) || errors.Is(err, artifacts.ErrInvalid) {
		return artifacts.Merged{}, permanent(fmt.Errorf("merging %.7s into %s: %w", head, baseRef, err))
	}
	if err != nil {
		return artifacts.Merged{}, classifyPrepare(fmt.Errorf("merging %.7s into %s: %w", head, baseRef, err))
	}
	_, err = g.records.UpdateBuild(ctx, k, func(r *events.BuildRecord) error {
		r.Base = testedBase(baseRef, m, plan.merge)
		return nil
	})
	if err != nil {
		return artifacts.Merged{}, fmt.Errorf("recording the base of build %s: %w", k, err)
	}
	return m, nil
}

// mergeGroup is merge for a merge group: no merge, the head
// compared with the group's base commit, and that base recorded.
func (g *baseMerger) mergeGroup(ctx context.Context, k events.BuildKey, head, baseRef, baseSHA string) (artifacts.Merged, error) {
	if err := events.ValidateSHA(baseSHA); err != nil {
		return artifacts.Merged{}, permanent(fmt.Errorf("merge group %.7s has no base commit: %w", head, err))
	}
	m, err := g.workspace.RemakeMerge(ctx, k.Repo.Owner, k.Repo.Name, head, baseSHA, head)
	if err != nil {
		return artifacts.Merged{}, classifyPrepare(fmt.Errorf("comparing merge group %.7s with its base %.7s: %w", head, baseSHA, err))
	}
	_, err = g.records.UpdateBuild(ctx, k, func(r *events.BuildRecord) error {
		r.Base = testedBase(baseRef, m, false)
		r.Base.Queued = true
		return nil
	})
	if err != nil {
		return artifacts.Merged{}, fmt.Errorf("recording the base of build %s: %w", k, err)
	}
	return m, nil
}

// testedBase is what a build's record keeps of its merge.
func testedBase(ref string, m artifacts.Merged, merged bool) *events.TestedBase {
	b := &events.TestedBase{Ref: ref, SHA: m.Base, Merged: merged, Behind: m.Behind}
	if merged {
		b.Merge = m.SHA
	}
	if len(m.Conflicts) > 0 {
		b.Conflicts = m.Conflicts[:min(len(m.Conflicts), maxRecordedConflicts)]
	}
	return b
}

// recordedChanges is what a build record keeps of the changed files.
func recordedChanges(files []string) *events.Changes {
	return &events.Changes{Files: files[:min(len(files), events.MaxRecordedChanges)], Total: len(files)}
}

// pullAsTested is the pull request .yci.py sees: as GitHub sent it, but
// with base.sha the base commit the build tested, which GitHub's copy may
// not be (the base moved since GitHub wrote it, or since the build read
// it). Every other field, nulls included, is kept as it came.
func pullAsTested(raw json.RawMessage, baseSHA string) (json.RawMessage, error) {
	if baseSHA == "" {
		return raw, nil
	}
	var pull map[string]json.RawMessage
	if err := json.Unmarshal(raw, &pull); err != nil {
		return nil, fmt.Errorf("reading the pull request: %w", err)
	}
	var base map[string]json.RawMessage
	if b, ok := pull["base"]; ok && string(b) != "null" {
		if err := json.Unmarshal(b, &base); err != nil {
			return nil, fmt.Errorf("reading the pull request's base: %w", err)
		}
	}
	if base == nil {
		base = map[string]json.RawMessage{}
	}
	sha, err := json.Marshal(baseSHA)
	if err != nil {
		return nil, err
	}
	base["sha"] = sha
	if pull["base"], err = json.Marshal(base); err != nil {
		return nil, err
	}
	return json.Marshal(pull)
}
