package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
)

// CommandKind names a comment command, or a press of one of GitHub's
// re-run buttons. Each kind is handled by the worker's one dispatch
// function; a worker that meets a kind it does not know answers the
// comment instead of guessing.
type CommandKind string

// The comment commands and button presses.
const (
	// Retest runs again the failed and errored tests of the pull
	// request's current head, or the tests named in Command.Tests.
	Retest CommandKind = "retest"
	// OkToTest approves, from someone who may write to the repository,
	// the head commit the pull request had when the comment was written
	// (CommandEvent.WrittenAt), or the commit Command.SHA names, and
	// builds it.
	OkToTest CommandKind = "ok-to-test"
	// RerunCheck is GitHub's "Re-run" on one check run
	// (check_run.rerequested): it runs again the test named in
	// Command.Tests, of the build CommandEvent.Button names; no name
	// (the build-wide check) runs the failed tests, as Retest does.
	RerunCheck CommandKind = "rerun-check"
	// RerunSuite is "Re-run all checks" on the check suite
	// (check_suite.rerequested): it runs again every test of the latest
	// build of the suite's commit.
	RerunSuite CommandKind = "rerun-suite"
)

// Button is a press of one of GitHub's re-run buttons, as the
// check_run or check_suite rerequested webhook told it: the ids needed to
// find the tests again, never the payload.
type Button struct {
	// CheckRun is the id of the check run whose "Re-run" was pressed;
	// CheckSuite the id of the suite re-requested whole. Exactly one is
	// set.
	CheckRun   int64 `json:"check_run,omitempty"`
	CheckSuite int64 `json:"check_suite,omitempty"`
	// SHA is the commit the pressed check is on: a button pressed on a
	// commit that is no longer the pull request's head runs nothing.
	SHA string `json:"sha"`
	// Build is the build the check run's external_id names; 0 for a
	// suite, whose latest build is looked up.
	Build int `json:"build,omitempty"`
}

// Command is one command of a comment, parsed and validated by the
// receiver: the comment's text itself never travels.
type Command struct {
	Kind CommandKind `json:"kind"`
	// Tests are the test names given after the command, each one valid
	// as a test name, without duplicates; empty means "the failed ones".
	Tests []string `json:"tests,omitempty"`
	// Invalid counts the words after the command that cannot be test
	// names (or were over the receiver's limit); they are not carried,
	// only reported back to the commenter.
	Invalid int `json:"invalid,omitempty"`
	// SHA is the commit an OkToTest names ("/ok-to-test 1a2b3c4"): 7 to
	// 40 lower-case hex digits, a prefix of the approved head; empty
	// means the head the comment's writer saw.
	SHA string `json:"sha,omitempty"`
}

// CommandEvent asks a worker to carry out the commands of one comment on a
// pull request, or one press of a re-run button (handle_command). Who
// wrote or pressed it is checked by the worker through the forge's API,
// never taken on the receiver's word.
type CommandEvent struct {
	Version int  `json:"v"`
	Repo    Repo `json:"repo"`
	// Number is the pull request's; it may be 0 for a RerunSuite, whose
	// suite does not name pull requests from forks: the worker finds it
	// from the suite's check runs.
	Number       int    `json:"number"`
	Installation int64  `json:"installation,omitempty"`
	Delivery     string `json:"delivery,omitempty"`
	// CommentID is the comment's id, for the reaction that accepts it;
	// 0 for a button press.
	CommentID int64 `json:"comment_id"`
	// Button is set, instead of CommentID, for a press of a re-run
	// button; such an event holds one command, RerunCheck or RerunSuite.
	Button *Button `json:"button,omitempty"`
	// Author is the login of the comment's author (or of who pressed the
	// button), whose permission on the repository decides whether the
	// commands run.
	Author   string    `json:"author"`
	Commands []Command `json:"commands"`
	// WrittenAt is when the comment's text was written, by GitHub's
	// clock: its created_at, or its updated_at for an edit. Zero for a
	// button press (and for events queued before it was carried).
	WrittenAt time.Time `json:"written_at,omitzero"`
}

// Pressed reports whether the event is a button press, which has no
// comment to react or reply to.
func (e CommandEvent) Pressed() bool { return e.Button != nil }

// CommandSubjects matches every CommandEvent (consumer handle_command).
const CommandSubjects = "yci.command.>"

const commandPrefix = "yci.command."

// CommandConsumer is the durable consumer of comment commands, shared by
// every worker.
const CommandConsumer = "handle_command"

// CommandSubject is the subject a CommandEvent for r is published on:
// yci.command.<owner>.<repo>, each token encoded with EncodeToken.
func CommandSubject(r Repo) string { return commandPrefix + repoTokens(r) }

// MsgID is the JetStream message id of the event: one per comment (or
// pressed check run or suite) and delivery, so a redelivered webhook is
// queued once.
func (e CommandEvent) MsgID() string {
	source := strconv.FormatInt(e.CommentID, 10)
	switch {
	case e.Button != nil && e.Button.CheckRun != 0:
		source = "run-" + strconv.FormatInt(e.Button.CheckRun, 10)
	case e.Button != nil:
		source = "suite-" + strconv.FormatInt(e.Button.CheckSuite, 10)
	}
	return "command/" + EncodeToken(e.Repo.Owner) + "/" + EncodeToken(e.Repo.Name) + "/" +
		strconv.Itoa(e.Number) + "/" + source + "/" + EncodeToken(e.Delivery)
}

