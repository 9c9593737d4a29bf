package fakegithub

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/google/go-github/v88/github"
)

// issueEvent is one entry of a pull request's issue events: who added or
// removed which label, who closed or reopened it, and when.
type issueEvent struct {
	id    int64
	event string // labeled, unlabeled, closed, reopened
	actor string
	label string
	at    time.Time
}

// issueEventJSON is GitHub's JSON for one issue event. Unlike go-github's
// IssueEvent it keeps the fields GitHub sends as null (commit_id,
// commit_url, performed_via_github_app), and a label carries only its name
// and colour, as GitHub's does.
type issueEventJSON struct {
	ID                    int64        `json:"id"`
	NodeID                string       `json:"node_id"`
	URL                   string       `json:"url"`
	Actor                 *github.User `json:"actor"`
	Event                 string       `json:"event"`
	CommitID              *string      `json:"commit_id"`
	CommitURL             *string      `json:"commit_url"`
	CreatedAt             string       `json:"created_at"`
	Label                 *eventLabel  `json:"label,omitempty"`
	PerformedViaGitHubApp *struct{}    `json:"performed_via_github_app"`
}

type eventLabel struct {
	Name  string `json:"name"`
	Color string `json:"color"`
}

// recordEventLocked appends an issue event to p.
func (s *Server) recordEventLocked(p *pull, event, actor, label string, at time.Time) {
	p.events = append(p.events, issueEvent{id: s.newIDLocked(), event: event, actor: actor, label: label, at: at})
}

// issueEventLocked renders e as GET .../issues/{n}/events lists it.
func (s *Server) issueEventLocked(rp *repo, e issueEvent) issueEventJSON {
	out := issueEventJSON{
		ID:        e.id,
		NodeID:    nodeID("LE", e.id),
		URL:       fmt.Sprintf("%s/repos/%s/issues/events/%d", s.url, rp.fullName(), e.id),
		Actor:     s.userLocked(e.actor),
		Event:     e.event,
		CreatedAt: e.at.UTC().Format(time.RFC3339),
	}
	if e.label != "" {
		l := s.labelJSONLocked(rp, e.label)
		out.Label = &eventLabel{Name: l.GetName(), Color: l.GetColor()}
	}
	return out
}

// listIssueEvents serves GET /repos/{owner}/{repo}/issues/{number}/events,
// oldest first, paginated as GitHub does.
func (s *Server) listIssueEvents(r *http.Request, who *identity) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	rp, p, rep := s.pullForLocked(r, who)
	if rep != nil {
		return *rep
	}
	page, rep := s.paginate(r, len(p.events))
	if rep != nil {
		return *rep
	}
	out := make([]issueEventJSON, 0, page.end-page.start)
	for _, e := range p.events[page.start:page.end] {
		out = append(out, s.issueEventLocked(rp, e))
	}
	return reply{status: http.StatusOK, body: out, header: page.header}
}

// pullWire is a pull request as GitHub's REST API writes it: go-github's
// struct drops empty fields, while GitHub sends "body": null for a pull
// request without a description and null for every other unset field
// listed here.
func pullWire(pr *github.PullRequest) (json.RawMessage, error) {
	data, err := json.Marshal(pr)
	if err != nil {
		return nil, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	if pr.GetBody() == "" {
		delete(m, "body")
	}
	for _, k := range []string{"body", "closed_at", "merged_at", "merge_commit_sha", "assignee", "milestone", "auto_merge", "active_lock_reason"} {
		if _, ok := m[k]; !ok {
			m[k] = json.RawMessage("null")
		}
	}
	return json.Marshal(m)
}
