package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
)

// CommandKind names a comment command. New kinds (/ok-to-test, a check
// run's re-run button) are new constants handled by the worker's one
// dispatch function; a worker that meets a kind it does not know answers
// the comment instead of guessing.
type CommandKind string

// The comment commands.
const (
	// Retest runs again the failed and errored tests of the pull
	// request's current head, or the tests named in Command.Tests.
	Retest CommandKind = "retest"
)

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
}

// CommandEvent asks a worker to carry out the commands of one comment on a
// pull request (handle_command). Who wrote it is checked by the worker
// through the forge's API, never taken on the receiver's word.
type CommandEvent struct {
	Version      int    `json:"v"`
	Repo         Repo   `json:"repo"`
	Number       int    `json:"number"`
	Installation int64  `json:"installation,omitempty"`
	Delivery     string `json:"delivery,omitempty"`
	// CommentID is the comment's id, for the reaction that accepts it.
	CommentID int64 `json:"comment_id"`
	// Author is the login of the comment's author, whose permission on
	// the repository decides whether the commands run.
	Author   string    `json:"author"`
	Commands []Command `json:"commands"`
}

// CommandSubjects matches every CommandEvent (consumer handle_command).
const CommandSubjects = "yci.command.>"

const commandPrefix = "yci.command."

// CommandConsumer is the durable consumer of comment commands, shared by
// every worker.
const CommandConsumer = "handle_command"

// CommandSubject is the subject a CommandEvent for r is published on:
// yci.command.<owner>.<repo>, each token encoded with EncodeToken.
func CommandSubject(r Repo) string { return commandPrefix + repoTokens(r) }

// MsgID is the JetStream message id of the event: one per comment and
// delivery, so a redelivered webhook is queued once.
func (e CommandEvent) MsgID() string {
	return "command/" + EncodeToken(e.Repo.Owner) + "/" + EncodeToken(e.Repo.Name) + "/" +
		strconv.Itoa(e.Number) + "/" + strconv.FormatInt(e.CommentID, 10) + "/" + EncodeToken(e.Delivery)
}

// LogAttrs are the event's fields under YourCI's fixed log keys.
func (e CommandEvent) LogAttrs() []any {
	return []any{
		slog.String("repo", e.Repo.FullName()),
		slog.Int("pull", e.Number),
		slog.String("delivery", e.Delivery),
		slog.Int64("comment", e.CommentID),
		slog.String("author", e.Author),
	}
}

func (e CommandEvent) version() int { return e.Version }

func (e CommandEvent) validate() error {
	var errs []error
	if e.Repo.Owner == "" || e.Repo.Name == "" {
		errs = append(errs, fmt.Errorf("repository %q: %w", e.Repo.FullName(), ErrInvalidEvent))
	}
	if e.Number < 1 {
		errs = append(errs, fmt.Errorf("pull number %d: %w", e.Number, ErrInvalidEvent))
	}
	if e.CommentID < 1 {
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
		for _, name := range c.Tests {
			if name == "" {
				errs = append(errs, fmt.Errorf("empty test name in /%s: %w", c.Kind, ErrInvalidEvent))
			}
		}
	}
	return errors.Join(errs...)
}

// PublishCommand stores ev (with Version set) on the stream and returns once
// JetStream has acknowledged it, so a caller that got nil may tell GitHub
// the webhook was taken. The same comment of the same delivery published
// again within DuplicateWindow is stored once.
func (b *Bus) PublishCommand(ctx context.Context, ev CommandEvent) error {
	ev.Version = Version
	if err := ev.validate(); err != nil {
		return err
	}
	return b.publish(ctx, CommandSubject(ev.Repo), ev.MsgID(), ev)
}

// ConsumeCommands is ConsumePulls for CommandEvents from handle_command.
// Give it slots of its own: a command is answered in seconds, and must not
// wait for a slot behind hour-long tests.
func (b *Bus) ConsumeCommands(ctx context.Context, slots *Slots, h Handler[CommandEvent]) error {
	return consume(ctx, b, b.commands, CommandConsumer, slots, h, nil)
}
