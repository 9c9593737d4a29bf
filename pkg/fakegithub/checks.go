package fakegithub

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/google/go-github/v88/github"
)

// GitHub's limits on a check run's output, in characters.
const maxCheckOutput = 65535

const docChecks = "https://docs.github.com/rest/checks/runs"

// checkRun is a stored check run and the repository and commit it is on.
type checkRun struct {
	repo string // owner/name
	run  github.CheckRun
}

// checkRunRequest is the body of POST and PATCH .../check-runs.
type checkRunRequest struct {
	Name        *string                  `json:"name"`
	HeadSHA     *string                  `json:"head_sha"`
	DetailsURL  *string                  `json:"details_url"`
	ExternalID  *string                  `json:"external_id"`
	Status      *string                  `json:"status"`
	Conclusion  *string                  `json:"conclusion"`
	StartedAt   *github.Timestamp        `json:"started_at"`
	CompletedAt *github.Timestamp        `json:"completed_at"`
	Output      *github.CheckRunOutput   `json:"output"`
	Actions     []*github.CheckRunAction `json:"actions"`
}

// validate applies GitHub's rules to a check run's fields: a known status
// (Actions' own waiting, requested and pending are refused to Apps), a
// known conclusion, which a completed run must have, and an output with a
// title and summary within the size limits.
func (req checkRunRequest) validate() *reply {
	if req.Status != nil {
		switch *req.Status {
		case "queued", "in_progress", "completed":
		default:
			rep := invalid(docChecks, fieldError{Resource: "CheckRun", Code: "invalid", Field: "status"})
			return &rep
		}
	}
	if req.Conclusion != nil {
		switch *req.Conclusion {
		case "action_required", "cancelled", "failure", "neutral", "success", "skipped", "stale", "timed_out":
		default:
			rep := invalid(docChecks, fieldError{Resource: "CheckRun", Code: "invalid", Field: "conclusion"})
			return &rep
		}
	}
	if req.Status != nil && *req.Status == "completed" && req.Conclusion == nil {
		rep := invalid(docChecks, fieldError{Resource: "CheckRun", Code: "missing_field", Field: "conclusion",
			Message: "Conclusion can't be blank when status is completed"})
		return &rep
	}
	if o := req.Output; o != nil {
		if o.GetTitle() == "" || o.GetSummary() == "" {
			rep := invalid(docChecks, fieldError{Resource: "CheckRun", Code: "missing_field", Field: "output",
				Message: "output needs a title and a summary"})
			return &rep
		}
		if utf8.RuneCountInString(o.GetSummary()) > maxCheckOutput || utf8.RuneCountInString(o.GetText()) > maxCheckOutput {
			rep := invalid(docChecks, fieldError{Resource: "CheckRun", Code: "custom", Field: "output",
				Message: "Only 65535 characters are allowed"})
			return &rep
		}
	}
	return nil
}

// apply writes req's fields onto run, as POST and PATCH do: a conclusion
// completes the run; completing stamps completed_at; in_progress stamps
// started_at.
func (req checkRunRequest) apply(run *github.CheckRun, now time.Time) {
	if req.Name != nil {
		run.Name = req.Name
	}
	if req.DetailsURL != nil {
		run.DetailsURL = req.DetailsURL
	}
	if req.ExternalID != nil {
		run.ExternalID = req.ExternalID
	}
	if req.Status != nil {
		run.Status = req.Status
	}
	if req.Conclusion != nil {
		run.Conclusion = req.Conclusion
		run.Status = ptr("completed")
	}
	if req.StartedAt != nil {
		run.StartedAt = req.StartedAt
	}
	if run.GetStatus() != "completed" {
		run.Conclusion, run.CompletedAt = nil, nil
	}
	switch {
	case req.CompletedAt != nil:
		run.CompletedAt = req.CompletedAt
	case run.GetStatus() == "completed" && run.CompletedAt == nil:
		run.CompletedAt = stamp(now)
	}
	if req.Output != nil {
		run.Output = &github.CheckRunOutput{Title: req.Output.Title, Summary: req.Output.Summary, Text: req.Output.Text,
			AnnotationsCount: ptr(0), AnnotationsURL: ptr(run.GetURL() + "/annotations")}
	}
}

