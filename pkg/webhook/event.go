package webhook

import (
	"encoding/json"
	"fmt"
	"regexp"

	"github.com/yourci/yourci/pkg/events"
)

// DefaultApprovalLabel is the label a maintainer puts on a pull request to
// have its tests run when the author is not trusted to trigger builds.
const DefaultApprovalLabel = events.DefaultApprovalLabel

// maxDeliveryLen bounds the X-GitHub-Delivery id.
const maxDeliveryLen = 128

// deliveryRe covers GitHub's GUIDs with room for other senders' ids (a
// reconcile sweep, a test) while keeping the id safe as a NATS message-id
// header.
var deliveryRe = regexp.MustCompile(`^[A-Za-z0-9._:-]+$`)

// pullDelivery is the part of a pull_request delivery YourCI reads. It is
// decoded from the verified raw body rather than taken from
// go-playground/webhooks' PullRequestPayload, whose Changes field (v6.4.0)
// has no "base" and so cannot tell a retargeted pull request from a retitled
// one.
type pullDelivery struct {
	Action       string         `json:"action"`
	Number       int            `json:"number"`
	PullRequest  pullPart       `json:"pull_request"`
	Repository   repositoryPart `json:"repository"`
	Installation struct {
		ID int64 `json:"id"`
	} `json:"installation"`
	Label struct {
		Name string `json:"name"`
	} `json:"label"`
	Sender struct {
		Login string `json:"login"`
	} `json:"sender"`
	Changes struct {
		Base json.RawMessage `json:"base"`
	} `json:"changes"`
}

// repositoryPart is the repository of a delivery, as every event YourCI
// reads names it.
type repositoryPart struct {
	Name     string `json:"name"`
	FullName string `json:"full_name"`
	Owner    struct {
		Login string `json:"login"`
	} `json:"owner"`
}

// validate refuses r, the delivery's repository as an event names it, when
// no real GitHub delivery could name it: the one rule of pkg/events, and a
// full name that agrees with owner and name.
func (p repositoryPart) validate(r events.Repo) error {
	if err := events.ValidateOwner(r.Owner); err != nil {
		return &BadRequestError{Field: "repository.owner.login", Problem: err.Error()}
	}
	if err := events.ValidateRepoName(r.Name); err != nil {
		return &BadRequestError{Field: "repository.name", Problem: err.Error()}
	}
	if p.FullName != "" && p.FullName != r.FullName() {
		return &BadRequestError{Field: "repository.full_name", Problem: "does not match owner and name"}
	}
	return nil
}

// decodePull reads a pull_request delivery body: one check of all of it
// (validJSON), one decode of what YourCI reads (see decodeObject). Malformed JSON, or
// JSON whose fields have the wrong types, is a *BadRequestError.
func decodePull(body []byte) (pullDelivery, error) {
	var pd pullDelivery
	var err error
	if !validJSON(body) {
		// Only for the error's text: a refusal may take its time.
		err = json.Unmarshal(body, &pullDelivery{})
	} else {
		err = pd.decode(body)
	}
	if err != nil {
		return pullDelivery{}, &BadRequestError{Field: "body", Problem: fmt.Sprintf("malformed pull_request payload: %v", err)}
	}
	// The object is cut from the body, not decoded; one too large to
	// carry is not copied.
	if raw := pd.PullRequest.raw; len(raw) <= events.MaxPullLen {
		pd.PullRequest.raw = append(json.RawMessage(nil), raw...)
	} else {
		pd.PullRequest.raw = nil
	}
	return pd, nil
}

// PullEventFrom turns the body of a pull_request delivery into the event
// that asks for a build of its head commit. It is pure: the same body and
// delivery id always give the same answer, and it may be called from any
// goroutine.
//
// Built actions: opened, reopened, synchronize, ready_for_review; edited
// only when the base branch changed (the merge result differs); labeled only
// when the label is approvalLabel (events.IsApprovalLabel: compared
// case-insensitively, as GitHub treats label names; an empty approvalLabel
// makes no label trigger a build), with LabeledBy set to the sender, whose
// permission the worker checks before the label counts. Draft pull requests are built like any other: their authors open
// them to get early feedback, and the reconcile sweep, which lists open pull
// requests drafts included, would build them anyway.
//
// Every other action returns an error wrapping ErrIgnored that names the
// reason. A body that cannot be a real GitHub delivery (bad JSON, a head sha
// that is not a full lower-case hex object name, a number below 1, owner or
// repository names events.Repo.Validate refuses, a missing delivery id)
// returns a *BadRequestError. The event's repository is always the base
// repository: a fork's own repository is never where code is fetched from.
// The event carries the delivered pull_request object and its updated_at
// (see events.PullEvent.Pull), unless it is over events.MaxPullLen.
func PullEventFrom(body []byte, delivery, approvalLabel string) (events.PullEvent, error) {
	pd, err := decodePull(body)
	if err != nil {
		return events.PullEvent{}, err
	}
	return pd.event(delivery, approvalLabel)
}

