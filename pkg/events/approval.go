package events

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/yourci/yourci/pkg/pause"
)

// DefaultApprovalLabel is the label with which someone who may write to a
// repository approves the current head of an outsider's pull request.
const DefaultApprovalLabel = "ok-to-test"

// IsApprovalLabel reports whether label is the approval label want. Labels
// are compared as GitHub compares them for uniqueness, ignoring case, so
// "OK-To-Test" is "ok-to-test". An empty want matches no label (approval by
// label is off). The receiver and the worker both decide with it.
func IsApprovalLabel(label, want string) bool {
	return want != "" && strings.EqualFold(label, want)
}

// Approval is the approval record of one pull request: which head commit
// someone allowed to approve it approved, and which head YourCI last asked
// approval for. An approval covers exactly the commit it names; a new push
// needs a new approval.
type Approval struct {
	// SHA is the approved head commit and By who approved it; both empty
	// when no head of the pull request was approved.
	SHA string    `json:"sha,omitempty"`
	By  string    `json:"by,omitempty"`
	At  time.Time `json:"at,omitzero"`
	// Asked is the head commit whose "approval needed" status was last
	// set, and AskedAt when (by the worker's clock).
	Asked   string    `json:"asked,omitempty"`
	AskedAt time.Time `json:"asked_at,omitzero"`
}

// Covers reports whether the record approves head commit sha.
func (a Approval) Covers(sha string) bool { return sha != "" && a.SHA == sha }

// approvalKey is the record's key: approval.<owner>.<repo>.<number>.
func approvalKey(repo Repo, pull int) string {
	return "approval." + EncodeToken(repo.Owner) + "." + EncodeToken(repo.Name) + "." + strconv.Itoa(pull)
}

// ApprovalOf returns the approval record of a pull request; a pull request
// never asked about has the zero record. Safe for concurrent use.
func (ap *Approvals) ApprovalOf(ctx context.Context, repo Repo, pull int) (Approval, error) {
	a, _, err := ap.loadApproval(ctx, repo, pull)
	return a, err
}

// Approve records that by approved head commit sha of a pull request,
// replacing any earlier approval (of an older head). The caller has
// checked that by may approve. Safe for concurrent use across boxes: the
// record is written with compare-and-set.
func (ap *Approvals) Approve(ctx context.Context, repo Repo, pull int, sha, by string) error {
	if by == "" {
		return fmt.Errorf("approving %s#%d at %s without an approver: %w", repo.FullName(), pull, sha, ErrInvalidEvent)
	}
	return ap.updateApproval(ctx, repo, pull, sha, func(a *Approval) bool {
		if a.SHA == sha && a.By == by {
			return false
		}
		a.SHA, a.By, a.At = sha, by, time.Now().UTC()
		return true
	})
}

// AskApproval records that the "approval needed" status of head commit sha
// is being set now, and reports whether it had not been recorded already:
// every sweep brings an unapproved head back, and its status is written
// once, not every few minutes, by whichever box gets there first.
func (ap *Approvals) AskApproval(ctx context.Context, repo Repo, pull int, sha string) (first bool, err error) {
	err = ap.updateApproval(ctx, repo, pull, sha, func(a *Approval) bool {
		first = a.Asked != sha
		if first {
			a.Asked, a.AskedAt = sha, time.Now().UTC()
		}
		return first
	})
	return first, err
}

// ForgetAsked undoes AskApproval for sha when its status could not be set,
// so the next attempt sets it.
func (ap *Approvals) ForgetAsked(ctx context.Context, repo Repo, pull int, sha string) error {
	return ap.updateApproval(ctx, repo, pull, sha, func(a *Approval) bool {
		if a.Asked != sha {
			return false
		}
		a.Asked, a.AskedAt = "", time.Time{}
		return true
	})
}

// updateApproval applies change to the record with compare-and-set,
// retrying when another box wrote in between; change returns false when
// there is nothing to write.
func (ap *Approvals) updateApproval(ctx context.Context, repo Repo, pull int, sha string, change func(*Approval) bool) error {
	if err := checkBuildKey(repo, pull, sha); err != nil {
		return err
	}
	key := approvalKey(repo, pull)
	for attempt := 1; attempt <= claimAttempts; attempt++ {
		a, rev, err := ap.loadApproval(ctx, repo, pull)
		if err != nil {
			return err
		}
		if !change(&a) {
			return nil
		}
		err = ap.storeJSON(ctx, key, a, rev)
		if !errors.Is(err, errConflict) {
			return err
		}
		if err := pause.For(ctx, raceWait(attempt)); err != nil {
			return fmt.Errorf("recording approval of %s#%d: %w", repo.FullName(), pull, err)
		}
	}
	return fmt.Errorf("recording approval of %s#%d: lost %d races in a row", repo.FullName(), pull, claimAttempts)
}

func (ap *Approvals) loadApproval(ctx context.Context, repo Repo, pull int) (Approval, uint64, error) {
	if err := errors.Join(repo.Validate(), ValidatePull(pull)); err != nil {
		return Approval{}, 0, err
	}
	var a Approval
	rev, err := ap.loadJSON(ctx, approvalKey(repo, pull), &a)
	return a, rev, err
}
