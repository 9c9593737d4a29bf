package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-github/v88/github"

	"github.com/yourci/yourci/pkg/artifacts"
	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/pipeline"
)

// AcceptedReaction is the reaction a comment gets when its commands were
// carried out.
const AcceptedReaction = "rocket"

// CommentCreator posts a comment on a pull request's conversation;
// go-github's IssuesService has it.
type CommentCreator interface {
	CreateComment(ctx context.Context, owner, repo string, number int, comment *github.IssueComment) (*github.IssueComment, *github.Response, error)
}

// ReactionCreator reacts to a comment; go-github's ReactionsService has it.
type ReactionCreator interface {
	CreateIssueCommentReaction(ctx context.Context, owner, repo string, id int64, content string) (*github.Reaction, *github.Response, error)
}

// RerunQueue is what comment commands need of JetStream: the build of a
// head, re-run numbers and the publication of their first attempts, and
// the pull event that builds a head /ok-to-test approved. An
// events.Registry and an events.Queue have it together.
type RerunQueue interface {
	CommentLedger
	BuildOf(ctx context.Context, repo events.Repo, pull int, sha string) (int, bool, error)
	ClaimReruns(ctx context.Context, repo events.Repo, pull, build int, tests []string, claimant string) (map[string]int, error)
	PublishTest(ctx context.Context, job events.TestJob) error
	PublishPull(ctx context.Context, ev events.PullEvent) error
}

// CommentLedger is the record, shared by every box, of what comments have
// run and whom YourCI has answered; events.Registry has it.
type CommentLedger interface {
	// SeeHead is Queue.SeeHead.
	SeeHead(ctx context.Context, repo events.Repo, pull int, sha string, now time.Time) (time.Time, error)
	// ClaimComment reports whether claimant holds the running of one
	// text (digest) of a comment: made the claim now or before.
	ClaimComment(ctx context.Context, repo events.Repo, pull int, comment int64, digest, claimant string) (bool, error)
	// AllowReply reports whether claimant may reply to user on the pull
	// request now: at most one claimant per every.
	AllowReply(ctx context.Context, repo events.Repo, pull int, user, claimant string, now time.Time, every time.Duration) (bool, error)
}

// ReplyInterval is the least time between two refusal replies to one
// person who may not write, on one pull request: a flood of comments from
// anyone who can comment costs at most one write per interval; the rest
// are logged and counted. Writers' commands are always answered: they
// could push anything, and a refused /ok-to-test must reach them.
const ReplyInterval = 10 * time.Minute

// HandleCommand carries out the commands of one pull request comment, or
// one press of a re-run button, if its author may write to the repository
// (asked of GitHub, at most once per trustTTL): an accepted comment gets
// AcceptedReaction, and a refused command a reply naming the problem; a
// refused author gets one reply and nothing runs. A button press has no
// comment: it gets neither reaction nor reply, and a refusal is logged.
// A comment's commands run once per text, however often and under
// whichever delivery ids its webhook arrives (ClaimComment), and refusal
// replies to one person who may not write, on one pull request, are
// limited to one per ReplyInterval. The message is acked once the reaction and reply are posted; GitHub
// failures hand it back, and its redelivery queues nothing twice (re-run
// numbers are claimed per message, and a pull event has its message id).
func (w *Worker) HandleCommand(ctx context.Context, d *events.Delivery[events.CommandEvent]) {
	ev := d.Payload
	log := w.log.With(ev.LogAttrs()...)
	stop := d.KeepAlive(ctx)
	defer stop()
	job := fmt.Sprintf("%s#%d", ev.Repo.FullName(), ev.Number)
	err := w.guard(ctx, "command", job, "carrying out this comment", w.opts.CommandTimeout, w.grace, func(ctx context.Context) error {
		if d.LastChance() {
			return w.abandonCommand(ctx, log, ev, d.NumDelivered)
		}
		return w.handleCommand(ctx, log, ev)
	})
	settle(ctx, log, d, err)
}

// outcome is what became of one command: accepted, refused with a reason
// for the reply, or nothing to do, with a note saying why (no error: an
// /ok-to-test of a head that needs no approval).
type outcome struct {
	refusal string
	note    string
}