// createCheckRun serves POST /repos/{owner}/{repo}/check-runs. Only a
// GitHub App (an installation token) may create check runs, as on GitHub.
func (s *Server) createCheckRun(r *http.Request, who *identity) reply {
	if who.install == nil {
		return fail(http.StatusForbidden, "You must authenticate via a GitHub App.", docChecks)
	}
	var req checkRunRequest
	if rep := decodeBody(r, &req); rep != nil {
		return *rep
	}
	if req.Name == nil || *req.Name == "" || req.HeadSHA == nil {
		return invalid(docChecks, fieldError{Resource: "CheckRun", Code: "missing_field", Field: "name, head_sha"})
	}
	if rep := req.validate(); rep != nil {
		return *rep
	}
	if !s.commitExists(r.Context(), r.PathValue("owner"), r.PathValue("repo"), *req.HeadSHA) {
		s.mu.Lock()
		_, rep := s.repoForLocked(r, who)
		s.mu.Unlock()
		if rep != nil {
			return *rep
		}
		return invalid(docChecks, fieldError{Resource: "CheckRun", Code: "invalid", Field: "head_sha",
			Message: "No commit found for SHA: " + *req.HeadSHA})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rp, rep := s.repoForLocked(r, who)
	if rep != nil {
		return *rep
	}
	id := s.newIDLocked()
	now := time.Now().UTC().Truncate(time.Second)
	api := s.url + "/repos/" + rp.fullName() + "/check-runs/" + strconv.FormatInt(id, 10)
	run := github.CheckRun{
		ID:         ptr(id),
		NodeID:     ptr(nodeID("CR", id)),
		HeadSHA:    req.HeadSHA,
		URL:        ptr(api),
		HTMLURL:    ptr(s.url + "/" + rp.fullName() + "/runs/" + strconv.FormatInt(id, 10)),
		Status:     ptr("queued"),
		StartedAt:  stamp(now),
		CheckSuite: &github.CheckSuite{ID: ptr(s.suiteIDLocked(rp.fullName(), *req.HeadSHA))},
		App:        &github.App{ID: ptr(s.appID), Slug: ptr(appSlug), Name: ptr(appSlug)},
		Output:     &github.CheckRunOutput{AnnotationsCount: ptr(0), AnnotationsURL: ptr(api + "/annotations")},
	}
	req.apply(&run, now)
	s.checkRuns = append(s.checkRuns, &checkRun{repo: rp.fullName(), run: run})
	s.checkHistory = append(s.checkHistory, checkRun{repo: rp.fullName(), run: run})
	s.signalLocked()
	return reply{status: http.StatusCreated, body: run}
}

// suiteIDLocked gives each commit of a repository one check suite id, as
// GitHub makes one suite per App and commit.
func (s *Server) suiteIDLocked(repo, sha string) int64 {
	key := repo + "@" + sha
	if id, ok := s.checkSuites[key]; ok {
		return id
	}
	id := s.newIDLocked()
	s.checkSuites[key] = id
	return id
}

// findCheckRunLocked is the check run {id} of the request's repository.
func (s *Server) findCheckRunLocked(r *http.Request, who *identity) (*checkRun, *reply) {
	rp, rep := s.repoForLocked(r, who)
	if rep != nil {
		return nil, rep
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		nf := notFound()
		return nil, &nf
	}
	for _, c := range s.checkRuns {
		if c.repo == rp.fullName() && c.run.GetID() == id {
			return c, nil
		}
	}
	nf := notFound()
	return nil, &nf
}

// updateCheckRun serves PATCH /repos/{owner}/{repo}/check-runs/{id}.
func (s *Server) updateCheckRun(r *http.Request, who *identity) reply {
	if who.install == nil {
		return fail(http.StatusForbidden, "You must authenticate via a GitHub App.", docChecks)
	}
	var req checkRunRequest
	if rep := decodeBody(r, &req); rep != nil {
		return *rep
	}
	if rep := req.validate(); rep != nil {
		return *rep
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, rep := s.findCheckRunLocked(r, who)
	if rep != nil {
		return *rep
	}
	req.apply(&c.run, time.Now().UTC().Truncate(time.Second))
	s.checkHistory = append(s.checkHistory, *c)
	s.signalLocked()
	return ok(c.run)
}

// getCheckRun serves GET /repos/{owner}/{repo}/check-runs/{id}.
func (s *Server) getCheckRun(r *http.Request, who *identity) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, rep := s.findCheckRunLocked(r, who)
	if rep != nil {
		return *rep
	}
	return ok(c.run)
}

// listCheckRuns serves GET /repos/{owner}/{repo}/commits/{ref}/check-runs,
// newest first, with check_name, status and filter (latest, the default,
// keeps the newest run of each name; all keeps every one).
func (s *Server) listCheckRuns(r *http.Request, who *identity) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	rp, sha, rep := s.commitForLocked(r, who)
	if rep != nil {
		return *rep
	}
	q := r.URL.Query()
	seen := map[string]bool{}
	var runs []*github.CheckRun
	for _, c := range slices.Backward(s.checkRuns) {
		run := c.run
		switch {
		case c.repo != rp.fullName() || run.GetHeadSHA() != sha:
		case q.Get("check_name") != "" && run.GetName() != q.Get("check_name"):
		case q.Get("status") != "" && run.GetStatus() != q.Get("status"):
		case q.Get("filter") != "all" && seen[run.GetName()]:
		default:
			seen[run.GetName()] = true
			runs = append(runs, &run)
		}
	}
	page, rep := s.paginate(r, len(runs))
	if rep != nil {
		return *rep
	}
	return reply{status: http.StatusOK, header: page.header,
		body: github.ListCheckRunsResults{Total: ptr(len(runs)), CheckRuns: runs[page.start:page.end]}}
}

