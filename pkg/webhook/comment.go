package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/yourci/yourci/pkg/events"
)

// Limits on what one comment may ask, so that a command event stays a few
// kilobytes however long the comment: further commands are not read, and
// further names count as Invalid.
const (
	MaxCommandsPerComment = 10
	MaxTestsPerCommand    = 50
)

// commandWords maps a command's first word, compared case-insensitively as
// Prow does, to its kind.
var commandWords = map[string]events.CommandKind{
	"/retest":     events.Retest,
	"/ok-to-test": events.OkToTest,
}

// takesNames says which commands read test names after their word; the
// words after any other command are ignored, as Prow ignores them.
var takesNames = map[events.CommandKind]bool{events.Retest: true}

// CommandPublisher stores a command event durably, returning nil only once
// the queue has acknowledged it, with the event's MsgID as its
// de-duplication id. It is called from many goroutines at once;
// pkg/events' Bus satisfies it.
type CommandPublisher interface {
	PublishCommand(ctx context.Context, ev events.CommandEvent) error
}

// WithCommands makes the handler publish the commands of issue_comment
// deliveries to p. Without it, every issue_comment is ignored.
func WithCommands(p CommandPublisher) Option { return func(h *handler) { h.commands = p } }

// commentDelivery is the part of an issue_comment delivery YourCI reads.
type commentDelivery struct {
	Action string `json:"action"`
	Issue  struct {
		Number int `json:"number"`
		// PullRequest is present (an object of links) only when the
		// issue is a pull request.
		PullRequest json.RawMessage `json:"pull_request"`
	} `json:"issue"`
	Comment struct {
		ID        int64     `json:"id"`
		Body      string    `json:"body"`
		CreatedAt time.Time `json:"created_at"`
		UpdatedAt time.Time `json:"updated_at"`
		User      struct {
			Login string `json:"login"`
			Type  string `json:"type"`
		} `json:"user"`
	} `json:"comment"`
	Sender struct {
		Login string `json:"login"`
	} `json:"sender"`
	Repository   repositoryPart `json:"repository"`
	Installation struct {
		ID int64 `json:"id"`
	} `json:"installation"`
}

// CommandEventFrom turns the body of an issue_comment delivery into the
// event that asks a worker to carry out its commands. It is pure: the same
// body and delivery id always give the same answer, and it may be called
// from any goroutine.
//
// Only a comment on a pull request, newly created or edited by its own
// author (an edit is a new text: its commands run unless the same ones
// ran before, which the worker decides by the comment's id and
// events.CommandsDigest), written by a user (not a bot, which keeps
// YourCI's own replies from commanding it), holding at least one command
// (see ParseCommands) gives an event. The event's WrittenAt is the
// comment's created_at, or its updated_at for an edit: when its writer
// saw the pull request as it was. Every other
// delivery returns an error wrapping ErrIgnored that names the reason. Who
// wrote the comment is not judged here: the worker asks GitHub whether the
// author may write to the repository. The comment's text never leaves this
// function; the event carries the parsed commands only. A body that cannot
// be a real GitHub delivery returns a *BadRequestError.
func CommandEventFrom(body []byte, delivery string) (events.CommandEvent, error) {
	var cd commentDelivery
	if err := json.Unmarshal(body, &cd); err != nil {
		return events.CommandEvent{}, &BadRequestError{Field: "body", Problem: fmt.Sprintf("malformed issue_comment payload: %v", err)}
	}
	return cd.event(delivery)
}

