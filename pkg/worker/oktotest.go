package worker

import (
	"fmt"
	"strings"
	"time"

	"github.com/yourci/yourci/pkg/events"
)

// okToTest decides /ok-to-test from ev.Author, whom planCommands has
// found may write: it approves the head commit the writer saw (see
// bindHead), which must still be the pull request's head, and queues a
// pull event for it, the same event the approval label's webhook queues,
// so the approval record and the build claim decide what runs (and the
// build replaces the "approval needed" status). A closed pull request is
// refused; a head that needs no approval (its author may write, it is
// approved already, or this worker builds everything) gets a note. It is
// pure; the approval it plans is, for the commands after it, made.
func okToTest(p *commandPlan, f *commandFacts, c events.Command) (outcome, fact) {
	if f.head == nil {
		return outcome{}, factHead
	}
	h, ev := f.head, f.ev
	if h.state != "open" {
		return refused("the pull request is %s.", h.state), factNone
	}
	if f.policy == BuildAll {
		return outcome{note: "this YourCI builds every pull request without approval; there is nothing to approve."}, factNone
	}
	if f.seen == nil {
		return outcome{}, factSeen
	}
	if o := bindHead(h.sha, *f.seen, c.SHA, ev.WrittenAt); o.refusal != "" {
		return o, factNone
	}
	if f.approval == nil {
		return outcome{}, factApproval
	}
	// The same writer approving again is this command redelivered (or
	// repeated): queuing its build again is harmless, and makes sure a
	// crash between the approval and the pull event loses nothing.
	if rec := *f.approval; rec.Covers(h.sha) && rec.By != ev.Author {
		return outcome{note: fmt.Sprintf("the head commit %.7s is already approved by @%s.", h.sha, rec.By)}, factNone
	}
	if f.authorWrites == nil {
		return outcome{}, factAuthorWrites
	}
	if *f.authorWrites {
		return outcome{note: fmt.Sprintf("@%s may write to %s, so their commits are built without approval.", h.author, ev.Repo.FullName())}, factNone
	}
	p.actions = append(p.actions, commandAction{kind: c.Kind, approve: h.sha})
	f.approval = &events.Approval{SHA: h.sha, By: ev.Author}
	return outcome{}, factNone
}

// bindHead decides whether an /ok-to-test may approve head, the pull
// request's head now, first seen by YourCI at seen. A command naming a
// commit (named, a prefix of at least 7 hex digits) approves exactly that
// commit, and only while it is the head. A bare command approves the head
// only when YourCI saw it no later than the comment was written: a head
// first seen after that (a push that raced the comment), or a comment
// whose time is unknown, is refused, naming the head so the writer can
// approve it by its sha. YourCI's clock is compared with GitHub's: a clock
// running ahead refuses more, never approves more. It is pure.
func bindHead(head string, seen time.Time, named string, written time.Time) outcome {
	switch {
	case named != "" && strings.HasPrefix(head, named):
		return outcome{}
	case named != "":
		return refused("`%s` is not the head of the pull request, which is now `%s`; nothing was approved.", named, head)
	case written.IsZero() || seen.IsZero() || seen.After(written):
		return refused("the head of the pull request is now `%s`, which YourCI cannot tell was there when this comment was written; "+
			"nothing was approved. To approve it, comment `/ok-to-test %.12s` once you have looked at it.", head, head)
	}
	return outcome{}
}
