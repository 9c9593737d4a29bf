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

	"github.com/yourci/yourci/pkg/events"
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
// the pull event (and its build number, for a rebuild) that builds a head
// /ok-to-test approved or /retest builds again on a moved base. An
// events.Registry and an events.Queue have it together.
type RerunQueue interface {
	CommentLedger
	BuildOf(ctx context.Context, repo events.Repo, pull int, sha string) (int, bool, error)
	BuildClaim(ctx context.Context, repo events.Repo, pull int, sha string) (build int, by string, ok bool, err error)
	ClaimReruns(ctx context.Context, repo events.Repo, pull, build int, tests []string, claimant string) (map[string]int, error)
	RerunsClaimed(ctx context.Context, repo events.Repo, pull, build int, claimant string) (map[string]int, bool, error)
	ClaimBuildFor(ctx context.Context, repo events.Repo, pull int, sha, claimant string, rebuild bool) (events.Claim, error)
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

// commandHandler carries out handle_command: a comment's /retest and
// /ok-to-test and GitHub's re-run buttons. It looks up the facts a plan
// needs (gather), decides with planCommands, which is pure, and carries
// the plan out (act). Its methods may be called concurrently.
type commandHandler struct {
	github GitHub
	// writers answers who may write, asking GitHub at most once per
	// trustTTL; the Worker's trustCache, shared with the pull handler.
	writers   writerChecker
	ledger    CommentLedger
	reruns    rerunNumbers
	publish   commandPublisher
	approvals approvalBook
	records   commandRecords
	tests     testLister
	tips      baseTipper
	runLogURL logLinker
	policy    Policy
	metrics   *Metrics
	now       func() time.Time
}

// writerChecker reports whether user may push to owner/repo; trustCache
// has it.
type writerChecker interface {
	canWrite(ctx context.Context, perms PermissionGetter, owner, repo, user string) (bool, error)
}

// rerunNumbers finds a head's build and numbers re-runs of its tests;
// RerunQueue has it.
type rerunNumbers interface {
	// BuildClaim is Registry.BuildClaim: the head's latest build and
	// the message that claimed it.
	BuildClaim(ctx context.Context, repo events.Repo, pull int, sha string) (build int, by string, ok bool, err error)
	ClaimReruns(ctx context.Context, repo events.Repo, pull, build int, tests []string, claimant string) (map[string]int, error)
	// RerunsClaimed is Registry.RerunsClaimed: the re-runs a message
	// numbered before, when it comes again.
	RerunsClaimed(ctx context.Context, repo events.Repo, pull, build int, claimant string) (map[string]int, bool, error)
	// ClaimBuildFor is Registry.ClaimBuildFor: a /retest after the base
	// moved claims the new build it queues.
	ClaimBuildFor(ctx context.Context, repo events.Repo, pull int, sha, claimant string, rebuild bool) (events.Claim, error)
}

// commandPublisher queues what commands start: test attempts and the
// build of an approved head; RerunQueue has it.
type commandPublisher interface {
	PublishTest(ctx context.Context, job events.TestJob) error
	PublishPull(ctx context.Context, ev events.PullEvent) error
}

// approvalBook is the approval record of each pull request; Queue has it.
type approvalBook interface {
	ApprovalOf(ctx context.Context, repo events.Repo, pull int) (events.Approval, error)
	Approve(ctx context.Context, repo events.Repo, pull int, sha, by string) error
}

// commandRecords is what commands read and change of the build records;
// BuildRecords has it.
type commandRecords interface {
	BuildRecord(ctx context.Context, k events.BuildKey) (events.BuildRecord, error)
	UpdateBuild(ctx context.Context, k events.BuildKey, change func(*events.BuildRecord) error) (events.BuildRecord, error)
	RecentBuilds(ctx context.Context, repo events.Repo, n int) ([]events.BuildRecord, error)
}

// newCommandHandler is the command handler of w's parts, or nil when w
// has no Reruns.
func newCommandHandler(w *Worker) *commandHandler {
	o := w.opts
	if o.Reruns == nil {
		return nil
	}
	return &commandHandler{
		github: o.GitHub, writers: &w.trust, ledger: o.Reruns, reruns: o.Reruns, publish: o.Reruns,
		approvals: o.Queue, records: o.Records, tests: checkoutTests{ws: o.Workspace, eval: o.Evaluator},
		tips:      checkoutTests{ws: o.Workspace, eval: o.Evaluator},
		runLogURL: w.runLogURL, policy: o.Policy, metrics: o.Metrics, now: time.Now,
	}
}

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
		if w.commands == nil {
			return permanent(errors.New("worker: comment commands need Options.Reruns"))
		}
		if d.LastChance() {
			return w.commands.abandon(ctx, log, ev, d.NumDelivered)
		}
		return w.commands.handle(ctx, log, ev)
	})
	settle(ctx, log, d, err)
}

// outcome is what became of one command: accepted, refused with a reason
// for the reply, or nothing to do, with a note saying why (no error: an
// /ok-to-test of a head that needs no approval). An accepted command that
// did something else than asked says what in said: the reply tells it
// alongside the reaction.
type outcome struct {
	refusal string
	note    string
	said    string
}

