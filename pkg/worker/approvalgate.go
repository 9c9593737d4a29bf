package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/go-github/v88/github"

	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/status"
)

// approvalGate decides whether the policy lets a head commit be built
// now (planApproval), gathering the facts the plan asks for and recording
// the approvals it finds, and asks for approval on the head's summary
// when it does not. Its methods may be called concurrently.
type approvalGate struct {
	// trust answers who may write, asking GitHub at most once per
	// trustTTL; the Worker's trustCache, shared with the command handler.
	trust     writerChecker
	approvals approvalAsker
	summaries headSummaries
	policy    Policy
	label     string
}

// approvalAsker is the approval record of each pull request, and the
// once-per-head request for approval; Queue has it.
type approvalAsker interface {
	approvalBook
	AskApproval(ctx context.Context, repo events.Repo, pull int, sha string) (bool, error)
	ForgetAsked(ctx context.Context, repo events.Repo, pull int, sha string) error
}

// maxGateSteps bounds the steps of one approval plan: every fact and
// both approvals once, and some to spare.
const maxGateSteps = 16

// admit reports whether the policy lets ev's commit be built now, and
// otherwise records on the head's summary that approval is needed. No
// build is claimed for an unapproved commit: an approval (the label's
// webhook, a command, or a later sweep reading who added the label)
// brings the same commit back, and then it is built.
func (g *approvalGate) admit(ctx context.Context, log *slog.Logger, inst Installation, pr *github.PullRequest, ev events.PullEvent) (verdict, error) {
	v, err := g.judge(ctx, log, inst, pr, ev)
	if v.build || err != nil {
		return v, err
	}
	log.Info("waiting for approval", "author", pr.GetUser().GetLogin())
	// Every sweep brings an unapproved commit back; its status is written
	// once per head commit, by whichever box gets there first.
	first, err := g.approvals.AskApproval(ctx, ev.Repo, ev.Number, ev.HeadSHA)
	if err != nil || !first {
		return v, err
	}
	err = g.summaries.update(ctx, ev, func(h *events.HeadSummary) bool {
		// An approval recorded meanwhile stands.
		return !h.Approved && h.Set(0, string(status.Pending), status.ApprovalNeeded(g.label), "")
	})
	if err != nil {
		if ferr := g.approvals.ForgetAsked(ctx, ev.Repo, ev.Number, ev.HeadSHA); ferr != nil {
			err = errors.Join(err, ferr)
		}
		return v, fmt.Errorf("asking for approval: %w", err)
	}
	// An approval recorded meanwhile (its event handled on another slot
	// or box) may have read the approval record before this request:
	// then its "approved" would not follow this one, so it is recorded
	// here.
	rec, err := g.approvals.ApprovalOf(ctx, ev.Repo, ev.Number)
	if err != nil || !rec.Covers(ev.HeadSHA) {
		return v, err
	}
	return v, g.showApproved(ctx, ev, rec.By, 0)
}

// showApproved records on the head's summary that the head commit was
// approved, pending "approved by ...; building" about build n (0 when not
// yet claimed), so GitHub no longer asks for an approval that was given;
// the projector shows it until the build's summary takes over.
func (g *approvalGate) showApproved(ctx context.Context, ev events.PullEvent, by string, n int) error {
	if by == "" {
		by = "a writer"
	}
	err := g.summaries.update(ctx, ev, func(h *events.HeadSummary) bool {
		changed := !h.Approved
		h.Approved = true
		return h.Set(n, string(status.Pending), status.Approved(by), "") || changed
	})
	if err != nil {
		return fmt.Errorf("recording the approval on the head's summary: %w", err)
	}
	return nil
}

// judge carries out planApproval for ev's head commit: it gathers each
// fact the plan asks for and records each approval it finds, until the
// plan gives its verdict.
func (g *approvalGate) judge(ctx context.Context, log *slog.Logger, inst Installation, pr *github.PullRequest, ev events.PullEvent) (verdict, error) {
	f := approvalFacts{policy: g.policy, group: events.IsGroup(ev.Number), sha: ev.HeadSHA,
		labeled: g.hasApprovalLabel(pr), labeledBy: ev.LabeledBy, recorded: map[string]bool{}}
	for range maxGateSteps {
		s := planApproval(f)
		switch {
		case s.need != gateNone:
			if err := g.gather(ctx, log, inst, pr, ev, &f, s.need); err != nil {
				return verdict{}, err
			}
		case s.approver != "":
			if err := g.record(ctx, log, ev.Repo, ev.Number, ev.HeadSHA, s.approver); err != nil {
				return verdict{}, err
			}
			f.recorded[s.approver] = true
		default:
			return s.verdict, nil
		}
	}
	return verdict{}, permanent(fmt.Errorf("worker: the approval plan of %.7s keeps asking for facts", ev.HeadSHA))
}

