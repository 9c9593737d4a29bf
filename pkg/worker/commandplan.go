package worker

import (
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/pipeline"
	"github.com/yourci/yourci/pkg/status"
)

// fact names one thing a comment's commands are decided on that has to be
// looked up (of GitHub, the records, the workspace). planCommands asks for
// the facts it needs one at a time, so a lookup a refusal makes pointless
// (evaluating .yci.py for a closed pull request) is never made.
type fact int

const (
	factNone         fact = iota
	factWriter            // whether the author may write to the repository
	factSuitePulls        // the pulls with builds of a pressed suite's commit
	factHead              // the pull request as it is now
	factBuild             // the head's latest build number
	factTests             // that build's tests and their states in its record
	factSeen              // when YourCI first saw the head
	factApproval          // the pull request's approval record
	factAuthorWrites      // whether the pull request's author may write
	factBase              // the build's recorded base and its branch's tip now
	factOwnReruns         // the re-runs this message numbered before, if it came before
)

var factNames = [...]string{"none", "writer", "suite pulls", "head", "build", "tests", "seen", "approval", "author writes", "base", "own re-runs"}

func (f fact) String() string {
	return enumName(f, factNames[:], "fact")
}

// commandFacts is everything a comment's commands are decided on. A nil
// (or, for suitePulls, unset) field is not known yet.
type commandFacts struct {
	ev     events.CommandEvent
	policy Policy
	writer *bool
	// suitePulls are the pulls with builds of ev.Button.SHA, for a
	// "Re-run all checks" whose event names no pull request.
	suitePulls      []int
	suitePullsKnown bool
	head            *headFacts
	// build is the head's latest build, 0 when it has none.
	build *int
	// buildBy is the id of the message that claimed build: this
	// message's own rebuild event's when it comes again after queuing it.
	buildBy      string
	tests        *buildTests
	seen         *time.Time
	approval     *events.Approval
	authorWrites *bool
	base         *baseFacts
	// ownRuns are the re-runs (test name to number) each command, by
	// its index, of this message numbered for build on an earlier
	// delivery that failed part way: those are queued again, not
	// refused as busy. Empty on a first delivery.
	ownRuns      map[int]map[string]int
	ownRunsKnown bool
	// rebuilding is set once a command plans a new build of the head:
	// the commands after it have nothing left to do.
	rebuilding bool
}

// baseFacts is what tells whether the target build's base moved: the
// base its record says it merged, and the tip of the pull request's base
// branch in the mirror just fetched.
type baseFacts struct {
	// tested is the build record's base; nil when the build has no
	// record yet or is from before builds merged.
	tested *events.TestedBase
	// tip is the base branch's tip now, looked up only when tested says
	// the build merged its head into a base; "" otherwise, or when the
	// mirror has no such branch.
	tip string
}

// moved reports whether the head, built on a base that has moved since,
// is to be built again on the new tip rather than re-run on its old merge.
// A build that tested its head alone (-test-merge=false) has no base to
// move, nor has a merge group's (GitHub made its merge).
func (b *baseFacts) moved(baseRef string) bool {
	t := b.tested
	return t != nil && t.Merged && !t.Queued && t.SHA != "" && b.tip != "" && (b.tip != t.SHA || t.Ref != baseRef)
}

// headFacts is the pull request as GitHub shows it now.
type headFacts struct {
	state, sha, author, baseRef, cloneURL string
	// raw is the pull request's JSON as GitHub sent it, for .yci.py.
	raw []byte
}

// buildTests is a build's tests, from its .yci.py evaluated again, and
// each test's state in the build record (none when it has none).
type buildTests struct {
	tests []pipeline.Test
	// broken is why .yci.py gave no tests; empty when it did.
	broken string
	states map[string]events.TestState
	// baseSHA is the base commit the build merged (empty for a build from
	// before builds merged) and tested the commit its tests check out.
	baseSHA, tested string
}

// pull is the pull request the commands act on: the event's, or the one
// pull a pressed suite's commit was built for; 0 while unknown.
func (f commandFacts) pull() int {
	if f.ev.Number != 0 {
		return f.ev.Number
	}
	if len(f.suitePulls) == 1 {
		return f.suitePulls[0]
	}
	return 0
}

// commandPlan is what a comment's commands come to. With need set it is
// no plan yet: that fact is missing.
type commandPlan struct {
	need fact
	// refuseAuthor, when set, is the reply to an author who may not
	// write: nothing else happens.
	refuseAuthor string
	pull         int
	// actions are carried out in order: re-runs to number, record as
	// queued and publish, and approvals to record and build.
	actions  []commandAction
	outcomes []commandOutcome
	// react says the comment gets AcceptedReaction; reply, when set, is
	// posted on the pull request. A button press gets neither.
	react bool
	reply string
}

