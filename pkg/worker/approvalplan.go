package worker

import (
	"github.com/yourci/yourci/pkg/events"
)

// This file holds the approval gate's decision, apart from what gathers
// its facts and records approvals (trust.go): planApproval is pure, so
// every way a head commit is let through or held is tested in memory
// (approvalplan_test.go). Each fact costs a request (to GitHub or the
// registry), so the plan asks for one at a time, only when it matters,
// as the command plans do.

// gateFact is one fact the approval plan may need gathered.
type gateFact int

const (
	// gateNone: nothing more is needed.
	gateNone gateFact = iota
	// gateLabelerWrites: whether the person whose label's webhook
	// brought the event (PullEvent.LabeledBy) may write.
	gateLabelerWrites
	// gateRecord: the pull request's approval record.
	gateRecord
	// gateAuthorWrites: whether the pull request's author may write.
	gateAuthorWrites
	// gateLateLabeler: who added the approval label after YourCI asked
	// for approval of this head (its webhook never arrived).
	gateLateLabeler
	// gateLateWrites: whether that person may write.
	gateLateWrites
)

var gateFactNames = [...]string{"none", "labeler writes", "approval record", "author writes", "late labeler", "late labeler writes"}

func (f gateFact) String() string {
	return enumName(f, gateFactNames[:], "gateFact")
}

// approvalFacts are what the gate knows of a head commit. The first group
// comes with the event; a nil pointer is a fact not gathered yet.
type approvalFacts struct {
	policy Policy
	// group says the head is a merge group's.
	group bool
	sha   string
	// labeled says the pull request carries the approval label, and
	// labeledBy who added it, when the label's webhook brought the event.
	labeled   bool
	labeledBy string

	labelerWrites *bool
	record        *events.Approval
	authorWrites  *bool
	lateLabeler   *string
	lateWrites    *bool
	// recorded names the approvers whose approval of sha the gate
	// recorded while handling this event.
	recorded map[string]bool
}

// approvalStep is the plan's next step: a fact to gather (need), an
// approval to record (approver), or, when both are empty, the verdict.
type approvalStep struct {
	need     gateFact
	approver string
	verdict  verdict
}

// planApproval decides whether the policy lets a head commit be built
// now. An approval label counts only when someone who may write added
// it, and only for the commit that was the head when they did: from the
// labeled webhook (labeledBy, with the event's head as the pull was
// then), or, for a label whose webhook never arrived, from the pull
// request's issue events when the label was added after YourCI asked for
// approval of this very commit. A merge group is built without this gate:
// only people who may merge can queue a pull request, and only one that
// passed the required checks.
func planApproval(f approvalFacts) approvalStep {
	if f.policy == BuildAll || f.group {
		return approvalStep{verdict: verdict{build: true}}
	}
	if f.labeledBy != "" && f.labeled {
		switch {
		case f.labelerWrites == nil:
			return approvalStep{need: gateLabelerWrites}
		case *f.labelerWrites && !f.recorded[f.labeledBy]:
			return approvalStep{approver: f.labeledBy}
		}
	}
	if f.record == nil {
		return approvalStep{need: gateRecord}
	}
	asked := f.record.Asked == f.sha
	if f.record.Covers(f.sha) {
		return approvalStep{verdict: verdict{build: true, by: f.record.By, asked: asked}}
	}
	if f.authorWrites == nil {
		return approvalStep{need: gateAuthorWrites}
	}
	if *f.authorWrites {
		return approvalStep{verdict: verdict{build: true}}
	}
	if f.labeled && asked {
		switch {
		case f.lateLabeler == nil:
			return approvalStep{need: gateLateLabeler}
		case *f.lateLabeler == "":
		case f.lateWrites == nil:
			return approvalStep{need: gateLateWrites}
		case *f.lateWrites && !f.recorded[*f.lateLabeler]:
			return approvalStep{approver: *f.lateLabeler}
		case *f.lateWrites:
			return approvalStep{verdict: verdict{build: true, by: *f.lateLabeler, asked: true}}
		}
	}
	return approvalStep{verdict: verdict{asked: asked}}
}