// gather looks up fact need into f.
func (g *approvalGate) gather(ctx context.Context, log *slog.Logger, inst Installation, pr *github.PullRequest, ev events.PullEvent, f *approvalFacts, need gateFact) error {
	repo := ev.Repo
	switch need {
	case gateLabelerWrites, gateLateWrites:
		who, into := ev.LabeledBy, &f.labelerWrites
		if need == gateLateWrites {
			who, into = *f.lateLabeler, &f.lateWrites
		}
		writer, err := g.trust.canWrite(ctx, inst.Permissions, repo.Owner, repo.Name, who)
		if err != nil {
			return err
		}
		if !writer {
			log.Info("approval ignored: the approver may not write to the repository", "approver", who)
		}
		*into = &writer
	case gateRecord:
		rec, err := g.approvals.ApprovalOf(ctx, repo, ev.Number)
		if err != nil {
			return fmt.Errorf("reading approval: %w", err)
		}
		f.record = &rec
	case gateAuthorWrites:
		writer, err := g.trust.canWrite(ctx, inst.Permissions, repo.Owner, repo.Name, pr.GetUser().GetLogin())
		if err != nil {
			return err
		}
		f.authorWrites = &writer
	case gateLateLabeler:
		by, err := g.labeledAfter(ctx, inst, repo, ev.Number, f.record.AskedAt)
		if err != nil {
			// An App without issues:read cannot tell who labeled: the
			// label's webhook (or a command) still approves.
			log.Warn("cannot read who added the approval label", "err", err)
		}
		f.lateLabeler = &by
	default:
		return fmt.Errorf("worker: the approval plan asks for an unknown fact %v", need)
	}
	return nil
}

// hasApprovalLabel reports whether pr carries the approval label, compared
// as the receiver compares it (events.IsApprovalLabel).
func (g *approvalGate) hasApprovalLabel(pr *github.PullRequest) bool {
	for _, l := range pr.Labels {
		if events.IsApprovalLabel(l.GetName(), g.label) {
			return true
		}
	}
	return false
}

// labeledAfter returns who added the approval label last, if that was in
// a later second than since (YourCI's request for approval of the current
// head); "" when nobody did. Only the newest addition counts: an older one
// approved an older head.
func (g *approvalGate) labeledAfter(ctx context.Context, inst Installation, repo events.Repo, pull int, since time.Time) (string, error) {
	if inst.Issues == nil {
		return "", nil
	}
	var last *github.IssueEvent
	opts := &github.ListOptions{PerPage: 100}
	for range maxEventPages {
		list, resp, err := inst.Issues.ListIssueEvents(ctx, repo.Owner, repo.Name, pull, opts)
		if err != nil {
			return "", fmt.Errorf("reading who labeled %s#%d: %w", repo.FullName(), pull, err)
		}
		for _, e := range list {
			if e.GetEvent() == "labeled" && events.IsApprovalLabel(e.GetLabel().GetName(), g.label) {
				last = e
			}
		}
		if resp == nil || resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	// GitHub's times have whole seconds: a label in the same second as
	// the request might have come before it, for an older head, so it
	// does not count (its labeled webhook still does).
	if last == nil || !last.GetCreatedAt().After(since.Truncate(time.Second)) {
		return "", nil
	}
	return last.GetActor().GetLogin(), nil
}

// approve records that approver approved head commit sha of a pull
// request, if approver may write to the repository; ok says whether the
// approval was recorded. A label or command from anyone else is logged
// and ignored.
func (g *approvalGate) approve(ctx context.Context, log *slog.Logger, inst Installation, repo events.Repo, pull int, sha, approver string) (ok bool, err error) {
	writer, err := g.trust.canWrite(ctx, inst.Permissions, repo.Owner, repo.Name, approver)
	if err != nil {
		return false, err
	}
	if !writer {
		log.Info("approval ignored: the approver may not write to the repository", "approver", approver)
		return false, nil
	}
	if err := g.record(ctx, log, repo, pull, sha, approver); err != nil {
		return false, err
	}
	return true, nil
}

// record records that approver, who may write, approved head commit sha.
func (g *approvalGate) record(ctx context.Context, log *slog.Logger, repo events.Repo, pull int, sha, approver string) error {
	if err := g.approvals.Approve(ctx, repo, pull, sha, approver); err != nil {
		return fmt.Errorf("recording approval by %s: %w", approver, err)
	}
	log.Info("head commit approved", "approver", approver)
	return nil
}
