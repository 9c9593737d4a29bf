package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/yourci/yourci/pkg/events"
)

// eventMergeGroup is GitHub's merge queue asking for checks on a group
// (checks_requested) or giving one up (destroyed).
const eventMergeGroup = "merge_group"

// groupDelivery is the part of a merge_group delivery YourCI reads, and
// the merge group and repository objects as delivered, which the pull
// object .yci.py reads is made of (see groupPull).
type groupDelivery struct {
	Action     string          `json:"action"`
	Reason     string          `json:"reason"`
	MergeGroup json.RawMessage `json:"merge_group"`
	Repository json.RawMessage `json:"repository"`
	// Installation is the App installation the delivery came through.
	Installation struct {
		ID int64 `json:"id"`
	} `json:"installation"`

	group groupFields
	repo  repositoryPart
}

// groupFields are the merge group's members YourCI reads.
type groupFields struct {
	HeadSHA    string `json:"head_sha"`
	HeadRef    string `json:"head_ref"`
	BaseSHA    string `json:"base_sha"`
	BaseRef    string `json:"base_ref"`
	HeadCommit struct {
		Timestamp time.Time `json:"timestamp"`
	} `json:"head_commit"`
}

// GroupEvent is what a merge_group delivery asks for: a build of the
// group's head (Destroyed false), or that the group's tests stop.
type GroupEvent struct {
	// Event builds the group's head commit, numbered
	// events.GroupNumber(head sha). For a destroyed group it only names
	// the group: Repo, Number and HeadSHA.
	Event     events.PullEvent
	Destroyed bool
	// Reason is why a group was destroyed ("merged", "invalidated",
	// "dequeued"), as GitHub says it; for logs.
	Reason string
}

// GroupEventFrom turns the body of a merge_group delivery into what it
// asks for. It is pure, like PullEventFrom.
//
// checks_requested builds the group's head commit like a pull request's
// head: the event carries a pull object made for .yci.py (see groupPull)
// and, as its updated_at, the head commit's timestamp. destroyed names
// the group whose tests stop. Every other action returns an error
// wrapping ErrIgnored. A body no GitHub delivery could hold (bad JSON, a
// head or base sha that is not a full lower-case commit id, refs outside
// what the merge queue writes (events.ValidateGroupRefs), repository
// names events.Repo.Validate refuses, a missing timestamp or delivery id)
// returns a *BadRequestError.
func GroupEventFrom(body []byte, delivery string) (GroupEvent, error) {
	gd, err := decodeGroup(body)
	if err != nil {
		return GroupEvent{}, err
	}
	return gd.event(delivery)
}

// decodeGroup decodes a merge_group delivery; see GroupEventFrom.
func decodeGroup(body []byte) (groupDelivery, error) {
	var gd groupDelivery
	bad := func(field string, err error) (groupDelivery, error) {
		return groupDelivery{}, &BadRequestError{Field: field, Problem: fmt.Sprintf("malformed merge_group payload: %v", err)}
	}
	if err := json.Unmarshal(body, &gd); err != nil {
		return bad("body", err)
	}
	if !isObject(gd.MergeGroup) {
		return groupDelivery{}, &BadRequestError{Field: "merge_group", Problem: "is not an object"}
	}
	if !isObject(gd.Repository) {
		return groupDelivery{}, &BadRequestError{Field: "repository", Problem: "is not an object"}
	}
	if err := json.Unmarshal(gd.MergeGroup, &gd.group); err != nil {
		return bad("merge_group", err)
	}
	if err := json.Unmarshal(gd.Repository, &gd.repo); err != nil {
		return bad("repository", err)
	}
	return gd, nil
}

func isObject(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 1 && raw[0] == '{'
}

// event applies the action rules and validation of GroupEventFrom.
func (gd groupDelivery) event(delivery string) (GroupEvent, error) {
	switch gd.Action {
	case "checks_requested", "destroyed":
	default:
		return GroupEvent{}, ignored(fmt.Sprintf("merge_group action %q does not build", truncate(gd.Action)))
	}
	repo := events.Repo{Owner: gd.repo.Owner.Login, Name: gd.repo.Name}
	if err := gd.repo.validate(repo); err != nil {
		return GroupEvent{}, err
	}
	g := gd.group
	if events.ValidateSHA(g.HeadSHA) != nil {
		return GroupEvent{}, &BadRequestError{Field: "merge_group.head_sha", Problem: "must be 40 or 64 lower-case hex digits"}
	}
	number, err := events.GroupNumber(g.HeadSHA)
	if err != nil {
		return GroupEvent{}, &BadRequestError{Field: "merge_group.head_sha", Problem: err.Error()}
	}
	if gd.Installation.ID < 0 {
		return GroupEvent{}, &BadRequestError{Field: "installation.id", Problem: "must not be negative"}
	}
	if err := validDelivery(delivery); err != nil {
		return GroupEvent{}, err
	}
	ev := events.PullEvent{
		Version: events.Version, Repo: repo, Number: number, HeadSHA: g.HeadSHA,
		Installation: gd.Installation.ID, Delivery: delivery,
	}
	if gd.Action == "destroyed" {
		ev.PullUpdatedAt = events.GroupDestroyedAt
		return GroupEvent{Event: ev, Destroyed: true, Reason: truncate(gd.Reason)}, nil
	}
	if err := gd.validateBuild(); err != nil {
		return GroupEvent{}, err
	}
	pull, err := gd.pull()
	if err != nil {
		return GroupEvent{}, err
	}
	ev.Pull, ev.PullUpdatedAt = pull, g.HeadCommit.Timestamp.UTC()
	return GroupEvent{Event: ev}, nil
}

