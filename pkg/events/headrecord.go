package events

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// MaxPullLen bounds PullEvent.Pull, the pull request as its webhook
// carried it. GitHub's pull request objects are a few KiB (the body is at
// most 64 KiB of text, escaped); one larger than this is left out of the
// event and read from the API by the worker, so that an event stays well
// under NATS's 1 MB message limit.
const MaxPullLen = 256 << 10

// headRecordAttempts bounds compare-and-set retries in RecordHead: each
// retry means another delivery of the same pull request was recorded in
// between.
const headRecordAttempts = 100

// HeadRecord is a pull request's latest head as the webhooks (and API
// reads) that reported it said it, ordered by the pull request's
// updated_at. It answers "was this head superseded, or the pull closed?"
// without asking GitHub.
type HeadRecord struct {
	SHA string `json:"sha"`
	// Closed says the pull request closed; SHA is then its last head.
	Closed bool `json:"closed,omitempty"`
	// UpdatedAt is the pull request's updated_at in the report. The
	// forge stamps it to the second (GitHub does), so reports are
	// ordered by their second.
	UpdatedAt time.Time `json:"updated_at"`
	// Ambiguous says two reports of the same second disagreed (another
	// head, or open against closed): the record cannot tell which came
	// last, and only a read of the pull request can.
	Ambiguous bool `json:"ambiguous,omitempty"`
	// Read says the report is an API read of the pull request, which
	// settles an ambiguous second; a webhook's is false.
	Read bool `json:"read,omitempty"`
}

// headSecond is the precision reports are compared at: the forge's.
func headSecond(t time.Time) time.Time { return t.UTC().Truncate(time.Second) }

// Merge returns the record after report r arrives at record cur (found
// says there was one): a later second replaces it, an earlier one leaves
// it, and the same second with a different answer makes it Ambiguous,
// unless r is an API read, which settles the second. changed says the
// result differs from cur. It is pure.
func (cur HeadRecord) Merge(found bool, r HeadRecord) (next HeadRecord, changed bool) {
	r.Ambiguous = false
	if !found {
		return r, true
	}
	was, now := headSecond(cur.UpdatedAt), headSecond(r.UpdatedAt)
	switch {
	case now.After(was):
		return r, true
	case now.Before(was):
		return cur, false
	case r.Read:
		return r, r != cur
	case r.SHA == cur.SHA && r.Closed == cur.Closed:
		return cur, false
	case cur.Ambiguous:
		return cur, false
	}
	cur.Ambiguous, cur.Read = true, false
	return cur, true
}

// headKey is head.<owner>.<repo>.<number>, names encoded.
func headKey(repo Repo, pull int) string {
	return "head." + repoTokens(repo) + "." + strconv.Itoa(pull)
}

// RecordHead merges report r into the pull request's head record in the
// build bucket (compare-and-set, so concurrent receivers and workers
// agree) and returns the record as it stands after. The receiver records
// every delivery it publishes, and every close, before publishing; a
// worker records what an API read told it. r needs a SHA and an
// UpdatedAt. Safe for concurrent use across boxes.
func (h *Heads) RecordHead(ctx context.Context, repo Repo, pull int, r HeadRecord) (HeadRecord, error) {
	if err := errors.Join(checkBuildKey(repo, pull, r.SHA), ValidateSHA(r.SHA)); err != nil {
		return HeadRecord{}, err
	}
	if r.UpdatedAt.IsZero() {
		return HeadRecord{}, fmt.Errorf("head %.7s of %s#%d has no updated_at: %w", r.SHA, repo.FullName(), pull, ErrInvalidEvent)
	}
	r.UpdatedAt = r.UpdatedAt.UTC()
	key := headKey(repo, pull)
	for range headRecordAttempts {
		var cur HeadRecord
		rev, err := h.loadJSON(ctx, key, &cur)
		if err != nil {
			return HeadRecord{}, err
		}
		next, changed := cur.Merge(rev != 0, r)
		if !changed {
			return next, nil
		}
		err = h.storeJSON(ctx, key, next, rev)
		if !errors.Is(err, errConflict) {
			return next, err
		}
	}
	return HeadRecord{}, fmt.Errorf("recording head of %s#%d: %d writers in a row got there first", repo.FullName(), pull, headRecordAttempts)
}

// HeadOf returns the pull request's head record; ok is false when none
// was recorded (no webhook or read reported it yet, or it expired with
// the bucket).
func (h *Heads) HeadOf(ctx context.Context, repo Repo, pull int) (rec HeadRecord, ok bool, err error) {
	if err := errors.Join(repo.Validate(), ValidatePull(pull)); err != nil {
		return HeadRecord{}, false, err
	}
	rev, err := h.loadJSON(ctx, headKey(repo, pull), &rec)
	return rec, rev != 0, err
}