func (cd commentDelivery) event(delivery string) (events.CommandEvent, error) {
	written := cd.Comment.CreatedAt
	switch {
	case cd.Action == "edited" && !strings.EqualFold(cd.Sender.Login, cd.Comment.User.Login):
		// Only the author's own words command: an edit by someone else
		// (a maintainer tidying it) runs nothing.
		return events.CommandEvent{}, ignored("comment edited by someone other than its author")
	case cd.Action == "edited":
		written = cd.Comment.UpdatedAt
	case cd.Action != "created":
		return events.CommandEvent{}, ignored(fmt.Sprintf("comment action %q runs no command", truncate(cd.Action)))
	case len(cd.Issue.PullRequest) == 0 || string(cd.Issue.PullRequest) == "null":
		return events.CommandEvent{}, ignored("comment on an issue, not a pull request")
	case strings.EqualFold(cd.Comment.User.Type, "Bot"):
		return events.CommandEvent{}, ignored("comment by a bot")
	}
	cmds := ParseCommands(cd.Comment.Body)
	if len(cmds) == 0 {
		return events.CommandEvent{}, ignored("comment holds no command")
	}
	ev := events.CommandEvent{
		Version:      events.Version,
		Repo:         events.Repo{Owner: cd.Repository.Owner.Login, Name: cd.Repository.Name},
		Number:       cd.Issue.Number,
		Installation: cd.Installation.ID,
		Delivery:     delivery,
		CommentID:    cd.Comment.ID,
		Author:       cd.Comment.User.Login,
		Commands:     cmds,
		WrittenAt:    written.UTC(),
	}
	return ev, cd.validate(ev)
}

// validate refuses events that no real GitHub delivery could produce.
func (cd commentDelivery) validate(ev events.CommandEvent) error {
	if err := cd.Repository.validate(ev.Repo); err != nil {
		return err
	}
	if events.ValidatePullRequest(ev.Number) != nil {
		return &BadRequestError{Field: "issue.number", Problem: "must be a pull request number"}
	}
	if ev.CommentID < 1 {
		return &BadRequestError{Field: "comment.id", Problem: "must be at least 1"}
	}
	// A user's login follows the rule of an owner's.
	if err := events.ValidateOwner(ev.Author); err != nil {
		return &BadRequestError{Field: "comment.user.login", Problem: err.Error()}
	}
	if ev.WrittenAt.IsZero() {
		return &BadRequestError{Field: "comment.created_at", Problem: "missing"}
	}
	if ev.Installation < 0 {
		return &BadRequestError{Field: "installation.id", Problem: "must not be negative"}
	}
	return validDelivery(ev.Delivery)
}

// ParseCommands returns the commands of a comment, in order: every line
// that starts (after at most three spaces) with a command word, such as
// "/retest", "/retest foo-x bar-y" or "/ok-to-test". Text around them is ignored, and so
// are lines Markdown shows as quotes or code (quoted lines, fenced and
// indented code blocks) and HTML comments, so that quoting someone's
// command does not run it again. The words after /retest are test names:
// duplicates are dropped, and words that cannot be test names (by
// events.ValidateTestName) are counted in Invalid, never carried. The word
// after /ok-to-test, when it is 7 to 40 hex digits, names the commit to
// approve; other words after it are ignored. A command given twice runs
// once: every /retest line of a comment merges into one /retest of the
// union of their names (a bare /retest beside named ones adds nothing:
// the names say what to run), and /ok-to-test lines merge when they name
// the same commit. At most MaxCommandsPerComment lines are read. It is
// pure and safe for concurrent use.
func ParseCommands(body string) []events.Command {
	var (
		cmds    []events.Command
		fence   string // the open code fence ("```" or "~~~"), or ""
		comment bool   // inside an HTML comment
	)
	for line := range strings.Lines(body) {
		line = strings.TrimRight(line, "\r\n")
		if comment {
			comment = !strings.Contains(line, "-->")
			continue
		}
		if strings.HasPrefix(line, "    ") || strings.HasPrefix(line, "\t") {
			continue // indented code, or a fence's content
		}
		text := strings.TrimLeft(line, " ")
		if fence != "" {
			if strings.HasPrefix(text, fence) {
				fence = ""
			}
			continue
		}
		switch {
		case strings.HasPrefix(text, "```"), strings.HasPrefix(text, "~~~"):
			fence = text[:3]
			continue
		case strings.HasPrefix(text, "<!--"):
			comment = !strings.Contains(text[4:], "-->")
			continue
		}
		if !strings.HasPrefix(text, "/") {
			continue // every command word starts with '/'
		}
		if cmd, ok := parseLine(text); ok {
			cmds = append(cmds, cmd)
			if len(cmds) == MaxCommandsPerComment {
				break
			}
		}
	}
	return merge(cmds)
}