// commandAction is one thing a command does: re-run tests (retest set),
// build the head again on its moved base (rebuild set), or approve a head
// commit and queue its build (approve set).
type commandAction struct {
	kind    events.CommandKind
	retest  *rerunAction
	rebuild *rebuildAction
	approve string // the head commit to approve, by the event's author
}

// rebuildAction builds head commit sha again (a new build number), which
// merges it into its base branch's tip as the build then fetches it.
type rebuildAction struct {
	sha string
	// from is the build whose base moved; 0 when this message comes
	// again for the rebuild it queued.
	from int
}

// nextBuild stands, in a plan's reply, for the number of the build a
// rebuild action claims: act writes it in once it is claimed.
const nextBuild = "{next build}"

// rerunAction re-runs tests of one build; index is the command's place
// in the comment, which numbers its claim of re-run numbers.
type rerunAction struct {
	index             int
	build             int
	sha               string
	baseRef, cloneURL string
	// baseSHA and tested are the build's base commit and the commit its
	// tests check out, so a re-run tests what the build tested.
	baseSHA, tested string
	tests           []pipeline.Test
}

// commandOutcome is how one command ended, for the log.
type commandOutcome struct {
	kind events.CommandKind
	outcome
}

// planCommands decides what a comment's commands (or a button press) do,
// from facts alone: it reads nothing and changes nothing. Commands are
// decided in order, each seeing what the ones before it planned (a test
// one re-runs is queued for the next). When a fact is missing, the plan
// is only a need.
func planCommands(f commandFacts) commandPlan {
	if f.writer == nil {
		return commandPlan{need: factWriter}
	}
	if !*f.writer {
		return commandPlan{refuseAuthor: fmt.Sprintf("@%s: only people with write access to %s may run YourCI's commands; nothing was run.",
			f.ev.Author, f.ev.Repo.FullName())}
	}
	if f.tests != nil {
		t := *f.tests
		t.states = maps.Clone(t.states)
		f.tests = &t
	}
	p := commandPlan{pull: f.pull()}
	var problems []string
	for i, c := range f.ev.Commands {
		o, need := planCommand(&p, &f, i, c)
		if need != factNone {
			return commandPlan{need: need}
		}
		p.outcomes = append(p.outcomes, commandOutcome{kind: c.Kind, outcome: o})
		switch {
		case o.refusal != "":
			problems = append(problems, fmt.Sprintf("`/%s` was refused: %s", c.Kind, o.refusal))
		case o.note != "":
			problems = append(problems, fmt.Sprintf("`/%s`: %s", c.Kind, o.note))
		case o.said != "":
			problems = append(problems, fmt.Sprintf("`/%s`: %s", c.Kind, o.said))
			p.react = true
		default:
			p.react = true
		}
	}
	if f.ev.Pressed() {
		p.react = false // no comment to react or reply to; the log says it all
		return p
	}
	switch len(problems) {
	case 0:
	case 1:
		p.reply = "@" + f.ev.Author + ": " + problems[0]
	default:
		p.reply = "@" + f.ev.Author + ":\n- " + strings.Join(problems, "\n- ")
	}
	return p
}

// planCommand is the one dispatch of a command to its decision; it adds
// the command's action to p and notes its effect in f for the next ones.
func planCommand(p *commandPlan, f *commandFacts, i int, c events.Command) (outcome, fact) {
	switch c.Kind {
	case events.Retest:
		return planRetest(p, f, i, c)
	case events.OkToTest:
		return okToTest(p, f, c)
	case events.RerunCheck:
		return rerunCheck(p, f, c)
	case events.RerunSuite:
		return rerunSuite(p, f)
	default:
		return refused("this worker does not know that command"), factNone
	}
}

// planTarget decides whether the commands may act on the pull request's
// head build: the pull request is open, a pressed check is on its head,
// and the head has a build; its build number, or why not.
//
// A merge group's checks (re-run buttons are the only commands that can
// name one) are refused: the queue builds a group once, and queueing the
// pull request again makes a new group.
func planTarget(f *commandFacts) (int, outcome, fact) {
	if events.IsGroup(f.pull()) {
		return 0, refused("a merge group is not built again; queue the pull request again for a new group."), factNone
	}
	if f.head == nil {
		return 0, outcome{}, factHead
	}
	h := f.head
	if h.state != "open" {
		return 0, refused("the pull request is %s.", h.state), factNone
	}
	if b := f.ev.Button; b != nil && b.SHA != h.sha {
		// Pressed on an older commit's page: its tests no longer matter.
		return 0, refused("the check is on %.7s, which is no longer the head of the pull request (%.7s).", b.SHA, h.sha), factNone
	}
	if f.build == nil {
		return 0, outcome{}, factBuild
	}
	if *f.build == 0 {
		return 0, refused("the head commit %.7s has no build yet, so there is nothing to re-run.", h.sha), factNone
	}
	return *f.build, outcome{}, factNone
}