// signalLocked wakes WaitStatuses and WaitCheckRuns callers.
func (s *Server) signalLocked() {
	close(s.statusChanged)
	s.statusChanged = make(chan struct{})
}

// CheckRuns returns the latest form of every check run on sha of
// owner/name, oldest first.
func (s *Server) CheckRuns(owner, name, sha string) []github.CheckRun {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []github.CheckRun
	for _, c := range s.checkRuns {
		if c.repo == owner+"/"+name && c.run.GetHeadSHA() == sha {
			out = append(out, c.run)
		}
	}
	return out
}

// CheckRunWrites returns the check run as each write (creation or update)
// left it, for sha of owner/name, oldest first: one entry per write.
func (s *Server) CheckRunWrites(owner, name, sha string) []github.CheckRun {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []github.CheckRun
	for _, c := range s.checkHistory {
		if c.repo == owner+"/"+name && c.run.GetHeadSHA() == sha {
			out = append(out, c.run)
		}
	}
	return out
}

// LatestCheckRuns returns what GitHub shows for sha: the newest check run
// of each name, by name.
func (s *Server) LatestCheckRuns(owner, name, sha string) map[string]github.CheckRun {
	out := map[string]github.CheckRun{}
	for _, run := range s.CheckRuns(owner, name, sha) {
		out[run.GetName()] = run
	}
	return out
}

// WaitCheckRuns blocks until done, given every check run on sha of
// owner/name (their latest form, oldest first, as CheckRuns returns them),
// returns true, or until ctx ends. done is called once at the start and
// again after every status or check run written to the server (for any
// commit), never concurrently; it must not call back into the Server.
func (s *Server) WaitCheckRuns(ctx context.Context, owner, name, sha string, done func([]github.CheckRun) bool) error {
	for {
		// The channel first: a write after it is taken closes it, so
		// none between the read and the wait goes unseen.
		s.mu.Lock()
		changed := s.statusChanged
		s.mu.Unlock()
		runs := s.CheckRuns(owner, name, sha)
		if done(runs) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for check runs of %s on %s/%s: %w", sha, owner, name, ctx.Err())
		case <-changed:
		}
	}
}
