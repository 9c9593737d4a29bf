package fakegithub

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/google/go-github/v88/github"
)

// Issue comments and their reactions: the REST calls comment commands make
// (POST .../issues/{n}/comments, POST .../issues/comments/{id}/reactions),
// the scenario method Comment, and issue_comment webhooks, which GitHub
// sends for every new comment on a pull request, the bot's own included.

// GitHub's limit on a comment's body, in characters.
const maxCommentBody = 65536

const docComments = "https://docs.github.com/rest/issues/comments#create-an-issue-comment"
const docReactions = "https://docs.github.com/rest/reactions/reactions#create-reaction-for-an-issue-comment"

// reactionContents are the reactions GitHub accepts.
var reactionContents = map[string]bool{
	"+1": true, "-1": true, "laugh": true, "confused": true, "heart": true, "hooray": true, "rocket": true, "eyes": true,
}

// issueStore holds every repository's issue comments; it lives behind s.mu.
type issueStore struct {
	comments []*comment
	changed  chan struct{}
}

type comment struct {
	id        int64
	repo      *repo
	number    int
	author    string
	body      string
	created   time.Time
	reactions []*github.Reaction
}

// issuesLocked returns the store, creating it on first use.
func (s *Server) issuesLocked() *issueStore {
	if s.issues == nil {
		s.issues = &issueStore{changed: make(chan struct{})}
	}
	return s.issues
}

// commentLocked finds comment id of rp.
func (s *Server) commentLocked(rp *repo, id int64) *comment {
	for _, c := range s.issuesLocked().comments {
		if c.id == id && c.repo == rp {
			return c
		}
	}
	return nil
}

// addCommentLocked records a comment and wakes WaitComments.
func (s *Server) addCommentLocked(rp *repo, n int, author, body string) *comment {
	st := s.issuesLocked()
	c := &comment{id: s.newIDLocked(), repo: rp, number: n, author: author, body: body,
		created: time.Now().UTC().Truncate(time.Second)}
	st.comments = append(st.comments, c)
	close(st.changed)
	st.changed = make(chan struct{})
	return c
}

// commentJSONLocked renders a comment as the REST API and webhooks do.
func (s *Server) commentJSONLocked(c *comment) *github.IssueComment {
	api := s.url + "/repos/" + c.repo.fullName()
	self := fmt.Sprintf("%s/issues/comments/%d", api, c.id)
	counts := map[string]int{}
	for _, r := range c.reactions {
		counts[r.GetContent()]++
	}
	return &github.IssueComment{
		ID:        ptr(c.id),
		NodeID:    ptr(nodeID("IC", c.id)),
		URL:       ptr(self),
		HTMLURL:   ptr(fmt.Sprintf("%s/%s/pull/%d#issuecomment-%d", s.url, c.repo.fullName(), c.number, c.id)),
		IssueURL:  ptr(fmt.Sprintf("%s/issues/%d", api, c.number)),
		Body:      ptr(c.body),
		User:      s.userLocked(c.author),
		CreatedAt: stamp(c.created),
		UpdatedAt: stamp(c.created),
		//lint:ignore SA1019 the REST API and webhooks still send it; only Events API payloads drop it.
		AuthorAssociation: ptr(s.associationLocked(c.repo, c.author)),
		Reactions: &github.Reactions{
			TotalCount: ptr(len(c.reactions)), PlusOne: ptr(counts["+1"]), MinusOne: ptr(counts["-1"]),
			Laugh: ptr(counts["laugh"]), Confused: ptr(counts["confused"]), Heart: ptr(counts["heart"]),
			Hooray: ptr(counts["hooray"]), Rocket: ptr(counts["rocket"]), Eyes: ptr(counts["eyes"]),
			URL: ptr(self + "/reactions"),
		},
	}
}

// issueJSONLocked renders pull p as the issue an issue_comment webhook
// carries: an issue with pull_request links.
func (s *Server) issueJSONLocked(rp *repo, p *pull) *github.Issue {
	pr := s.pullJSONLocked(rp, p, false)
	api := s.url + "/repos/" + rp.fullName()
	issue := fmt.Sprintf("%s/issues/%d", api, p.number)
	out := &github.Issue{
		ID: ptr(p.id), NodeID: pr.NodeID, Number: ptr(p.number), State: ptr(p.state), Locked: ptr(false),
		Title: ptr(p.title), Body: ptr(p.body), User: pr.User, Labels: pr.Labels, Assignees: []*github.User{},
		Comments: ptr(s.countCommentsLocked(rp, p.number)), ClosedAt: pr.ClosedAt, CreatedAt: pr.CreatedAt, UpdatedAt: pr.UpdatedAt,
		URL: ptr(issue), HTMLURL: pr.HTMLURL, CommentsURL: ptr(issue + "/comments"), EventsURL: ptr(issue + "/events"),
		LabelsURL: ptr(issue + "/labels{/name}"), RepositoryURL: ptr(api), Draft: pr.Draft,
		PullRequestLinks: &github.PullRequestLinks{URL: pr.URL, HTMLURL: pr.HTMLURL, DiffURL: pr.DiffURL, PatchURL: pr.PatchURL},
	}
	//lint:ignore SA1019 webhooks still send it; only Events API payloads drop it.
	out.AuthorAssociation = ptr(s.associationLocked(rp, p.author))
	return out
}