func refused(format string, args ...any) outcome {
	return outcome{refusal: fmt.Sprintf(format, args...)}
}

func (w *Worker) handleCommand(ctx context.Context, log *slog.Logger, ev events.CommandEvent) error {
	if w.opts.Reruns == nil {
		return permanent(errors.New("worker: comment commands need Options.Reruns"))
	}
	if !ev.Pressed() {
		mine, err := w.opts.Reruns.ClaimComment(ctx, ev.Repo, ev.Number, ev.CommentID, events.CommandsDigest(ev.Commands), ev.MsgID())
		if err != nil {
			return fmt.Errorf("claiming comment %d: %w", ev.CommentID, err)
		}
		if !mine {
			log.Info("comment's commands already handled for another delivery; nothing runs")
			return nil
		}
	}
	inst, err := w.opts.GitHub.Installation(ctx, ev.Installation)
	if err != nil {
		return fmt.Errorf("authenticating for installation %d: %w", ev.Installation, err)
	}
	writer, err := w.trust.canWrite(ctx, inst.Permissions, ev.Repo.Owner, ev.Repo.Name, ev.Author)
	if err != nil {
		return err
	}
	if !writer {
		log.Info("command refused: author may not write to the repository")
		if ev.Pressed() {
			return nil
		}
		return w.refuse(ctx, log, inst, ev, fmt.Sprintf("@%s: only people with write access to %s may run YourCI's commands; nothing was run.",
			ev.Author, ev.Repo.FullName()))
	}
	var target *commandTarget
	var problems []string
	accepted := false
	for i, c := range ev.Commands {
		o, err := w.runCommand(ctx, log, inst, ev, i, c, &target)
		if err != nil {
			return fmt.Errorf("carrying out /%s: %w", c.Kind, err)
		}
		switch {
		case o.refusal != "":
			log.Info("command refused", "command", c.Kind, "reason", o.refusal)
			problems = append(problems, fmt.Sprintf("`/%s` was refused: %s", c.Kind, o.refusal))
		case o.note != "":
			log.Info("command has nothing to do", "command", c.Kind, "reason", o.note)
			problems = append(problems, fmt.Sprintf("`/%s`: %s", c.Kind, o.note))
		default:
			accepted = true
		}
	}
	if ev.Pressed() {
		return nil // no comment to react or reply to; the log says it all
	}
	if accepted {
		if err := w.react(ctx, inst, ev); err != nil {
			return err
		}
	}
	if len(problems) == 0 {
		return nil
	}
	text := "@" + ev.Author + ": " + problems[0]
	if len(problems) > 1 {
		text = "@" + ev.Author + ":\n- " + strings.Join(problems, "\n- ")
	}
	return w.reply(ctx, inst, ev, text)
}

// refuse replies text to ev's author, who may not write, unless they were replied to on this
// pull request within ReplyInterval, by this or any box; a reply held back
// is logged and counted, never posted.
func (w *Worker) refuse(ctx context.Context, log *slog.Logger, inst Installation, ev events.CommandEvent, text string) error {
	ok, err := w.opts.Reruns.AllowReply(ctx, ev.Repo, ev.Number, ev.Author, ev.MsgID(), time.Now(), ReplyInterval)
	if err != nil {
		return fmt.Errorf("checking the reply limit: %w", err)
	}
	if !ok {
		log.Info("refusal not replied: the author had a reply on this pull request lately", "interval", ReplyInterval)
		w.opts.Metrics.RepliesHeld.Inc()
		return nil
	}
	return w.reply(ctx, inst, ev, text)
}

// runCommand is the one dispatch of a command to its handler. target is
// the pull request's head build, found by the first command that needs it
// and shared by the next ones of the same comment.
func (w *Worker) runCommand(ctx context.Context, log *slog.Logger, inst Installation, ev events.CommandEvent, i int, c events.Command, target **commandTarget) (outcome, error) {
	switch c.Kind {
	case events.Retest:
		if *target == nil {
			t, o, err := w.findTarget(ctx, log, inst, ev)
			if err != nil || o.refusal != "" {
				return o, err
			}
			*target = t
		}
		return w.retest(ctx, log, inst, ev, i, c, *target)
	case events.OkToTest:
		return w.okToTest(ctx, log, inst, ev, c)
	case events.RerunCheck:
		return w.rerunCheck(ctx, log, inst, ev, c)
	case events.RerunSuite:
		return w.rerunSuite(ctx, log, inst, ev)
	default:
		return refused("this worker does not know that command"), nil
	}
}

