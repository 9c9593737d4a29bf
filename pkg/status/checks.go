package status

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/google/go-github/v88/github"
)

// CheckRunClient is what a CheckRunWriter needs of GitHub's checks API,
// with go-github's signatures: its ChecksService satisfies it.
type CheckRunClient interface {
	CreateCheckRun(ctx context.Context, owner, repo string, opts github.CreateCheckRunOptions) (*github.CheckRun, *github.Response, error)
	UpdateCheckRun(ctx context.Context, owner, repo string, checkRunID int64, opts github.UpdateCheckRunOptions) (*github.CheckRun, *github.Response, error)
	ListCheckRunsForRef(ctx context.Context, owner, repo, ref string, opts *github.ListCheckRunsOptions) (*github.ListCheckRunsResults, *github.Response, error)
}

// ExternalID identifies the test a check run shows, so that a re-run
// request (check_run.rerequested) can be mapped back to it.
type ExternalID struct {
	Owner, Repo string
	Pull        int
	SHA         string
	Build       int
	// Rerun is 0 for the build's own run of the test and k for its k-th
	// re-run, which GitHub shows as a check run of its own.
	Rerun int
	// Test is the test's name; empty for the build-wide "yci" check.
	Test string
}

// externalIDPrefix starts every external_id YourCI writes; its version
// lets the format change without misreading older check runs.
const externalIDPrefix = "yci:1:"

// String is the external_id: "yci:1:owner/repo:pull:sha:build:test", the
// test last since it is the one part that may hold a colon. A re-run's
// build is written "build.rerun" ("3.2"), so the build's own runs keep
// the ids they always had.
func (id ExternalID) String() string {
	build := strconv.Itoa(id.Build)
	if id.Rerun > 0 {
		build += "." + strconv.Itoa(id.Rerun)
	}
	return externalIDPrefix + id.Owner + "/" + id.Repo + ":" + strconv.Itoa(id.Pull) + ":" +
		id.SHA + ":" + build + ":" + id.Test
}

// ErrNotOurs is wrapped by ParseExternalID's error for an external_id that
// YourCI did not write (another App's check run, or an older format).
var ErrNotOurs = errors.New("not a YourCI check run")

// ParseExternalID reads what ExternalID.String wrote.
func ParseExternalID(s string) (ExternalID, error) {
	rest, ok := strings.CutPrefix(s, externalIDPrefix)
	if !ok {
		return ExternalID{}, fmt.Errorf("external_id %q: %w", s, ErrNotOurs)
	}
	parts := strings.SplitN(rest, ":", 5)
	if len(parts) != 5 {
		return ExternalID{}, fmt.Errorf("external_id %q: want repo:pull:sha:build:test", s)
	}
	owner, repo, ok := strings.Cut(parts[0], "/")
	pull, perr := strconv.Atoi(parts[1])
	buildPart, rerunPart, isRerun := strings.Cut(parts[3], ".")
	build, berr := strconv.Atoi(buildPart)
	rerun, rerr := 0, error(nil)
	if isRerun {
		rerun, rerr = strconv.Atoi(rerunPart)
		if rerr == nil && rerun < 1 {
			rerr = errors.New("re-run below 1")
		}
	}
	if !ok || owner == "" || repo == "" || perr != nil || berr != nil || rerr != nil || pull < 1 || build < 0 || parts[2] == "" {
		return ExternalID{}, fmt.Errorf("external_id %q: malformed", s)
	}
	return ExternalID{Owner: owner, Repo: repo, Pull: pull, SHA: parts[2], Build: build, Rerun: rerun, Test: parts[4]}, nil
}

// externalID is the id of the check run that shows s.
func (s Status) externalID() ExternalID {
	return ExternalID{Owner: s.Owner, Repo: s.Repo, Pull: s.Pull, SHA: s.SHA, Build: s.Build, Rerun: s.Rerun, Test: s.Test}
}

// CheckRunIDs remembers the check run created for each test of each build,
// so that later states update it instead of looking it up. One is shared
// by every CheckRunWriter of a process; it is safe for concurrent use.
// Another process's check runs are found by their external_id.
type CheckRunIDs struct {
	mu  sync.Mutex
	ids map[string]int64
}

// NewCheckRunIDs returns an empty CheckRunIDs.
func NewCheckRunIDs() *CheckRunIDs {
	return &CheckRunIDs{ids: map[string]int64{}}
}

// maxCheckRunIDs bounds the memory: past it the oldest builds' ids are
// forgotten all at once and looked up again if ever needed.
const maxCheckRunIDs = 100000

