package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/status"
)

// rerequested is the action of a check_run or check_suite delivery sent
// when someone presses one of GitHub's re-run buttons. Every other action
// (created, completed, requested, requested_action) runs nothing.
const rerequested = "rerequested"

// checkCommon is what check_run and check_suite deliveries share.
type checkCommon struct {
	Action     string         `json:"action"`
	Repository repositoryPart `json:"repository"`
	Sender     struct {
		Login string `json:"login"`
	} `json:"sender"`
	Installation struct {
		ID int64 `json:"id"`
	} `json:"installation"`
}

// checkRunDelivery is the part of a check_run delivery YourCI reads.
type checkRunDelivery struct {
	checkCommon
	CheckRun struct {
		ID         int64  `json:"id"`
		Name       string `json:"name"`
		HeadSHA    string `json:"head_sha"`
		ExternalID string `json:"external_id"`
	} `json:"check_run"`
}

// checkSuiteDelivery is the part of a check_suite delivery YourCI reads.
type checkSuiteDelivery struct {
	checkCommon
	CheckSuite struct {
		ID      int64  `json:"id"`
		HeadSHA string `json:"head_sha"`
		// PullRequests are the pull requests whose head is the suite's
		// commit; GitHub leaves out those from forks.
		PullRequests []struct {
			Number int `json:"number"`
			Head   struct {
				SHA string `json:"sha"`
			} `json:"head"`
		} `json:"pull_requests"`
	} `json:"check_suite"`
}

// CheckRunEventFrom turns the body of a check_run delivery into the event
// that asks a worker to run the check's test again: GitHub's "Re-run"
// button (action rerequested), which GitHub shows to people with write
// access and sends only to the App that created the check run. It is pure
// and safe for concurrent use.
//
// The check run is mapped back to its test through the external_id YourCI
// wrote (status.ExternalID): a check run of another App, or one whose
// external_id YourCI cannot read, and every other action, return an error
// wrapping ErrIgnored. A body that cannot be a real GitHub delivery (a
// check run whose external_id disagrees with its commit or name, a bad
// repository or login) returns a *BadRequestError. Who pressed the button
// is not judged here: the worker asks GitHub for their permission.
func CheckRunEventFrom(body []byte, delivery string) (events.CommandEvent, error) {
	var cd checkRunDelivery
	if err := json.Unmarshal(body, &cd); err != nil {
		return events.CommandEvent{}, &BadRequestError{Field: "body", Problem: fmt.Sprintf("malformed check_run payload: %v", err)}
	}
	return cd.event(delivery)
}

func (cd checkRunDelivery) event(delivery string) (events.CommandEvent, error) {
	if cd.Action != rerequested {
		return events.CommandEvent{}, ignored(fmt.Sprintf("check_run action %q runs nothing", truncate(cd.Action)))
	}
	run := cd.CheckRun
	id, err := status.ParseExternalID(run.ExternalID)
	switch {
	case errors.Is(err, status.ErrNotOurs):
		return events.CommandEvent{}, ignored("check run of another App")
	case err != nil:
		return events.CommandEvent{}, ignored(fmt.Sprintf("check run %d has an external_id YourCI cannot read", run.ID))
	case id.Owner != cd.Repository.Owner.Login || id.Repo != cd.Repository.Name:
		// A repository renamed since the check run was written.
		return events.CommandEvent{}, ignored(fmt.Sprintf("check run %d belongs to repository %s", run.ID, truncate(id.Owner+"/"+id.Repo)))
	case id.Build < 1:
		return events.CommandEvent{}, ignored(fmt.Sprintf("check run %d belongs to no build", run.ID))
	}
	cmd := events.Command{Kind: events.RerunCheck}
	if id.Test != "" {
		cmd.Tests = []string{id.Test}
	}
	ev := events.CommandEvent{
		Version:      events.Version,
		Repo:         events.Repo{Owner: cd.Repository.Owner.Login, Name: cd.Repository.Name},
		Number:       id.Pull,
		Installation: cd.Installation.ID,
		Delivery:     delivery,
		Button:       &events.Button{CheckRun: run.ID, SHA: run.HeadSHA, Build: id.Build},
		Author:       cd.Sender.Login,
		Commands:     []events.Command{cmd},
	}
	if err := cd.validate(ev); err != nil {
		return events.CommandEvent{}, err
	}
	switch {
	case run.ID < 1:
		return events.CommandEvent{}, &BadRequestError{Field: "check_run.id", Problem: "must be at least 1"}
	case id.SHA != run.HeadSHA:
		return events.CommandEvent{}, &BadRequestError{Field: "check_run.external_id", Problem: "names another commit than check_run.head_sha"}
	case id.Test != "" && events.ValidateTestName(id.Test) != nil:
		return events.CommandEvent{}, &BadRequestError{Field: "check_run.external_id", Problem: "names no valid test"}
	case run.Name != status.Context(id.Test):
		return events.CommandEvent{}, &BadRequestError{Field: "check_run.name", Problem: "does not match its external_id"}
	}
	return ev, nil
}