// commandTarget is the build a command acts on: the latest build of the
// pull request's current head, with the tests its .yci.py yields.
type commandTarget struct {
	pr    *github.PullRequest
	pull  int
	sha   string
	build int
	tests []pipeline.Test
	// baseSHA and tested are the build's base commit and the commit its
	// tests check out (its merge), as the build recorded them; empty for
	// builds from before builds merged.
	baseSHA, tested string
}

// findTarget finds the current head's latest build (refused, for a button
// press, when the pressed check's commit is no longer the head) and
// evaluates its .yci.py again, in the build's checkout (made on this box if another box
// built it), to learn its tests' names and specs. The evaluation is the
// build's own: same commit, same build number.
//
// A merge group's checks (re-run buttons are the only commands that can
// name one) are refused: the queue builds a group once, and queueing the
// pull request again makes a new group.
func (w *Worker) findTarget(ctx context.Context, log *slog.Logger, inst Installation, ev events.CommandEvent) (*commandTarget, outcome, error) {
	if events.IsGroup(ev.Number) {
		return nil, refused("a merge group is not built again; queue the pull request again for a new group."), nil
	}
	pull, err := getPull(ctx, inst.Pulls, ev.Repo, ev.Number)
	if err != nil {
		return nil, outcome{}, err
	}
	pr := pull.pr
	sha := pr.GetHead().GetSHA()
	if pr.GetState() != "open" {
		return nil, refused("the pull request is %s.", pr.GetState()), nil
	}
	if ev.Button != nil && ev.Button.SHA != sha {
		// Pressed on an older commit's page: its tests no longer matter.
		return nil, refused("the check is on %.7s, which is no longer the head of the pull request (%.7s).", ev.Button.SHA, sha), nil
	}
	n, ok, err := w.opts.Reruns.BuildOf(ctx, ev.Repo, ev.Number, sha)
	if err != nil {
		return nil, outcome{}, fmt.Errorf("looking up the build of %s: %w", sha, err)
	}
	if !ok {
		return nil, refused("the head commit %.7s has no build yet, so there is nothing to re-run.", sha), nil
	}
	b := build(ev.Repo, ev.Number, n)
	base, err := w.recordedBase(ctx, buildKey(ev.Repo, ev.Number, n))
	if err != nil {
		return nil, outcome{}, err
	}
	src, change, err := w.checkoutTarget(ctx, inst, pr, b, sha, base)
	if err != nil {
		return nil, outcome{}, err
	}
	raw := pull.raw
	target := &commandTarget{pr: pr, pull: ev.Number, sha: sha, build: n}
	if base != nil {
		target.baseSHA, target.tested = base.SHA, sha
		if base.Merged && base.Merge != "" {
			target.tested = base.Merge
		}
		if raw, err = pullAsTested(raw, base.SHA); err != nil {
			return nil, outcome{}, permanent(err)
		}
	}
	tests, err := w.opts.Evaluator.EvaluateChange(ctx, src, n, raw, change)
	var cfgErr *pipeline.ConfigError
	if errors.As(err, &cfgErr) {
		return nil, refused("the .yci.py of build %d is broken (%s), so it has no tests to re-run.", n, cfgErr.Error()), nil
	}
	if err != nil {
		return nil, outcome{}, fmt.Errorf("evaluating .yci.py of build %d: %w", n, err)
	}
	log.Debug("command target", "sha", sha, "build", n, "tests", len(tests))
	target.tests = tests
	return target, outcome{}, nil
}