// merge folds the repeated commands of one comment into one each, in the
// order of their first appearance (see ParseCommands).
func merge(cmds []events.Command) []events.Command {
	var out []events.Command
	retest := -1
	for _, c := range cmds {
		switch {
		case c.Kind == events.Retest && retest >= 0:
			r := &out[retest]
			r.Invalid += c.Invalid
			for _, name := range c.Tests {
				if !slices.Contains(r.Tests, name) {
					if len(r.Tests) == MaxTestsPerCommand {
						r.Invalid++
						continue
					}
					r.Tests = append(r.Tests, name)
				}
			}
		case c.Kind == events.Retest:
			retest = len(out)
			out = append(out, c)
		case !slices.ContainsFunc(out, func(o events.Command) bool { return o.Kind == c.Kind && o.SHA == c.SHA }):
			out = append(out, c)
		}
	}
	return out
}

// parseLine reads one command line; ok is false when the line is no command.
func parseLine(text string) (cmd events.Command, ok bool) {
	words := strings.Fields(text)
	if len(words) == 0 {
		return events.Command{}, false
	}
	kind, ok := commandWords[strings.ToLower(words[0])]
	if !ok {
		return events.Command{}, false
	}
	cmd = events.Command{Kind: kind}
	if kind == events.OkToTest && len(words) > 1 {
		if sha, ok := events.ParseSHAPrefix(words[1]); ok {
			cmd.SHA = sha
		}
	}
	if !takesNames[kind] {
		return cmd, true
	}
	seen := map[string]bool{}
	for _, w := range words[1:] {
		switch {
		case seen[w]:
		case events.ValidateTestName(w) != nil, len(cmd.Tests) == MaxTestsPerCommand:
			cmd.Invalid++
		default:
			seen[w] = true
			cmd.Tests = append(cmd.Tests, w)
		}
	}
	return cmd, true
}

// publishCommand builds the command event from the verified body and
// publishes it, waiting for the acknowledgement, as publish does for pull
// events.
func (h *handler) publishCommand(ctx context.Context, body []byte, d *delivery) error {
	if h.commands == nil {
		return ignored("comment commands are not enabled on this receiver")
	}
	var cd commentDelivery
	if err := json.Unmarshal(body, &cd); err != nil {
		return &BadRequestError{Field: "body", Problem: fmt.Sprintf("malformed issue_comment payload: %v", err)}
	}
	d.action, d.pull = cd.Action, cd.Issue.Number
	if cd.Repository.Owner.Login != "" || cd.Repository.Name != "" {
		d.repo = cd.Repository.Owner.Login + "/" + cd.Repository.Name
	}
	ev, err := cd.event(d.id)
	if err != nil {
		return err
	}
	return h.sendCommand(ctx, ev, d)
}

// sendCommand publishes a command event, waiting for the acknowledgement
// within the publish timeout, detached from the client's connection as
// publish is.
func (h *handler) sendCommand(ctx context.Context, ev events.CommandEvent, d *delivery) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.publishTimeout)
	defer cancel()
	err := h.commands.PublishCommand(ctx, ev)
	switch {
	case errors.Is(err, events.ErrInvalidEvent):
		return &BadRequestError{Field: "event", Problem: err.Error()}
	case err != nil:
		return fmt.Errorf("%w: publishing command event: %w", errUnavailable, err)
	}
	d.published = true
	return nil
}