func (s *Server) countCommentsLocked(rp *repo, n int) int {
	count := 0
	for _, c := range s.issuesLocked().comments {
		if c.repo == rp && c.number == n {
			count++
		}
	}
	return count
}

// commentEventLocked renders the issue_comment "created" webhook of c.
func (s *Server) commentEventLocked(c *comment) ([]byte, error) {
	p := c.repo.pulls[c.number-1]
	ev := &github.IssueCommentEvent{
		Action:  ptr("created"),
		Issue:   s.issueJSONLocked(c.repo, p),
		Comment: s.commentJSONLocked(c),
		Repo:    s.repoJSONLocked(c.repo),
		Sender:  s.userLocked(c.author),
	}
	if inst := s.installationForLocked(c.repo.fullName()); inst != nil {
		ev.Installation = &github.Installation{ID: ptr(inst.id), NodeID: ptr(nodeID("MDIz", inst.id))}
	}
	payload, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encoding issue_comment payload: %w", err)
	}
	return payload, nil
}

// IssueCommentPayload renders the issue_comment "created" webhook GitHub
// sends for comment id on owner/name, for tests that deliver it themselves.
func (s *Server) IssueCommentPayload(owner, name string, id int64) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rp := s.repos[owner+"/"+name]
	if rp == nil {
		return nil, fmt.Errorf("rendering issue_comment payload: no repository %s/%s", owner, name)
	}
	c := s.commentLocked(rp, id)
	if c == nil {
		return nil, fmt.Errorf("rendering issue_comment payload: no comment %d on %s/%s", id, owner, name)
	}
	return s.commentEventLocked(c)
}

// Comment writes body as author's comment on pull n of owner/name, as the
// web interface does, and delivers the issue_comment webhook to every
// registered hook before it returns.
func (s *Server) Comment(owner, name string, n int, author, body string) (*github.IssueComment, error) {
	s.mu.Lock()
	rp, _, err := s.pullLocked(owner, name, n)
	if err != nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("commenting: %w", err)
	}
	c := s.addCommentLocked(rp, n, author, body)
	out := s.commentJSONLocked(c)
	payload, err := s.commentEventLocked(c)
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	s.notifyEvent("issue_comment", "created", payload)
	return out, nil
}

// CommentUndelivered writes body as author's comment on pull n of
// owner/name, as Comment does, but delivers no webhook: GitHub's delivery
// of it is late (or lost). A test delivers IssueCommentPayload itself,
// whenever the race it plays needs it.
func (s *Server) CommentUndelivered(owner, name string, n int, author, body string) (*github.IssueComment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rp, _, err := s.pullLocked(owner, name, n)
	if err != nil {
		return nil, fmt.Errorf("commenting: %w", err)
	}
	return s.commentJSONLocked(s.addCommentLocked(rp, n, author, body)), nil
}

// notifyEvent delivers one webhook to every registered hook.
func (s *Server) notifyEvent(event, action string, payload []byte) {
	s.mu.Lock()
	hooks := append([]*hook(nil), s.hooks...)
	s.mu.Unlock()
	for _, h := range hooks {
		if _, err := s.deliverTo(context.Background(), h, event, action, newDeliveryID(), payload, false); err != nil {
			s.logger().Warn("webhook delivery failed", "url", h.url, "event", event, "err", err)
		}
	}
}

