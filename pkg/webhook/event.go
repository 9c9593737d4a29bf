package webhook

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/yourci/yourci/pkg/events"
)

// DefaultApprovalLabel is the label a maintainer puts on a pull request to
// have its tests run when the author is not trusted to trigger builds.
const DefaultApprovalLabel = "ok-to-test"

// Limits on names taken from a delivery. GitHub allows 39 characters for a
// login and 100 for a repository; Enterprise installations may be looser,
// so both get the repository's bound.
const (
	maxNameLen     = 100
	maxDeliveryLen = 128
)

var (
	// nameRe is the character set GitHub allows in logins and repository
	// names. Anything else (spaces, '*', '>', '/', control bytes) cannot be
	// a real repository and would be dangerous in a path or a NATS subject.
	nameRe = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)
	// shaRe accepts SHA-1 and SHA-256 object names as GitHub writes them:
	// lower-case hex only, so one commit has one spelling everywhere.
	shaRe = regexp.MustCompile(`^(?:[0-9a-f]{40}|[0-9a-f]{64})$`)
	// deliveryRe covers GitHub's GUIDs with room for other senders' ids
	// (a reconcile sweep, a test) while keeping the id safe as a NATS
	// message-id header.
	deliveryRe = regexp.MustCompile(`^[A-Za-z0-9._:-]+$`)
)

// pullDelivery is the part of a pull_request delivery YourCI reads. It is
// decoded from the verified raw body rather than taken from
// go-playground/webhooks' PullRequestPayload, whose Changes field (v6.4.0)
// has no "base" and so cannot tell a retargeted pull request from a retitled
// one.
type pullDelivery struct {
	Action      string `json:"action"`
	Number      int    `json:"number"`
	PullRequest struct {
		Number int  `json:"number"`
		Draft  bool `json:"draft"`
		Head   struct {
			SHA string `json:"sha"`
		} `json:"head"`
	} `json:"pull_request"`
	Repository struct {
		Name     string `json:"name"`
		FullName string `json:"full_name"`
		Owner    struct {
			Login string `json:"login"`
		} `json:"owner"`
	} `json:"repository"`
	Installation struct {
		ID int64 `json:"id"`
	} `json:"installation"`
	Label struct {
		Name string `json:"name"`
	} `json:"label"`
	Changes struct {
		Base json.RawMessage `json:"base"`
	} `json:"changes"`
}

// decodePull reads a pull_request delivery body. Malformed JSON, or JSON
// whose fields have the wrong types, is a *BadRequestError.
func decodePull(body []byte) (pullDelivery, error) {
	var pd pullDelivery
	if err := json.Unmarshal(body, &pd); err != nil {
		return pullDelivery{}, &BadRequestError{Field: "body", Problem: fmt.Sprintf("malformed pull_request payload: %v", err)}
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
// when the label is approvalLabel (compared case-insensitively, as GitHub
// treats label names; an empty approvalLabel makes no label trigger a
// build). Draft pull requests are built like any other: their authors open
// them to get early feedback, and the reconcile sweep, which lists open pull
// requests drafts included, would build them anyway.
//
// Every other action returns an error wrapping ErrIgnored that names the
// reason. A body that cannot be a real GitHub delivery (bad JSON, a head sha
// that is not a full lower-case hex object name, a number below 1, owner or
// repository names outside GitHub's character set, a missing delivery id)
// returns a *BadRequestError. The event's repository is always the base
// repository: a fork's own repository is never where code is fetched from.
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
		// A new base branch changes what the head merges into, so the
		// head commit, already built, is built again.
		Rebuild: pd.Action == "edited",
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
		if approvalLabel == "" || !strings.EqualFold(pd.Label.Name, approvalLabel) {
			return ignored(fmt.Sprintf("label %q is not the approval label", truncate(pd.Label.Name)))
		}
		return nil
	default:
		return ignored(fmt.Sprintf("action %q does not build", truncate(pd.Action)))
	}
}

// validate refuses events that no real GitHub delivery could produce.
func (pd pullDelivery) validate(ev events.PullEvent) error {
	if err := validName("repository.owner.login", ev.Repo.Owner, false); err != nil {
		return err
	}
	if err := validName("repository.name", ev.Repo.Name, true); err != nil {
		return err
	}
	if fn := pd.Repository.FullName; fn != "" && fn != ev.Repo.FullName() {
		return &BadRequestError{Field: "repository.full_name", Problem: "does not match owner and name"}
	}
	if ev.Number < 1 {
		return &BadRequestError{Field: "number", Problem: "must be at least 1"}
	}
	if n := pd.PullRequest.Number; n != 0 && n != ev.Number {
		return &BadRequestError{Field: "pull_request.number", Problem: "does not match number"}
	}
	if !shaRe.MatchString(ev.HeadSHA) {
		return &BadRequestError{Field: "pull_request.head.sha", Problem: "must be 40 or 64 lower-case hex digits"}
	}
	if ev.Installation < 0 {
		return &BadRequestError{Field: "installation.id", Problem: "must not be negative"}
	}
	return validDelivery(ev.Delivery)
}

// validName checks an owner or repository name. Names starting with '-'
// could read as options to git; "." and ".." as path steps. A leading '.'
// is allowed only for repositories (".github" is a real name).
func validName(field, name string, leadingDot bool) error {
	switch {
	case name == "":
		return &BadRequestError{Field: field, Problem: "is empty"}
	case len(name) > maxNameLen:
		return &BadRequestError{Field: field, Problem: fmt.Sprintf("is longer than %d characters", maxNameLen)}
	case !nameRe.MatchString(name):
		return &BadRequestError{Field: field, Problem: "has characters GitHub does not allow in names"}
	case name == "." || name == "..":
		return &BadRequestError{Field: field, Problem: "is a path step, not a name"}
	case name[0] == '-' || (name[0] == '.' && !leadingDot):
		return &BadRequestError{Field: field, Problem: fmt.Sprintf("must not start with %q", name[0])}
	}
	return nil
}

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
