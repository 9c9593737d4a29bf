package fakegithub

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-github/v88/github"
)

// PullSpec describes a pull request to open.
type PullSpec struct {
	Head  string // branch with the changes; in Author's fork when Fork is set
	Base  string // branch to merge into; the default branch when empty
	Title string // "Pull request from <Head>" when empty
	Body  string
	// Author opens the pull; the repository owner when empty.
	Author string
	// Fork takes the head from Author/<repo>, forking the base repository
	// first (with its branches) when Author has no fork yet.
	Fork   bool
	Draft  bool
	Labels []string
}

// event is a webhook to send once the scenario lock is released.
type event struct {
	action  string
	payload []byte
}

func (s *Server) send(events []event) {
	for _, ev := range events {
		s.notify(ev.action, ev.payload)
	}
}

// Commit writes files (path → content; other files are kept) as one new
// commit on branch of owner/name and returns its sha. A new branch starts
// from the default branch, or as a root commit in an empty repository.
// Files ending in .sh or starting with "#!" are executable. Like a push to
// GitHub, committing to the head branch of open pull requests updates them
// (refs/pull/<n>/head and the head sha) and sends them synchronize webhooks.
func (s *Server) Commit(owner, name, branch string, files map[string]string, message string) (string, error) {
	if err := validBranch(branch); err != nil {
		return "", fmt.Errorf("committing to %s/%s: %w", owner, name, err)
	}
	sha, events, err := s.commit(owner, name, branch, files, message)
	s.send(events)
	return sha, err
}

func (s *Server) commit(owner, name, branch string, files map[string]string, message string) (string, []event, error) {
	s.gitMu.Lock()
	defer s.gitMu.Unlock()
	rp := s.lookupRepo(owner, name)
	if rp == nil {
		return "", nil, fmt.Errorf("committing to %s/%s: no such repository", owner, name)
	}
	s.mu.Lock()
	parent, exists := rp.branches[branch]
	if !exists {
		parent = rp.branches[rp.defaultBranch]
	}
	s.mu.Unlock()
	spec := commitSpec{parent: parent, files: files, message: message, author: owner}
	return s.push(rp, branch, spec)
}

// push writes a commit on branch of rp and carries it to every open pull
// request whose head is that branch. s.gitMu must be held.
func (s *Server) push(rp *repo, branch string, spec commitSpec) (string, []event, error) {
	ctx, cancel := withTimeout(gitTimeout)
	defer cancel()
	type tracked struct {
		base *repo
		p    *pull
	}
	var pulls []tracked
	s.mu.Lock()
	for _, base := range s.repos {
		for _, p := range base.pulls {
			if p.state == "open" && p.headRepo == rp && p.headRef == branch {
				pulls = append(pulls, tracked{base, p})
				if base == rp {
					spec.alsoRefs = append(spec.alsoRefs, pullRef(p.number))
				}
			}
		}
	}
	s.mu.Unlock()
	spec.ref = "refs/heads/" + branch
	sha, err := s.writeCommit(ctx, rp.gitDir, spec)
	if err != nil {
		return "", nil, fmt.Errorf("pushing to %s %s: %w", rp.fullName(), branch, err)
	}
	s.mu.Lock()
	rp.branches[branch] = sha
	rp.commits[sha] = true
	rp.pushed = time.Now().UTC().Truncate(time.Second)
	s.mu.Unlock()

	var events []event
	for _, t := range pulls {
		if t.base != rp {
			if err := s.fetchPullRef(ctx, t.base, t.p.number, rp, branch); err != nil {
				return sha, events, err
			}
		}
		ev, err := s.moveHead(ctx, t.base, t.p, sha)
		if err != nil {
			return sha, events, err
		}
		events = append(events, ev)
	}
	return sha, events, nil
}

func pullRef(n int) string { return "refs/pull/" + strconv.Itoa(n) + "/head" }

