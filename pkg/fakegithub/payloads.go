package fakegithub

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/go-github/v88/github"
)

// pullEvent says what happened to a pull request, for its webhook payload.
type pullEvent struct {
	action string
	before string // synchronize: the previous head sha
	label  string // labeled, unlabeled: the label
	sender string
}

// pullEventLocked renders GitHub's pull_request webhook payload.
func (s *Server) pullEventLocked(rp *repo, p *pull, ev pullEvent) *github.PullRequestEvent {
	out := &github.PullRequestEvent{
		Action:      ptr(ev.action),
		Number:      ptr(p.number),
		PullRequest: s.pullJSONLocked(rp, p, true),
		Repo:        s.repoJSONLocked(rp),
		Sender:      s.userLocked(ev.sender),
	}
	if ev.action == "synchronize" {
		out.Before = ptr(ev.before)
		out.After = ptr(p.headSHA)
	}
	if ev.label != "" {
		out.Label = s.labelJSONLocked(rp, ev.label)
	}
	if inst := s.installationForLocked(rp.fullName()); inst != nil {
		out.Installation = &github.Installation{ID: ptr(inst.id), NodeID: ptr(nodeID("MDIz", inst.id))}
	}
	return out
}

// defaultSender is who GitHub names as having acted: the author opens,
// pushes and reopens; a maintainer (the owner) closes and labels.
func defaultSender(rp *repo, p *pull, action string) string {
	switch action {
	case "opened", "synchronize", "reopened", "edited", "ready_for_review":
		return p.author
	}
	return rp.owner
}

// PullRequestPayload renders the pull_request webhook GitHub would send for
// pull n of owner/repo with the given action, from the pull's current
// state: for "synchronize", before is the head sha prior to the last push;
// for "labeled" and "unlabeled", the label is the pull's newest one. The
// payload carries installation.id when the App is installed on the
// repository. Its size is GitHub's (about 20 KB); make the pull's body
// larger to test bigger deliveries.
func (s *Server) PullRequestPayload(owner, name string, n int, action string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rp, p, err := s.pullLocked(owner, name, n)
	if err != nil {
		return nil, fmt.Errorf("rendering %s payload: %w", action, err)
	}
	ev := pullEvent{action: action, sender: defaultSender(rp, p, action), before: p.prevHeadSHA}
	if (action == "labeled" || action == "unlabeled") && len(p.labels) > 0 {
		ev.label = p.labels[len(p.labels)-1]
	}
	payload, err := json.Marshal(s.pullEventLocked(rp, p, ev))
	if err != nil {
		return nil, fmt.Errorf("encoding %s payload: %w", action, err)
	}
	return payload, nil
}

// pullLocked finds pull n of owner/name.
func (s *Server) pullLocked(owner, name string, n int) (*repo, *pull, error) {
	rp := s.repos[owner+"/"+name]
	if rp == nil {
		return nil, nil, fmt.Errorf("no repository %s/%s", owner, name)
	}
	if n < 1 || n > len(rp.pulls) {
		return nil, nil, fmt.Errorf("no pull request %s/%s#%d", owner, name, n)
	}
	return rp, rp.pulls[n-1], nil
}

// pingPayload is GitHub's ping event for an App's webhook.
type pingPayload struct {
	Zen    string      `json:"zen"`
	HookID int64       `json:"hook_id"`
	Hook   pingHook    `json:"hook"`
	Sender github.User `json:"sender"`
}

type pingHook struct {
	Type          string           `json:"type"`
	ID            int64            `json:"id"`
	Name          string           `json:"name"`
	Active        bool             `json:"active"`
	Events        []string         `json:"events"`
	Config        pingConfig       `json:"config"`
	UpdatedAt     github.Timestamp `json:"updated_at"`
	CreatedAt     github.Timestamp `json:"created_at"`
	AppID         int64            `json:"app_id"`
	DeliveriesURL string           `json:"deliveries_url"`
}

type pingConfig struct {
	ContentType string `json:"content_type"`
	InsecureSSL string `json:"insecure_ssl"`
	Secret      string `json:"secret,omitempty"`
	URL         string `json:"url"`
}

// PingPayload renders the ping GitHub sends when a webhook pointing at url
// is created; hook_id is the registered hook's id (see AddHook), or a new
// id for a URL no hook uses.
func (s *Server) PingPayload(url string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var h *hook
	for _, candidate := range s.hooks {
		if candidate.url == url {
			h = candidate
		}
	}
	if h == nil {
		h = &hook{id: s.newIDLocked(), url: url, created: time.Now().UTC().Truncate(time.Second)}
	}
	return s.pingLocked(h)
}

func (s *Server) pingLocked(h *hook) ([]byte, error) {
	cfg := pingConfig{ContentType: "json", InsecureSSL: "0", URL: h.url}
	if h.secret != "" {
		cfg.Secret = "********"
	}
	payload, err := json.Marshal(pingPayload{
		Zen:    "Keep it logically awesome.",
		HookID: h.id,
		Hook: pingHook{
			Type:          "App",
			ID:            h.id,
			Name:          "web",
			Active:        true,
			Events:        []string{"pull_request"},
			Config:        cfg,
			UpdatedAt:     github.Timestamp{Time: h.created},
			CreatedAt:     github.Timestamp{Time: h.created},
			AppID:         s.appID,
			DeliveriesURL: fmt.Sprintf("%s/app/hook/deliveries", s.url),
		},
		Sender: *s.userLocked(BotLogin),
	})
	if err != nil {
		return nil, fmt.Errorf("encoding ping payload: %w", err)
	}
	return payload, nil
}