// validateBuild refuses a group to be built that no merge queue could
// have asked for.
func (gd groupDelivery) validateBuild() error {
	g := gd.group
	if events.ValidateSHA(g.BaseSHA) != nil {
		return &BadRequestError{Field: "merge_group.base_sha", Problem: "must be 40 or 64 lower-case hex digits"}
	}
	if err := events.ValidateGroupRefs(g.HeadRef, g.BaseRef); err != nil {
		return &BadRequestError{Field: "merge_group.head_ref", Problem: err.Error()}
	}
	if g.HeadCommit.Timestamp.IsZero() {
		return &BadRequestError{Field: "merge_group.head_commit.timestamp", Problem: "is missing"}
	}
	return nil
}

// groupPullObject is the pull object .yci.py reads for a merge group:
// the members that work for both kinds (head and base, each with its sha,
// short ref and repository), the merge group as GitHub delivered it, by
// which .yci.py tells a group from a pull request, and number null. state
// "open" and updated_at let the worker take it as it takes a webhook's
// pull request; title, the queue's branch, names the group on the pages.
type groupPullObject struct {
	Number     *int            `json:"number"`
	Title      string          `json:"title"`
	State      string          `json:"state"`
	UpdatedAt  time.Time       `json:"updated_at"`
	Head       groupSide       `json:"head"`
	Base       groupSide       `json:"base"`
	MergeGroup json.RawMessage `json:"merge_group"`
}

type groupSide struct {
	SHA  string          `json:"sha"`
	Ref  string          `json:"ref"`
	Repo json.RawMessage `json:"repo"`
}

// pull makes the pull object the event carries; one over
// events.MaxPullLen (a repository object GitHub never sends) is refused,
// as the worker could not read it from anywhere else.
func (gd groupDelivery) pull() (json.RawMessage, error) {
	g := gd.group
	obj := groupPullObject{
		Title: strings.TrimPrefix(g.HeadRef, "refs/heads/"), State: "open", UpdatedAt: g.HeadCommit.Timestamp.UTC(),
		Head:       groupSide{SHA: g.HeadSHA, Ref: strings.TrimPrefix(g.HeadRef, "refs/heads/"), Repo: gd.Repository},
		Base:       groupSide{SHA: g.BaseSHA, Ref: strings.TrimPrefix(g.BaseRef, "refs/heads/"), Repo: gd.Repository},
		MergeGroup: gd.MergeGroup,
	}
	raw, err := json.Marshal(obj)
	if err != nil {
		return nil, &BadRequestError{Field: "merge_group", Problem: err.Error()}
	}
	if len(raw) > events.MaxPullLen {
		return nil, &BadRequestError{Field: "merge_group", Problem: fmt.Sprintf("is over %d bytes with its repository", events.MaxPullLen)}
	}
	return raw, nil
}

// publishGroup handles a verified merge_group delivery: a group to build
// is recorded as its head and published like a pull event; a destroyed
// one is recorded closed and announced, so its running tests stop and its
// queued ones are dropped when they come up, and answered as ignored (it
// publishes nothing).
func (h *handler) publishGroup(ctx context.Context, raw []byte, d *delivery) error {
	ge, err := GroupEventFrom(raw, d.id)
	if err != nil {
		return err
	}
	ev := ge.Event
	d.repo, d.pull, d.sha, d.group = ev.Repo.FullName(), ev.Number, ev.HeadSHA, events.DescribePull(ev.Number)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.publishTimeout)
	defer cancel()
	if ge.Destroyed {
		d.action = "destroyed"
		h.recordHead(ctx, ev, true)
		if h.heads != nil {
			a := events.HeadAnnouncement{Repo: ev.Repo, Number: ev.Number, SHA: ev.HeadSHA, Closed: true}
			if err := h.heads.AnnounceHead(a); err != nil {
				h.log.Warn("announcing destroyed merge group", "repo", a.Repo.FullName(), "merge_group", d.group, "err", err)
			}
		}
		return ignored(fmt.Sprintf("merge group destroyed (%s): its tests stop", ge.Reason))
	}
	d.action = "checks_requested"
	return h.publishEvent(ctx, ev, d)
}
