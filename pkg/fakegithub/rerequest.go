package fakegithub

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/google/go-github/v88/github"
)

// suitePullsLocked renders the pull_requests of a check suite on sha of
// rp: the open pull requests whose head is sha on a branch of rp itself.
// Like GitHub, it leaves out pull requests from forks.
func (s *Server) suitePullsLocked(rp *repo, sha string) []*github.PullRequest {
	out := []*github.PullRequest{}
	api := s.url + "/repos/" + rp.fullName()
	side := func(ref, sha string) *github.PullRequestBranch {
		return &github.PullRequestBranch{Ref: ptr(ref), SHA: ptr(sha), Repo: &github.Repository{
			ID: ptr(rp.id), URL: ptr(api), Name: ptr(rp.name)}}
	}
	for _, p := range rp.pulls {
		if p.state != "open" || p.headSHA != sha || p.headRepo != rp {
			continue
		}
		out = append(out, &github.PullRequest{
			URL: ptr(api + "/pulls/" + strconv.Itoa(p.number)), ID: ptr(p.id), Number: ptr(p.number),
			Head: side(p.headRef, p.headSHA), Base: side(p.baseRef, rp.branches[p.baseRef]),
		})
	}
	return out
}

// suiteJSONLocked renders the check suite id on sha of rp, as a check_suite
// webhook carries it, queued again after a rerequest.
func (s *Server) suiteJSONLocked(rp *repo, id int64, sha string) *github.CheckSuite {
	api := s.url + "/repos/" + rp.fullName() + "/check-suites/" + strconv.FormatInt(id, 10)
	return &github.CheckSuite{
		ID:           ptr(id),
		NodeID:       ptr(nodeID("CS", id)),
		HeadSHA:      ptr(sha),
		URL:          ptr(api),
		Status:       ptr("queued"),
		PullRequests: s.suitePullsLocked(rp, sha),
		App:          s.appJSON(),
		Repository:   s.repoJSONLocked(rp),
		CreatedAt:    stamp(time.Now().UTC().Truncate(time.Second)),
		HeadCommit:   &github.Commit{SHA: ptr(sha)},
	}
}

// appJSON is the stand-in's App, as webhooks name it.
func (s *Server) appJSON() *github.App {
	return &github.App{ID: ptr(s.appID), Slug: ptr(appSlug), Name: ptr(appSlug), NodeID: ptr(nodeID("A", s.appID))}
}

// installationRefLocked is the "installation" of a webhook on rp, or nil
// when the App is not installed there.
func (s *Server) installationRefLocked(rp *repo) *github.Installation {
	inst := s.installationForLocked(rp.fullName())
	if inst == nil {
		return nil
	}
	return &github.Installation{ID: ptr(inst.id), NodeID: ptr(nodeID("MDIz", inst.id))}
}

// CheckRunRerequestedPayload renders the check_run "rerequested" webhook
// GitHub sends to the App when sender presses "Re-run" on check run id of
// owner/name (or "Re-run failed checks", once per failed run): the check
// run as it stands, with its suite, App and pull requests, the
// repository, the sender and the installation.
func (s *Server) CheckRunRerequestedPayload(owner, name string, id int64, sender string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rp := s.repos[owner+"/"+name]
	if rp == nil {
		return nil, fmt.Errorf("rendering check_run payload: no repository %s/%s", owner, name)
	}
	var found *github.CheckRun
	for _, c := range s.checkRuns {
		if c.repo == rp.fullName() && c.run.GetID() == id {
			run := c.run
			found = &run
		}
	}
	if found == nil {
		return nil, fmt.Errorf("rendering check_run payload: no check run %d on %s/%s", id, owner, name)
	}
	suite := s.suiteJSONLocked(rp, found.GetCheckSuite().GetID(), found.GetHeadSHA())
	suite.Repository = nil // a check run's suite is the short form
	found.CheckSuite = suite
	found.PullRequests = suite.PullRequests
	ev := &github.CheckRunEvent{
		Action:       ptr("rerequested"),
		CheckRun:     found,
		Repo:         s.repoJSONLocked(rp),
		Sender:       s.userLocked(sender),
		Installation: s.installationRefLocked(rp),
	}
	payload, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encoding check_run payload: %w", err)
	}
	return payload, nil
}

// CheckSuiteRerequestedPayload renders the check_suite "rerequested"
// webhook GitHub sends to the App when sender presses "Re-run all checks"
// on the App's check suite of sha on owner/name.
func (s *Server) CheckSuiteRerequestedPayload(owner, name, sha, sender string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rp := s.repos[owner+"/"+name]
	if rp == nil {
		return nil, fmt.Errorf("rendering check_suite payload: no repository %s/%s", owner, name)
	}
	id, ok := s.checkSuites[rp.fullName()+"@"+sha]
	if !ok {
		return nil, fmt.Errorf("rendering check_suite payload: %s has no check suite on %s", sha, rp.fullName())
	}
	ev := &github.CheckSuiteEvent{
		Action:       ptr("rerequested"),
		CheckSuite:   s.suiteJSONLocked(rp, id, sha),
		Repo:         s.repoJSONLocked(rp),
		Sender:       s.userLocked(sender),
		Installation: s.installationRefLocked(rp),
	}
	ev.CheckSuite.Repository = nil
	payload, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encoding check_suite payload: %w", err)
	}
	return payload, nil
}

// RerequestCheckRun presses "Re-run" on check run id of owner/name as
// sender, as the web interface does: the check_run rerequested webhook is
// delivered to every registered hook before it returns. Like GitHub, the
// check run itself is left as it is; the App is to create a new one.
func (s *Server) RerequestCheckRun(owner, name string, id int64, sender string) error {
	payload, err := s.CheckRunRerequestedPayload(owner, name, id, sender)
	if err != nil {
		return err
	}
	s.notifyEvent("check_run", "rerequested", payload)
	return nil
}

// RerequestCheckSuite presses "Re-run all checks" on the App's check suite
// of sha on owner/name as sender, delivering the check_suite rerequested
// webhook to every registered hook before it returns.
func (s *Server) RerequestCheckSuite(owner, name, sha, sender string) error {
	payload, err := s.CheckSuiteRerequestedPayload(owner, name, sha, sender)
	if err != nil {
		return err
	}
	s.notifyEvent("check_suite", "rerequested", payload)
	return nil
}