func refused(format string, args ...any) outcome {
	return outcome{refusal: fmt.Sprintf(format, args...)}
}

// handle decides ev's commands from the facts planCommands asks for, one
// at a time, and carries the plan out.
func (h *commandHandler) handle(ctx context.Context, log *slog.Logger, ev events.CommandEvent) error {
	if !ev.Pressed() {
		mine, err := h.ledger.ClaimComment(ctx, ev.Repo, ev.Number, ev.CommentID, events.CommandsDigest(ev.Commands), ev.MsgID())
		if err != nil {
			return fmt.Errorf("claiming comment %d: %w", ev.CommentID, err)
		}
		if !mine {
			log.Info("comment's commands already handled for another delivery; nothing runs")
			return nil
		}
	}
	inst, err := h.github.Installation(ctx, ev.Installation)
	if err != nil {
		return fmt.Errorf("authenticating for installation %d: %w", ev.Installation, err)
	}
	f := commandFacts{ev: ev, policy: h.policy}
	for range factAuthorWrites + 1 {
		p := planCommands(f)
		if p.need == factNone {
			return h.act(ctx, log, inst, ev, p)
		}
		if err := h.gather(ctx, inst, &f, p.need); err != nil {
			return err
		}
	}
	return permanent(fmt.Errorf("worker: the plan of comment %d keeps asking for facts", ev.CommentID))
}

// act carries out plan p of ev's commands: each action in order, then the
// reaction and the reply. A failed step returns its error, and the
// message's redelivery plans again from what is then true.
func (h *commandHandler) act(ctx context.Context, log *slog.Logger, inst Installation, ev events.CommandEvent, p commandPlan) error {
	if p.refuseAuthor != "" {
		log.Info("command refused: author may not write to the repository")
		if ev.Pressed() {
			return nil
		}
		return h.refuse(ctx, log, inst, ev, p.refuseAuthor)
	}
	if p.pull != ev.Number {
		log = log.With("pull", p.pull)
	}
	for _, o := range p.outcomes {
		switch {
		case o.refusal != "":
			log.Info("command refused", "command", o.kind, "reason", o.refusal)
		case o.note != "":
			log.Info("command has nothing to do", "command", o.kind, "reason", o.note)
		case o.said != "":
			log.Info("command carried out otherwise than asked", "command", o.kind, "reason", o.said)
		}
	}
	for _, a := range p.actions {
		var err error
		switch {
		case a.retest != nil:
			err = h.rerun(ctx, log, ev, p.pull, a.retest)
		case a.rebuild != nil:
			var n int
			n, err = h.rebuild(ctx, log, ev, p.pull, a.rebuild)
			p.reply = strings.ReplaceAll(p.reply, nextBuild, strconv.Itoa(n))
		default:
			err = h.approve(ctx, log, ev, p.pull, a.approve)
		}
		if err != nil {
			return fmt.Errorf("carrying out /%s: %w", a.kind, err)
		}
	}
	if p.react {
		if err := h.react(ctx, inst, ev); err != nil {
			return err
		}
	}
	if p.reply == "" {
		return nil
	}
	return h.reply(ctx, inst, ev, p.reply)
}

// refuse replies text to ev's author, who may not write, unless they were replied to on this
// pull request within ReplyInterval, by this or any box; a reply held back
// is logged and counted, never posted.
func (h *commandHandler) refuse(ctx context.Context, log *slog.Logger, inst Installation, ev events.CommandEvent, text string) error {
	ok, err := h.ledger.AllowReply(ctx, ev.Repo, ev.Number, ev.Author, ev.MsgID(), h.now(), ReplyInterval)
	if err != nil {
		return fmt.Errorf("checking the reply limit: %w", err)
	}
	if !ok {
		log.Info("refusal not replied: the author had a reply on this pull request lately", "interval", ReplyInterval)
		h.metrics.RepliesHeld.Inc()
		return nil
	}
	return h.reply(ctx, inst, ev, text)
}

// rerun queues the re-runs of a, each numbered (per message and command,
// so a redelivery gets the same numbers), recorded as queued in the build
// record and published with a log of its own.
func (h *commandHandler) rerun(ctx context.Context, log *slog.Logger, ev events.CommandEvent, pull int, a *rerunAction) error {
	names := make([]string, len(a.tests))
	for i, t := range a.tests {
		names[i] = t.Name
	}
	runs, err := h.reruns.ClaimReruns(ctx, ev.Repo, pull, a.build, names, rerunClaimant(ev, a.index))
	if err != nil {
		return fmt.Errorf("numbering re-runs: %w", err)
	}
	started, err := h.recordRerunsQueued(ctx, ev, pull, a, runs)
	if err != nil {
		return err
	}
	for _, t := range a.tests {
		k := runs[t.Name]
		if started[t.Name] {
			// This message came again, and the re-run it queued
			// before has started: publishing it again, past the
			// stream's duplicate window, would run it twice.
			log.Info("re-run already started; not queued again", "build", a.build, "test", t.Name, "rerun", k)
			continue
		}
		job := events.TestJob{
			Version: events.Version, Repo: ev.Repo, Number: pull, HeadSHA: a.sha,
			Installation: ev.Installation, Build: a.build, Test: specOf(t), Attempt: 1, Rerun: k,
			BaseRef: a.baseRef, CloneURL: a.cloneURL,
			BaseSHA: a.baseSHA, TestSHA: a.tested,
		}
		if err := h.publish.PublishTest(ctx, job); err != nil {
			return fmt.Errorf("queuing re-run %d of %s: %w", k, t.Name, err)
		}
		h.metrics.TestsQueued.Inc()
		log.Info("re-run queued", "build", a.build, "test", t.Name, "rerun", k)
	}
	return nil
}