func (c *CheckRunIDs) get(key string) (int64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	id, ok := c.ids[key]
	return id, ok
}

func (c *CheckRunIDs) put(key string, id int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.ids) >= maxCheckRunIDs {
		c.ids = map[string]int64{}
	}
	c.ids[key] = id
}

func (c *CheckRunIDs) forget(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.ids, key)
}

// CheckRunWriter shows states as check runs, one per test and build, named
// Context(s.Test): created on the first state, updated by later ones.
// Pending is queued, or in_progress once Started; a final state completes
// it with the Conclusion, else success (Success) or failure (Failure,
// Error). The log link is its details_url and s.Output its report.
type CheckRunWriter struct {
	Client CheckRunClient
	IDs    *CheckRunIDs
}

// Write creates or updates the test's check run. A state that is not New
// and whose check run this process has not seen costs one lookup by the
// commit and name first.
func (w CheckRunWriter) Write(ctx context.Context, s Status) (*github.Response, error) {
	ext := s.externalID().String()
	id, known := w.IDs.get(ext)
	if !known && !s.New {
		found, resp, err := w.find(ctx, s, ext)
		if err != nil {
			return resp, fmt.Errorf("looking up check run %s: %w", Context(s.Test), err)
		}
		id, known = found, found != 0
	}
	status, conclusion := CheckState(s)
	output := s.Output
	if output == nil {
		output = &Output{Title: s.Description, Summary: s.Description}
	}
	out := &github.CheckRunOutput{Title: github.Ptr(output.Title), Summary: github.Ptr(output.Summary)}
	if out.GetTitle() == "" {
		out.Title = github.Ptr(Context(s.Test))
	}
	if out.GetSummary() == "" {
		out.Summary = out.Title
	}
	if output.Text != "" {
		out.Text = github.Ptr(output.Text)
	}
	var details *string
	if s.TargetURL != "" {
		details = github.Ptr(s.TargetURL)
	}
	if known {
		_, resp, err := w.Client.UpdateCheckRun(ctx, s.Owner, s.Repo, id, github.UpdateCheckRunOptions{
			Name: Context(s.Test), DetailsURL: details, ExternalID: github.Ptr(ext),
			Status: github.Ptr(status), Conclusion: conclusion, Output: out,
		})
		if resp != nil && resp.StatusCode == http.StatusNotFound {
			w.IDs.forget(ext) // deleted on GitHub's side: the next try creates it
		}
		return resp, err
	}
	run, resp, err := w.Client.CreateCheckRun(ctx, s.Owner, s.Repo, github.CreateCheckRunOptions{
		Name: Context(s.Test), HeadSHA: s.SHA, DetailsURL: details, ExternalID: github.Ptr(ext),
		Status: github.Ptr(status), Conclusion: conclusion, Output: out,
	})
	if err == nil && run.GetID() != 0 {
		w.IDs.put(ext, run.GetID())
	}
	return resp, err
}

// find looks for the check run of s's test and build among those of its
// commit with its name, and remembers it; 0 means there is none.
func (w CheckRunWriter) find(ctx context.Context, s Status, ext string) (int64, *github.Response, error) {
	opts := &github.ListCheckRunsOptions{CheckName: github.Ptr(Context(s.Test)), Filter: github.Ptr("all"),
		ListOptions: github.ListOptions{PerPage: 100}}
	for {
		list, resp, err := w.Client.ListCheckRunsForRef(ctx, s.Owner, s.Repo, s.SHA, opts)
		if err != nil {
			return 0, resp, err
		}
		for _, run := range list.CheckRuns {
			if run.GetExternalID() == ext {
				w.IDs.put(ext, run.GetID())
				return run.GetID(), resp, nil
			}
		}
		if resp == nil || resp.NextPage == 0 {
			return 0, resp, nil
		}
		opts.Page = resp.NextPage
	}
}

// CheckState is the check run status and conclusion that show s: the one
// rule, which the writer follows and the sweep compares GitHub's check runs
// with. The conclusion is nil until the run is completed.
func CheckState(s Status) (string, *string) {
	switch {
	case s.State == Pending && s.Started:
		return "in_progress", nil
	case s.State == Pending:
		return "queued", nil
	case s.Conclusion != "":
		return "completed", github.Ptr(string(s.Conclusion))
	case s.State == Success:
		return "completed", github.Ptr("success")
	}
	return "completed", github.Ptr("failure")
}