// LogAttrs are the event's fields under YourCI's fixed log keys.
func (e CommandEvent) LogAttrs() []any {
	attrs := []any{
		slog.String("repo", e.Repo.FullName()),
		slog.Int("pull", e.Number),
		slog.String("delivery", e.Delivery),
		slog.Int64("comment", e.CommentID),
		slog.String("author", e.Author),
	}
	if e.Button != nil {
		attrs = append(attrs, slog.String("sha", e.Button.SHA),
			slog.Int64("check_run", e.Button.CheckRun), slog.Int64("check_suite", e.Button.CheckSuite))
	}
	return attrs
}

func (e CommandEvent) version() int { return e.Version }

func (e CommandEvent) validate() error {
	var errs []error
	if e.Repo.Owner == "" || e.Repo.Name == "" {
		errs = append(errs, fmt.Errorf("repository %q: %w", e.Repo.FullName(), ErrInvalidEvent))
	}
	suite := e.Button != nil && e.Button.CheckSuite != 0
	if e.Number < 1 && !(suite && e.Number == 0) {
		errs = append(errs, fmt.Errorf("pull number %d: %w", e.Number, ErrInvalidEvent))
	}
	if e.Button != nil {
		errs = append(errs, e.Button.validate(e.CommentID, e.Commands))
	} else if e.CommentID < 1 {
		errs = append(errs, fmt.Errorf("comment id %d: %w", e.CommentID, ErrInvalidEvent))
	}
	if e.Author == "" {
		errs = append(errs, fmt.Errorf("empty comment author: %w", ErrInvalidEvent))
	}
	if len(e.Commands) == 0 {
		errs = append(errs, fmt.Errorf("no commands: %w", ErrInvalidEvent))
	}
	for _, c := range e.Commands {
		if c.Kind == "" {
			errs = append(errs, fmt.Errorf("command without a kind: %w", ErrInvalidEvent))
		}
		if c.SHA != "" && (c.Kind != OkToTest || !isSHAPrefix(c.SHA)) {
			errs = append(errs, fmt.Errorf("/%s names commit %q: %w", c.Kind, c.SHA, ErrInvalidEvent))
		}
		for _, name := range c.Tests {
			if err := ValidateTestName(name); err != nil {
				errs = append(errs, fmt.Errorf("in /%s: %w", c.Kind, err))
			}
		}
	}
	return errors.Join(errs...)
}

// validate checks a button press: one check run or one suite, on a
// commit, with the one command of its kind and no comment.
func (b Button) validate(comment int64, cmds []Command) error {
	var errs []error
	if (b.CheckRun < 1) == (b.CheckSuite < 1) {
		errs = append(errs, fmt.Errorf("button press names check run %d and suite %d, want exactly one: %w", b.CheckRun, b.CheckSuite, ErrInvalidEvent))
	}
	if comment != 0 {
		errs = append(errs, fmt.Errorf("button press with comment id %d: %w", comment, ErrInvalidEvent))
	}
	errs = append(errs, ValidateSHA(b.SHA))
	if b.Build < 0 || (b.CheckRun > 0 && b.Build < 1) {
		errs = append(errs, fmt.Errorf("button press for build %d: %w", b.Build, ErrInvalidEvent))
	}
	want := RerunSuite
	if b.CheckRun > 0 {
		want = RerunCheck
	}
	if len(cmds) != 1 || cmds[0].Kind != want {
		errs = append(errs, fmt.Errorf("button press holds %d commands, want one %s: %w", len(cmds), want, ErrInvalidEvent))
	}
	return errors.Join(errs...)
}

// PublishCommand stores ev (with its version set: versionOf) on the stream and returns once
// JetStream has acknowledged it, so a caller that got nil may tell GitHub
// the webhook was taken. The same comment of the same delivery published
// again within DuplicateWindow is stored once.
func (q *Queue) PublishCommand(ctx context.Context, ev CommandEvent) error {
	ev.Version = versionOf(ev.Number)
	if err := ev.validate(); err != nil {
		return err
	}
	return q.publish(ctx, CommandSubject(ev.Repo), ev.MsgID(), ev)
}

// ConsumeCommands is ConsumePulls for CommandEvents from handle_command.
// Give it slots of its own: a command is answered in seconds, and must not
// wait for a slot behind hour-long tests.
func (q *Queue) ConsumeCommands(ctx context.Context, slots *Slots, h Handler[CommandEvent]) error {
	return consume(ctx, q, single{q, q.commands}, CommandConsumer, slots, h, nil)
}

// MinSHAPrefix is the fewest hex digits that may name a commit in a
// command.
const MinSHAPrefix = 7

// isSHAPrefix reports whether s is MinSHAPrefix to 40 lower-case hex
// digits.
func isSHAPrefix(s string) bool {
	if len(s) < MinSHAPrefix || len(s) > 40 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// ParseSHAPrefix returns word as a commit prefix a command may carry,
// lower-cased, and whether it is one (7 to 40 hex digits).
func ParseSHAPrefix(word string) (string, bool) {
	s := strings.ToLower(word)
	return s, isSHAPrefix(s)
}