// event applies the action rules and validation of PullEventFrom.
func (pd pullDelivery) event(delivery, approvalLabel string) (events.PullEvent, error) {
	if err := pd.wanted(approvalLabel); err != nil {
		return events.PullEvent{}, err
	}
	ev := events.PullEvent{
		Version:      events.Version,
		Repo:         events.Repo{Owner: pd.Repository.Owner.Login, Name: pd.Repository.Name},
		Number:       pd.Number,
		HeadSHA:      pd.PullRequest.Head.SHA,
		Installation: pd.Installation.ID,
		Delivery:     delivery,
		// The pull request as this signed delivery has it is as fresh
		// as an API read: the worker builds from it.
		Pull:          pd.PullRequest.carried(),
		PullUpdatedAt: pd.PullRequest.UpdatedAt.UTC(),
		// A new base branch changes what the head merges into, so the
		// head commit, already built, is built again.
		Rebuild: pd.Action == "edited",
	}
	if pd.Action == "labeled" {
		ev.LabeledBy = pd.Sender.Login
	}
	if err := pd.validate(ev); err != nil {
		return events.PullEvent{}, err
	}
	return ev, nil
}

// wanted returns nil when the action asks for a build, and an error
// wrapping ErrIgnored otherwise.
func (pd pullDelivery) wanted(approvalLabel string) error {
	switch pd.Action {
	case "opened", "reopened", "synchronize", "ready_for_review":
		return nil
	case "edited":
		if len(pd.Changes.Base) == 0 || string(pd.Changes.Base) == "null" {
			return ignored("action edited without a base branch change")
		}
		return nil
	case "labeled":
		if !events.IsApprovalLabel(pd.Label.Name, approvalLabel) {
			return ignored(fmt.Sprintf("label %q is not the approval label", truncate(pd.Label.Name)))
		}
		return nil
	default:
		return ignored(fmt.Sprintf("action %q does not build", truncate(pd.Action)))
	}
}

// validate refuses events that no real GitHub delivery could produce. The
// repository, number and head follow the one definition in pkg/events, so
// nothing published here is refused downstream as invalid.
func (pd pullDelivery) validate(ev events.PullEvent) error {
	if err := pd.Repository.validate(ev.Repo); err != nil {
		return err
	}
	if err := events.ValidatePullRequest(ev.Number); err != nil {
		return &BadRequestError{Field: "number", Problem: "must be a pull request number"}
	}
	if n := pd.PullRequest.Number; n != 0 && n != ev.Number {
		return &BadRequestError{Field: "pull_request.number", Problem: "does not match number"}
	}
	if err := events.ValidateSHA(ev.HeadSHA); err != nil {
		return &BadRequestError{Field: "pull_request.head.sha", Problem: "must be 40 or 64 lower-case hex digits"}
	}
	if ev.Installation < 0 {
		return &BadRequestError{Field: "installation.id", Problem: "must not be negative"}
	}
	if pd.Action == "labeled" && !loginRe.MatchString(ev.LabeledBy) {
		return &BadRequestError{Field: "sender.login", Problem: "is not a login"}
	}
	return validDelivery(ev.Delivery)
}

// loginRe is what the approver's login may look like: it is only compared
// and passed to the permission API, never put into a path.
var loginRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,99}(?:\[bot\])?$`)

// validDelivery checks the X-GitHub-Delivery id, which becomes the
// JetStream message id that de-duplicates redeliveries.
func validDelivery(id string) error {
	switch {
	case id == "":
		return &BadRequestError{Field: "X-GitHub-Delivery", Problem: "is missing"}
	case len(id) > maxDeliveryLen:
		return &BadRequestError{Field: "X-GitHub-Delivery", Problem: fmt.Sprintf("is longer than %d characters", maxDeliveryLen)}
	case !deliveryRe.MatchString(id):
		return &BadRequestError{Field: "X-GitHub-Delivery", Problem: "has characters outside [A-Za-z0-9._:-]"}
	}
	return nil
}

// truncate bounds outside text quoted in answers and logs.
func truncate(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}