// fetchPullRef copies branch of the fork head into refs/pull/<n>/head of
// base, as GitHub does for pull requests from forks.
func (s *Server) fetchPullRef(ctx context.Context, base *repo, n int, head *repo, branch string) error {
	refspec := "+refs/heads/" + branch + ":" + pullRef(n)
	if _, err := s.runGit(ctx, base.gitDir, nil, "fetch", "--quiet", "--no-tags", "--", head.gitDir, refspec); err != nil {
		return fmt.Errorf("updating %s of %s: %w", pullRef(n), base.fullName(), err)
	}
	return nil
}

// moveHead records sha as the new head of p and renders its synchronize
// webhook. refs/pull/<n>/head must already point at sha.
func (s *Server) moveHead(ctx context.Context, base *repo, p *pull, sha string) (event, error) {
	stats, err := s.diffStats(ctx, base, p, sha)
	if err != nil {
		return event{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p.prevHeadSHA, p.headSHA = p.headSHA, sha
	p.updated = time.Now().UTC().Truncate(time.Second)
	p.commits, p.additions, p.changedFiles = stats.commits, stats.additions, stats.files
	base.commits[sha] = true
	return s.eventLocked(base, p, pullEvent{action: "synchronize", before: p.prevHeadSHA, sender: p.author})
}

// eventLocked renders a pull_request webhook for delivery.
func (s *Server) eventLocked(rp *repo, p *pull, ev pullEvent) (event, error) {
	payload, err := json.Marshal(s.pullEventLocked(rp, p, ev))
	if err != nil {
		return event{}, fmt.Errorf("encoding %s webhook: %w", ev.action, err)
	}
	return event{action: ev.action, payload: payload}, nil
}

// stats are a pull request's size as GitHub reports it.
type stats struct{ commits, additions, files int }

// diffStats measures head against the pull's base branch in the base
// repository, which holds both through refs/pull/<n>/head.
func (s *Server) diffStats(ctx context.Context, base *repo, p *pull, head string) (stats, error) {
	s.mu.Lock()
	baseSHA := base.branches[p.baseRef]
	s.mu.Unlock()
	count, err := s.runGit(ctx, base.gitDir, nil, "rev-list", "--count", baseSHA+".."+head)
	if err != nil {
		return stats{}, fmt.Errorf("counting commits of %s#%d: %w", base.fullName(), p.number, err)
	}
	numstat, err := s.runGit(ctx, base.gitDir, nil, "diff", "--numstat", baseSHA+"..."+head)
	if err != nil {
		return stats{}, fmt.Errorf("diffing %s#%d: %w", base.fullName(), p.number, err)
	}
	var st stats
	if st.commits, err = strconv.Atoi(strings.TrimSpace(count)); err != nil {
		return stats{}, fmt.Errorf("counting commits of %s#%d: %w", base.fullName(), p.number, err)
	}
	for _, line := range strings.Split(strings.TrimSpace(numstat), "\n") {
		if fields := strings.Fields(line); len(fields) >= 3 {
			if added, err := strconv.Atoi(fields[0]); err == nil { // "-" for a binary file
				st.additions += added
			}
			st.files++
		}
	}
	return st, nil
}

// OpenPull opens a pull request from spec.Head into spec.Base of
// owner/name, sets refs/pull/<n>/head, sends the opened webhook to
// registered hooks, and returns the pull as the REST API shows it.
func (s *Server) OpenPull(owner, name string, spec PullSpec) (*github.PullRequest, error) {
	pr, events, err := s.openPull(owner, name, spec)
	s.send(events)
	return pr, err
}

func (s *Server) openPull(owner, name string, spec PullSpec) (*github.PullRequest, []event, error) {
	s.gitMu.Lock()
	defer s.gitMu.Unlock()
	rp := s.lookupRepo(owner, name)
	if rp == nil {
		return nil, nil, fmt.Errorf("opening pull on %s/%s: no such repository", owner, name)
	}
	spec = withDefaults(rp, spec)
	head, err := s.headRepo(rp, spec)
	if err != nil {
		return nil, nil, err
	}
	s.mu.Lock()
	headSHA, headOK := head.branches[spec.Head]
	_, baseOK := rp.branches[spec.Base]
	number := len(rp.pulls) + 1
	s.mu.Unlock()
	if !headOK || !baseOK {
		return nil, nil, fmt.Errorf("opening pull on %s/%s: head %s:%s or base %s does not exist", owner, name, head.owner, spec.Head, spec.Base)
	}
	ctx, cancel := withTimeout(gitTimeout)
	defer cancel()
	if head == rp {
		_, err = s.runGit(ctx, rp.gitDir, nil, "update-ref", pullRef(number), headSHA)
	} else {
		err = s.fetchPullRef(ctx, rp, number, head, spec.Head)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("opening pull on %s/%s: %w", owner, name, err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	p := &pull{number: number, state: "open", title: spec.Title, body: spec.Body, author: spec.Author,
		draft: spec.Draft, headRepo: head, headRef: spec.Head, baseRef: spec.Base,
		labels: uniq(spec.Labels), created: now, updated: now}
	st, err := s.diffStats(ctx, rp, p, headSHA)
	if err != nil {
		return nil, nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p.id = s.newIDLocked()
	p.headSHA = headSHA
	p.commits, p.additions, p.changedFiles = st.commits, st.additions, st.files
	for _, l := range p.labels {
		s.recordEventLocked(p, "labeled", p.author, l, now)
	}
	rp.pulls = append(rp.pulls, p)
	rp.commits[headSHA] = true
	ev, err := s.eventLocked(rp, p, pullEvent{action: "opened", sender: p.author})
	if err != nil {
		return nil, nil, err
	}
	return s.pullJSONLocked(rp, p, true), []event{ev}, nil
}

// withDefaults fills the optional fields of spec.
func withDefaults(rp *repo, spec PullSpec) PullSpec {
	if spec.Base == "" {
		spec.Base = rp.defaultBranch
	}
	if spec.Author == "" {
		spec.Author = rp.owner
	}
	if spec.Title == "" {
		spec.Title = "Pull request from " + spec.Head
	}
	return spec
}

// headRepo is where the pull's head branch lives: rp, or the author's fork
// (created on demand). s.gitMu must be held.
func (s *Server) headRepo(rp *repo, spec PullSpec) (*repo, error) {
	if !spec.Fork {
		return rp, nil
	}
	if spec.Author == rp.owner {
		return nil, fmt.Errorf("opening pull on %s: the owner cannot open a pull from a fork of their own repository", rp.fullName())
	}
	if fork := s.lookupRepo(spec.Author, rp.name); fork != nil {
		return fork, nil
	}
	if _, err := s.forkLocked(rp.owner, rp.name, spec.Author); err != nil {
		return nil, err
	}
	return s.lookupRepo(spec.Author, rp.name), nil
}

// PushPull adds a commit with files to the head branch of pull n (in the
// fork for pulls from forks), updates refs/pull/<n>/head, sends the
// synchronize webhook, and returns the new head sha.
func (s *Server) PushPull(owner, name string, n int, files map[string]string) (string, error) {
	sha, events, err := s.pushPull(owner, name, n, files, false)
	s.send(events)
	return sha, err
}

// ForcePushPull rewrites pull n's history as an amended commit does: the
// new head has the old head's parent, its tree plus files, and the old head
// is no longer reachable from the branch or refs/pull/<n>/head.
func (s *Server) ForcePushPull(owner, name string, n int, files map[string]string) (string, error) {
	sha, events, err := s.pushPull(owner, name, n, files, true)
	s.send(events)
	return sha, err
}

func (s *Server) pushPull(owner, name string, n int, files map[string]string, force bool) (string, []event, error) {
	s.gitMu.Lock()
	defer s.gitMu.Unlock()
	s.mu.Lock()
	_, p, err := s.pullLocked(owner, name, n)
	var head *repo
	var branch, old, author string
	if err == nil {
		head, branch, old, author = p.headRepo, p.headRef, p.headSHA, p.author
	}
	s.mu.Unlock()
	if err != nil {
		return "", nil, fmt.Errorf("pushing to pull: %w", err)
	}
	spec := commitSpec{parent: old, files: files, author: author, message: fmt.Sprintf("Update pull request #%d", n)}
	if force {
		ctx, cancel := withTimeout(gitTimeout)
		defer cancel()
		out, err := s.runGit(ctx, head.gitDir, nil, "log", "-1", "--format=%T %P", old)
		if err != nil {
			return "", nil, fmt.Errorf("rewriting %s/%s#%d: %w", owner, name, n, err)
		}
		fields := strings.Fields(out)
		spec.tree, spec.parent, spec.force = fields[0], "", true
		if len(fields) > 1 {
			spec.parent = fields[1]
		}
		spec.message = fmt.Sprintf("Rewrite pull request #%d", n)
	}
	return s.push(head, branch, spec)
}

// ClosePull closes pull n without merging and sends the closed webhook.
func (s *Server) ClosePull(owner, name string, n int) error {
	return s.changePull(owner, name, n, "closed", "", "")
}

// ReopenPull reopens pull n and sends the reopened webhook.
func (s *Server) ReopenPull(owner, name string, n int) error {
	return s.changePull(owner, name, n, "reopened", "", "")
}

// AddLabel adds label to pull n, as the repository's owner would, and
// sends the labeled webhook (once; adding a label it has is a no-op).
func (s *Server) AddLabel(owner, name string, n int, label string) error {
	return s.changePull(owner, name, n, "labeled", label, "")
}

// AddLabelAs adds label to pull n as actor: the webhook's sender and the
// issue event's actor name them, whatever their permission.
func (s *Server) AddLabelAs(owner, name string, n int, label, actor string) error {
	return s.changePull(owner, name, n, "labeled", label, actor)
}

// RemoveLabel removes label from pull n and sends the unlabeled webhook.
func (s *Server) RemoveLabel(owner, name string, n int, label string) error {
	return s.changePull(owner, name, n, "unlabeled", label, "")
}

// changePull applies a state or label change by actor (the default sender
// when empty), records its issue event and notifies hooks.
func (s *Server) changePull(owner, name string, n int, action, label, actor string) error {
	s.mu.Lock()
	rp, p, err := s.pullLocked(owner, name, n)
	if err != nil {
		s.mu.Unlock()
		return fmt.Errorf("%s: %w", action, err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	changed := true
	switch action {
	case "closed":
		changed = p.state == "open"
		p.state, p.closed = "closed", &now
	case "reopened":
		changed = p.state == "closed"
		p.state, p.closed = "open", nil
	case "labeled":
		changed = !slices.Contains(p.labels, label)
		if changed {
			p.labels = append(p.labels, label)
		}
	case "unlabeled":
		changed = slices.Contains(p.labels, label)
		p.labels = slices.DeleteFunc(p.labels, func(l string) bool { return l == label })
	}
	if !changed {
		s.mu.Unlock()
		return nil
	}
	p.updated = now
	if actor == "" {
		actor = defaultSender(rp, p, action)
	}
	s.recordEventLocked(p, action, actor, label, now)
	ev, err := s.eventLocked(rp, p, pullEvent{action: action, label: label, sender: actor})
	s.mu.Unlock()
	if err != nil {
		return err
	}
	s.send([]event{ev})
	return nil
}

// Pull returns pull n as GET /repos/{owner}/{repo}/pulls/{n} shows it.
func (s *Server) Pull(owner, name string, n int) (*github.PullRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rp, p, err := s.pullLocked(owner, name, n)
	if err != nil {
		return nil, fmt.Errorf("getting pull: %w", err)
	}
	return s.pullJSONLocked(rp, p, true), nil
}

// uniq returns labels without repeats, in order.
func uniq(labels []string) []string {
	var out []string
	for _, l := range labels {
		if !slices.Contains(out, l) {
			out = append(out, l)
		}
	}
	return out
}