// rebuild queues a new build of a's head commit, which merges it into its
// base branch's tip as that build fetches it. The build number is claimed
// here, under the pull event's message id, so the reply can name it: the
// pull handler, claiming for the same message, resumes that claim, and a
// redelivery of the command claims and publishes the same build again (a
// duplicate the stream drops, or a claim the pull handler finds queued).
func (h *commandHandler) rebuild(ctx context.Context, log *slog.Logger, ev events.CommandEvent, pull int, a *rebuildAction) (int, error) {
	pe := rebuildEvent(ev, pull, a.sha)
	claim, err := h.reruns.ClaimBuildFor(ctx, ev.Repo, pull, a.sha, pe.MsgID(), true)
	if err != nil {
		return 0, fmt.Errorf("claiming a new build of %.7s: %w", a.sha, err)
	}
	if err := h.publish.PublishPull(ctx, pe); err != nil {
		return 0, fmt.Errorf("queuing build %d of %.7s: %w", claim.Build, a.sha, err)
	}
	log.Info("base moved since the build; head built again", "from", a.from, "build", claim.Build)
	return claim.Build, nil
}

// rerunClaimant is who claims the re-run numbers of command index of ev:
// the message and the command, so a redelivery gets the same numbers.
func rerunClaimant(ev events.CommandEvent, index int) string {
	return ev.MsgID() + "/" + strconv.Itoa(index)
}

// rebuildEvent is the pull event by which ev's commands build head sha of
// pull again; its message id claims the build.
func rebuildEvent(ev events.CommandEvent, pull int, sha string) events.PullEvent {
	return events.PullEvent{
		Version: events.Version, Repo: ev.Repo, Number: pull, HeadSHA: sha,
		Installation: ev.Installation, Delivery: ev.Delivery, Rebuild: true,
	}
}

// approve records that ev's author, a writer, approved head commit sha,
// and queues a pull event for it, the same event the approval label's
// webhook queues (its delivery id makes a redelivery queue it once).
func (h *commandHandler) approve(ctx context.Context, log *slog.Logger, ev events.CommandEvent, pull int, sha string) error {
	if err := h.approvals.Approve(ctx, ev.Repo, pull, sha, ev.Author); err != nil {
		return fmt.Errorf("recording approval by %s: %w", ev.Author, err)
	}
	pe := events.PullEvent{
		Version: events.Version, Repo: ev.Repo, Number: pull, HeadSHA: sha,
		Installation: ev.Installation, Delivery: ev.Delivery,
	}
	if err := h.publish.PublishPull(ctx, pe); err != nil {
		return fmt.Errorf("queuing the build of %.7s: %w", sha, err)
	}
	log.Info("head commit approved by command; build queued", "sha", sha, "approver", ev.Author)
	return nil
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
func (h *commandHandler) react(ctx context.Context, inst Installation, ev events.CommandEvent) error {
	if _, _, err := inst.Reactions.CreateIssueCommentReaction(ctx, ev.Repo.Owner, ev.Repo.Name, ev.CommentID, AcceptedReaction); err != nil {
		return fmt.Errorf("reacting to comment %d: %w", ev.CommentID, err)
	}
	return nil
}

// reply posts text on the pull request. A reply never starts a line with a
// command, so it cannot command YourCI itself.
func (h *commandHandler) reply(ctx context.Context, inst Installation, ev events.CommandEvent, text string) error {
	if _, _, err := inst.Comments.CreateComment(ctx, ev.Repo.Owner, ev.Repo.Name, ev.Number, &github.IssueComment{Body: github.Ptr(text)}); err != nil {
		return fmt.Errorf("replying to comment %d: %w", ev.CommentID, err)
	}
	return nil
}

// abandon answers a command that failed on every delivery, rather than
// leaving its author waiting for nothing.
func (h *commandHandler) abandon(ctx context.Context, log *slog.Logger, ev events.CommandEvent, delivered uint64) error {
	inst, err := h.github.Installation(ctx, ev.Installation)
	if err != nil {
		return fmt.Errorf("authenticating for installation %d: %w", ev.Installation, err)
	}
	log.Error("giving up on command", "deliveries", delivered)
	return h.reply(ctx, inst, ev, fmt.Sprintf("@%s: YourCI could not carry out this comment's commands after %d tries; see the worker's logs.", ev.Author, delivered))
}