// recordedBase is the base build k tested, as its record says; nil for a
// build from before builds merged, or one whose head did not merge (it
// has no tests to re-run).
func (w *Worker) recordedBase(ctx context.Context, k events.BuildKey) (*events.TestedBase, error) {
	rec, err := w.opts.Records.BuildRecord(ctx, k)
	if errors.Is(err, events.ErrNoRecord) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the record of build %s: %w", k, err)
	}
	if rec.Base == nil || rec.Base.SHA == "" || len(rec.Base.Conflicts) > 0 {
		return nil, nil
	}
	return rec.Base, nil
}

// checkoutTarget checks out, as build b's source, what the build tested:
// its merge of sha into base (made again when this box lacks it), or sha
// for a build without a recorded base (then the change is not known).
func (w *Worker) checkoutTarget(ctx context.Context, inst Installation, pr *github.PullRequest, b artifacts.Build, sha string, base *events.TestedBase) (string, *pipeline.Change, error) {
	ws := w.opts.Workspace
	if !ws.HasCommit(ctx, b.Owner, b.Repo, sha) || (base != nil && !ws.HasCommit(ctx, b.Owner, b.Repo, base.SHA)) {
		if err := ws.UpdateMirror(ctx, b.Owner, b.Repo, pr.GetBase().GetRepo().GetCloneURL(), inst.Git); err != nil {
			return "", nil, fmt.Errorf("updating mirror: %w", err)
		}
	}
	tested, change := sha, (*pipeline.Change)(nil)
	if base != nil {
		if base.Merged && base.Merge != "" {
			tested = base.Merge
		}
		m, err := ws.RemakeMerge(ctx, b.Owner, b.Repo, sha, base.SHA, tested)
		if err != nil {
			return "", nil, fmt.Errorf("merging %.7s into %.7s again: %w", sha, base.SHA, err)
		}
		change = &pipeline.Change{Files: m.Changes}
	}
	src, err := ws.SourceDir(b)
	if err != nil {
		return "", nil, permanent(err)
	}
	if err := ws.Checkout(ctx, b, tested, pr.GetBase().GetRef(), src); err != nil {
		return "", nil, fmt.Errorf("checking out %s: %w", tested, err)
	}
	return src, change, nil
}

// retest queues a re-run of the tests /retest asks for (see pickReruns),
// each recorded as queued in the build record and with a "queued" status
// pointing at its new log.
func (w *Worker) retest(ctx context.Context, log *slog.Logger, inst Installation, ev events.CommandEvent, i int, c events.Command, t *commandTarget) (outcome, error) {
	states, o, err := w.testStates(ctx, ev.Repo, t)
	if err != nil || o.refusal != "" {
		return o, err
	}
	names := make([]string, len(t.tests))
	specs := make(map[string]pipeline.Test, len(t.tests))
	for j, test := range t.tests {
		names[j] = test.Name
		specs[test.Name] = test
	}
	run, o := pickReruns(names, states, c, t.build, t.sha)
	if o.refusal != "" {
		return o, nil
	}
	runs, err := w.opts.Reruns.ClaimReruns(ctx, ev.Repo, ev.Number, t.build, run, ev.MsgID()+"/"+strconv.Itoa(i))
	if err != nil {
		return outcome{}, fmt.Errorf("numbering re-runs: %w", err)
	}
	if err := w.recordRerunsQueued(ctx, ev, t, runs); err != nil {
		return outcome{}, err
	}
	for _, name := range run {
		k := runs[name]
		job := events.TestJob{
			Version: events.Version, Repo: ev.Repo, Number: ev.Number, HeadSHA: t.sha,
			Installation: ev.Installation, Build: t.build, Test: specOf(specs[name]), Attempt: 1, Rerun: k,
			BaseRef: t.pr.GetBase().GetRef(), CloneURL: t.pr.GetBase().GetRepo().GetCloneURL(),
			BaseSHA: t.baseSHA, TestSHA: t.tested,
		}
		if err := w.opts.Reruns.PublishTest(ctx, job); err != nil {
			return outcome{}, fmt.Errorf("queuing re-run %d of %s: %w", k, name, err)
		}
		w.opts.Metrics.TestsQueued.Inc()
		log.Info("re-run queued", "build", t.build, "test", name, "rerun", k)
	}
	return outcome{}, nil
}

