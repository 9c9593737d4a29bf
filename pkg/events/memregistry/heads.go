package memregistry

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/yourci/yourci/pkg/events"
)

type commentID struct {
	pullID
	comment int64
	digest  string
}

type replyID struct {
	pullID
	user string
}

// replyGrant is the last reply allowed to one person on one pull request.
type replyGrant struct {
	by string
	at time.Time
}

// SeeHead records that head commit sha is seen at now, unless it was seen
// before, and returns when it was first seen.
func (r *Registry) SeeHead(ctx context.Context, repo events.Repo, pull int, sha string, now time.Time) (time.Time, error) {
	if err := errors.Join(checkBuildKey(repo, pull, sha), events.ValidateSHA(sha)); err != nil {
		return time.Time{}, err
	}
	if err := reach(ctx); err != nil {
		return time.Time{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	id := headID{pullID{repo, pull}, sha}
	if at, ok := r.seen[id]; ok {
		return at, nil
	}
	r.seen[id] = now.UTC()
	return now.UTC(), nil
}

// ClaimComment claims the running of one text (digest) of comment's
// commands for claimant, and reports whether claimant holds it: the first
// claimant does, for good.
func (r *Registry) ClaimComment(ctx context.Context, repo events.Repo, pull int, comment int64, digest, claimant string) (bool, error) {
	if err := errors.Join(repo.Validate(), events.ValidatePull(pull)); err != nil {
		return false, err
	}
	if comment < 1 || digest == "" || claimant == "" {
		return false, fmt.Errorf("claiming comment %d with digest %q for %q: %w", comment, digest, claimant, events.ErrInvalidEvent)
	}
	if err := reach(ctx); err != nil {
		return false, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	id := commentID{pullID{repo, pull}, comment, digest}
	if by, ok := r.comments[id]; ok {
		return by == claimant, nil
	}
	r.comments[id] = claimant
	return true, nil
}

// AllowReply decides whether claimant may reply to user on a pull request
// at now: yes when no reply to them there was allowed within every before
// now, or the last one allowed was claimant's own; a yes is recorded.
func (r *Registry) AllowReply(ctx context.Context, repo events.Repo, pull int, user, claimant string, now time.Time, every time.Duration) (bool, error) {
	if err := errors.Join(repo.Validate(), events.ValidatePull(pull), events.ValidateOwner(user)); err != nil {
		return false, err
	}
	if err := reach(ctx); err != nil {
		return false, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	id := replyID{pullID{repo, pull}, user}
	if g, ok := r.replies[id]; ok {
		switch {
		case g.by == claimant:
			return true, nil
		case now.Sub(g.at) < every:
			return false, nil
		}
	}
	r.replies[id] = replyGrant{by: claimant, at: now.UTC()}
	return true, nil
}

// RecordHead merges report rep into the pull request's head record by
// events.HeadRecord.Merge and returns the record as it stands after, as
// events.Heads.RecordHead does.
func (r *Registry) RecordHead(ctx context.Context, repo events.Repo, pull int, rep events.HeadRecord) (events.HeadRecord, error) {
	if err := errors.Join(checkBuildKey(repo, pull, rep.SHA), events.ValidateSHA(rep.SHA)); err != nil {
		return events.HeadRecord{}, err
	}
	if rep.UpdatedAt.IsZero() {
		return events.HeadRecord{}, fmt.Errorf("head %.7s of %s#%d has no updated_at: %w", rep.SHA, repo.FullName(), pull, events.ErrInvalidEvent)
	}
	if err := reach(ctx); err != nil {
		return events.HeadRecord{}, err
	}
	rep.UpdatedAt = rep.UpdatedAt.UTC()
	r.mu.Lock()
	defer r.mu.Unlock()
	cur, found := r.heads[pullID{repo, pull}]
	next, changed := cur.Merge(found, rep)
	if changed {
		r.heads[pullID{repo, pull}] = next
	}
	return next, nil
}

// HeadOf returns the pull request's head record; ok is false when none
// was recorded.
func (r *Registry) HeadOf(ctx context.Context, repo events.Repo, pull int) (events.HeadRecord, bool, error) {
	if err := errors.Join(repo.Validate(), events.ValidatePull(pull)); err != nil {
		return events.HeadRecord{}, false, err
	}
	if err := reach(ctx); err != nil {
		return events.HeadRecord{}, false, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	rec, ok := r.heads[pullID{repo, pull}]
	return rec, ok, nil
}