// createComment serves POST /repos/{owner}/{repo}/issues/{number}/comments
// for pull requests: a body is required and at most 65536 characters. Like
// GitHub, the new comment is announced with an issue_comment webhook.
func (s *Server) createComment(r *http.Request, who *identity) reply {
	var req struct {
		Body *string `json:"body"`
	}
	if rep := decodeBody(r, &req); rep != nil {
		return *rep
	}
	if req.Body == nil || *req.Body == "" {
		return invalid(docComments, fieldError{Resource: "IssueComment", Code: "missing_field", Field: "body"})
	}
	if utf8.RuneCountInString(*req.Body) > maxCommentBody {
		return invalid(docComments, fieldError{Resource: "IssueComment", Code: "custom", Field: "body",
			Message: "body is too long (maximum is 65536 characters)"})
	}
	s.mu.Lock()
	rp, p, rep := s.pullForLocked(r, who)
	if rep != nil {
		s.mu.Unlock()
		return *rep
	}
	c := s.addCommentLocked(rp, p.number, who.login, *req.Body)
	out := s.commentJSONLocked(c)
	payload, err := s.commentEventLocked(c)
	s.mu.Unlock()
	if err == nil {
		s.notifyEvent("issue_comment", "created", payload)
	}
	return reply{status: http.StatusCreated, body: out, header: http.Header{"Location": {out.GetURL()}}}
}

// listComments serves GET /repos/{owner}/{repo}/issues/{number}/comments,
// oldest first, paginated.
func (s *Server) listComments(r *http.Request, who *identity) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	rp, p, rep := s.pullForLocked(r, who)
	if rep != nil {
		return *rep
	}
	var all []*github.IssueComment
	for _, c := range s.issuesLocked().comments {
		if c.repo == rp && c.number == p.number {
			all = append(all, s.commentJSONLocked(c))
		}
	}
	pg, rep := s.paginate(r, len(all))
	if rep != nil {
		return *rep
	}
	return reply{status: http.StatusOK, body: append([]*github.IssueComment{}, all[pg.start:pg.end]...), header: pg.header}
}

// createReaction serves POST
// /repos/{owner}/{repo}/issues/comments/{id}/reactions: 201 with a new
// reaction, 200 with the existing one when the caller already reacted so,
// 422 for a content GitHub does not know.
func (s *Server) createReaction(r *http.Request, who *identity) reply {
	var req struct {
		Content string `json:"content"`
	}
	if rep := decodeBody(r, &req); rep != nil {
		return *rep
	}
	if !reactionContents[req.Content] {
		return invalid(docReactions, fieldError{Resource: "Reaction", Code: "custom", Field: "content",
			Message: "content is not included in the list"})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rp, rep := s.repoForLocked(r, who)
	if rep != nil {
		return *rep
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	c := s.commentLocked(rp, id)
	if err != nil || c == nil {
		return notFound()
	}
	for _, existing := range c.reactions {
		if existing.GetUser().GetLogin() == who.login && existing.GetContent() == req.Content {
			return ok(existing)
		}
	}
	rid := s.newIDLocked()
	reaction := &github.Reaction{ID: ptr(rid), NodeID: ptr(nodeID("REA", rid)), User: s.userLocked(who.login),
		Content: ptr(req.Content), CreatedAt: stamp(time.Now().UTC().Truncate(time.Second))}
	c.reactions = append(c.reactions, reaction)
	close(s.issues.changed)
	s.issues.changed = make(chan struct{})
	return reply{status: http.StatusCreated, body: reaction}
}

// Comments returns the comments on pull n of owner/name, oldest first.
func (s *Server) Comments(owner, name string, n int) []github.IssueComment {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.commentsLocked(owner, name, n)
}

func (s *Server) commentsLocked(owner, name string, n int) []github.IssueComment {
	var out []github.IssueComment
	for _, c := range s.issuesLocked().comments {
		if c.repo.fullName() == owner+"/"+name && c.number == n {
			out = append(out, *s.commentJSONLocked(c))
		}
	}
	return out
}

// Reactions returns the reactions to comment id on owner/name, oldest first.
func (s *Server) Reactions(owner, name string, id int64) []github.Reaction {
	s.mu.Lock()
	defer s.mu.Unlock()
	rp := s.repos[owner+"/"+name]
	if rp == nil {
		return nil
	}
	c := s.commentLocked(rp, id)
	if c == nil {
		return nil
	}
	out := make([]github.Reaction, 0, len(c.reactions))
	for _, r := range c.reactions {
		out = append(out, *r)
	}
	return out
}

// WaitComments blocks until done, given the comments on pull n (oldest
// first, reaction counts included), returns true, or until ctx ends. done
// is called at the start and after every new comment or reaction; it must
// not call back into the Server.
func (s *Server) WaitComments(ctx context.Context, owner, name string, n int, done func([]github.IssueComment) bool) error {
	for {
		s.mu.Lock()
		comments := s.commentsLocked(owner, name, n)
		changed := s.issuesLocked().changed
		s.mu.Unlock()
		if done(comments) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for comments on %s/%s#%d: %w (%d comments)", owner, name, n, ctx.Err(), len(comments))
		case <-changed:
		}
	}
}