// CheckSuiteEventFrom turns the body of a check_suite delivery into the
// event that asks a worker to run again every test of the latest build of
// the suite's commit: GitHub's "Re-run all checks" (action rerequested).
// "Re-run failed checks" is reported to send a check_run rerequested per
// failed run, and also this same delivery, which cannot be told apart: then
// every test runs again. Every other action returns an error wrapping
// ErrIgnored;
// a body no GitHub delivery could hold, a *BadRequestError. The suite
// names the pull request only when its head branch is in the base
// repository: otherwise the event's Number is 0 and the worker finds the
// pull request from the suite's check runs. It is pure and safe for
// concurrent use.
func CheckSuiteEventFrom(body []byte, delivery string) (events.CommandEvent, error) {
	var cd checkSuiteDelivery
	if err := json.Unmarshal(body, &cd); err != nil {
		return events.CommandEvent{}, &BadRequestError{Field: "body", Problem: fmt.Sprintf("malformed check_suite payload: %v", err)}
	}
	return cd.event(delivery)
}

func (cd checkSuiteDelivery) event(delivery string) (events.CommandEvent, error) {
	if cd.Action != rerequested {
		return events.CommandEvent{}, ignored(fmt.Sprintf("check_suite action %q runs nothing", truncate(cd.Action)))
	}
	suite := cd.CheckSuite
	number := 0
	for _, p := range suite.PullRequests {
		switch {
		case p.Head.SHA != suite.HeadSHA, p.Number == number:
		case number == 0:
			number = p.Number
		default:
			number = -1 // several pull requests: the worker finds them
		}
	}
	ev := events.CommandEvent{
		Version:      events.Version,
		Repo:         events.Repo{Owner: cd.Repository.Owner.Login, Name: cd.Repository.Name},
		Number:       max(number, 0),
		Installation: cd.Installation.ID,
		Delivery:     delivery,
		Button:       &events.Button{CheckSuite: suite.ID, SHA: suite.HeadSHA},
		Author:       cd.Sender.Login,
		Commands:     []events.Command{{Kind: events.RerunSuite}},
	}
	if err := cd.validate(ev); err != nil {
		return events.CommandEvent{}, err
	}
	if suite.ID < 1 {
		return events.CommandEvent{}, &BadRequestError{Field: "check_suite.id", Problem: "must be at least 1"}
	}
	return ev, nil
}

// validate refuses what no real check_run or check_suite delivery holds.
func (cd checkCommon) validate(ev events.CommandEvent) error {
	if err := cd.Repository.validate(ev.Repo); err != nil {
		return err
	}
	if err := events.ValidateSHA(ev.Button.SHA); err != nil {
		return &BadRequestError{Field: "head_sha", Problem: err.Error()}
	}
	// A user's login follows the rule of an owner's.
	if err := events.ValidateOwner(ev.Author); err != nil {
		return &BadRequestError{Field: "sender.login", Problem: err.Error()}
	}
	if ev.Installation < 0 {
		return &BadRequestError{Field: "installation.id", Problem: "must not be negative"}
	}
	return validDelivery(ev.Delivery)
}

// publishCheck builds the command event of a verified check_run or
// check_suite body and publishes it, as publishCommand does for comments.
func (h *handler) publishCheck(ctx context.Context, body []byte, d *delivery, suite bool) error {
	if h.commands == nil {
		return ignored("re-run buttons are not enabled on this receiver")
	}
	var (
		ev  events.CommandEvent
		err error
	)
	if suite {
		var cd checkSuiteDelivery
		if err := json.Unmarshal(body, &cd); err != nil {
			return &BadRequestError{Field: "body", Problem: fmt.Sprintf("malformed check_suite payload: %v", err)}
		}
		d.action, d.sha = cd.Action, cd.CheckSuite.HeadSHA
		d.repo = cd.Repository.Owner.Login + "/" + cd.Repository.Name
		ev, err = cd.event(d.id)
	} else {
		var cd checkRunDelivery
		if err := json.Unmarshal(body, &cd); err != nil {
			return &BadRequestError{Field: "body", Problem: fmt.Sprintf("malformed check_run payload: %v", err)}
		}
		d.action, d.sha = cd.Action, cd.CheckRun.HeadSHA
		d.repo = cd.Repository.Owner.Login + "/" + cd.Repository.Name
		ev, err = cd.event(d.id)
	}
	if err != nil {
		return err
	}
	d.pull = ev.Number
	return h.sendCommand(ctx, ev, d)
}