// pickReruns decides what /retest runs, given the build's test names and
// each test's state in the build record. Without names it runs the tests
// that failed or errored; with names, exactly those, if every one is a
// test of the build that is not queued, running or waiting to retry.
// Anything else is refused, and then nothing runs.
func pickReruns(known []string, states map[string]events.TestState, c events.Command, build int, sha string) ([]string, outcome) {
	isKnown := make(map[string]bool, len(known))
	for _, n := range known {
		isKnown[n] = true
	}
	var unknown, busyNames []string
	for _, n := range c.Tests {
		switch {
		case !isKnown[n]:
			unknown = append(unknown, n)
		case busy(states[n]):
			busyNames = append(busyNames, n)
		}
	}
	switch {
	case c.Invalid > 0 || len(unknown) > 0:
		what := "unknown test " + quoteNames(unknown)
		if c.Invalid > 0 {
			what = fmt.Sprintf("%d word(s) cannot be test names", c.Invalid)
			if len(unknown) > 0 {
				what += ", and unknown test " + quoteNames(unknown)
			}
		}
		return nil, refused("%s. Build %d has %s.", what, build, listNames(known))
	case len(busyNames) > 0:
		return nil, refused("%s still queued or running; re-run it once it is done.", quoteNames(busyNames))
	case len(c.Tests) > 0:
		return c.Tests, outcome{}
	}
	var failed []string
	for _, n := range known {
		if s := states[n]; s == events.TestFailed || s == events.TestErrored {
			failed = append(failed, n)
		}
	}
	if len(failed) == 0 {
		return nil, refused("nothing to re-run: no test of build %d at %.7s has failed.", build, sha)
	}
	return failed, outcome{}
}

// maxListed bounds the names a reply lists.
const maxListed = 12

// quoteNames renders names as `a`, `b` (names are [A-Za-z0-9._-], so a
// backtick cannot end the quote early).
func quoteNames(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = "`" + n + "`"
	}
	return strings.Join(q, ", ")
}

// listNames is a reply's brief list of a build's tests.
func listNames(names []string) string {
	switch {
	case len(names) == 0:
		return "no tests"
	case len(names) > maxListed:
		return fmt.Sprintf("%d tests: %s and %d more", len(names), quoteNames(names[:maxListed]), len(names)-maxListed)
	}
	return "tests " + quoteNames(names)
}

// react puts AcceptedReaction on the command's comment. GitHub answers an
// existing reaction with 200, so a redelivered command adds none.
func (w *Worker) react(ctx context.Context, inst Installation, ev events.CommandEvent) error {
	if _, _, err := inst.Reactions.CreateIssueCommentReaction(ctx, ev.Repo.Owner, ev.Repo.Name, ev.CommentID, AcceptedReaction); err != nil {
		return fmt.Errorf("reacting to comment %d: %w", ev.CommentID, err)
	}
	return nil
}

// reply posts text on the pull request. A reply never starts a line with a
// command, so it cannot command YourCI itself.
func (w *Worker) reply(ctx context.Context, inst Installation, ev events.CommandEvent, text string) error {
	if _, _, err := inst.Comments.CreateComment(ctx, ev.Repo.Owner, ev.Repo.Name, ev.Number, &github.IssueComment{Body: github.Ptr(text)}); err != nil {
		return fmt.Errorf("replying to comment %d: %w", ev.CommentID, err)
	}
	return nil
}

// abandonCommand answers a command that failed on every delivery, rather
// than leaving its author waiting for nothing.
func (w *Worker) abandonCommand(ctx context.Context, log *slog.Logger, ev events.CommandEvent, delivered uint64) error {
	inst, err := w.opts.GitHub.Installation(ctx, ev.Installation)
	if err != nil {
		return fmt.Errorf("authenticating for installation %d: %w", ev.Installation, err)
	}
	log.Error("giving up on command", "deliveries", delivered)
	return w.reply(ctx, inst, ev, fmt.Sprintf("@%s: YourCI could not carry out this comment's commands after %d tries; see the worker's logs.", ev.Author, delivered))
}