// planTests is the target build's tests, once planTarget has allowed it.
func planTests(f *commandFacts, build int) (*buildTests, outcome, fact) {
	if f.tests == nil {
		return nil, outcome{}, factTests
	}
	if f.tests.broken != "" {
		return nil, refused("the .yci.py of build %d is broken (%s), so it has no tests to re-run.", build, status.WithoutPaths(f.tests.broken)), factNone
	}
	return f.tests, outcome{}, factNone
}

// planRetest decides a /retest (see pickReruns) of the head's build, or
// a new build of the head when its base moved (planRebuild).
func planRetest(p *commandPlan, f *commandFacts, i int, c events.Command) (outcome, fact) {
	build, o, need := planTarget(f)
	if need != factNone || o.refusal != "" {
		return o, need
	}
	if o, need, done := planRebuild(p, f, c.Kind, build); done {
		return o, need
	}
	return planReruns(p, f, i, c, build)
}

// planRebuild decides whether a command that re-runs tests of build (a
// /retest, named tests or not, and every re-run button) builds the head
// again instead, and plans it; done reports that it decided the command.
// When the base branch moved since build merged the head, re-running
// tests on that old merge gives no verdict on the base as it is, and
// re-running some of them on the new tip would mix two bases in one
// verdict: a new build merges the head into the tip and runs every test.
// Once one command of a comment planned that, the rest have nothing to
// do.
func planRebuild(p *commandPlan, f *commandFacts, kind events.CommandKind, build int) (o outcome, need fact, done bool) {
	if f.rebuilding {
		return outcome{}, factNone, true
	}
	if f.buildBy != "" && f.buildBy == rebuildEvent(f.ev, f.pull(), f.head.sha).MsgID() {
		// This message queued build as a rebuild before it failed
		// further on: queue it again (the same claim, a duplicate
		// event), and say so again, for the first reply may be lost.
		f.rebuilding = true
		p.actions = append(p.actions, commandAction{kind: kind, rebuild: &rebuildAction{sha: f.head.sha}})
		return outcome{said: fmt.Sprintf("%s moved since the head was built; building again on it as build %s, which runs every test.",
			f.head.baseRef, nextBuild)}, factNone, true
	}
	if f.base == nil {
		return outcome{}, factBase, true
	}
	if !f.base.moved(f.head.baseRef) {
		return outcome{}, factNone, false
	}
	f.rebuilding = true
	p.actions = append(p.actions, commandAction{kind: kind, rebuild: &rebuildAction{sha: f.head.sha, from: build}})
	return outcome{said: fmt.Sprintf("%s moved to %s since build %d; building again on it as build %s, which runs every test.",
		f.head.baseRef, events.ShortSHA(f.base.tip), build, nextBuild)}, factNone, true
}

// planReruns plans the re-runs c names of the target build, or the
// failed ones, and marks them queued for the commands after it.
func planReruns(p *commandPlan, f *commandFacts, i int, c events.Command, build int) (outcome, fact) {
	bt, o, need := planTests(f, build)
	if need != factNone || o.refusal != "" {
		return o, need
	}
	if !f.ownRunsKnown {
		return outcome{}, factOwnReruns
	}
	names := make([]string, len(bt.tests))
	specs := make(map[string]pipeline.Test, len(bt.tests))
	for j, test := range bt.tests {
		names[j] = test.Name
		specs[test.Name] = test
	}
	var run []string
	if own, ok := f.ownRuns[i]; ok {
		// This message numbered these re-runs before it failed part
		// way (publishing one, say): its record shows them queued,
		// which is its own doing, so they are queued again (act
		// skips any that started meanwhile).
		for _, n := range names {
			if _, mine := own[n]; mine {
				run = append(run, n)
			}
		}
	} else {
		var o outcome
		if run, o = pickReruns(names, bt.states, c, build, f.head.sha); o.refusal != "" {
			return o, factNone
		}
	}
	a := &rerunAction{index: i, build: build, sha: f.head.sha, baseRef: f.head.baseRef, cloneURL: f.head.cloneURL,
		baseSHA: bt.baseSHA, tested: bt.tested}
	if bt.states == nil {
		bt.states = map[string]events.TestState{}
	}
	for _, name := range run {
		a.tests = append(a.tests, specs[name])
		bt.states[name] = events.TestQueued
	}
	p.actions = append(p.actions, commandAction{kind: c.Kind, retest: a})
	return outcome{}, factNone
}
