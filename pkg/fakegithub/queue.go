package fakegithub

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/go-github/v88/github"
)

// MergeGroup is a group of GitHub's merge queue as the stand-in made it:
// its head commit on the base repository's temporary branch, and the tip
// of the base branch it was made on. Refs are full, as the merge_group
// webhook writes them.
type MergeGroup struct {
	Owner, Name      string
	Pull             int
	HeadSHA, HeadRef string
	BaseSHA, BaseRef string
	// Message and At are the head commit's message and timestamp.
	Message string
	At      time.Time
}

// QueuePull puts pull n of owner/name into the merge queue, alone in its
// group, as GitHub does when someone who may merge queues it: the group's
// head is a real merge commit of the pull's head into the tip of its base
// branch, written to refs/heads/gh-readonly-queue/<base>/pr-<n>-<base sha>
// of the base repository (where a clone's mirror finds it), and the
// merge_group checks_requested webhook goes to every hook before QueuePull
// returns. A pull whose head conflicts with its base cannot be queued. A
// pull queued again on the same base tip replaces the branch, as the
// queue does.
func (s *Server) QueuePull(owner, name string, n int) (MergeGroup, error) {
	g, err := s.makeGroup(owner, name, n)
	if err != nil {
		return MergeGroup{}, fmt.Errorf("queuing %s/%s#%d: %w", owner, name, n, err)
	}
	payload, err := s.MergeGroupPayload(g, "checks_requested", "")
	if err != nil {
		return MergeGroup{}, err
	}
	s.notifyEvent("merge_group", "checks_requested", payload)
	return g, nil
}

// DestroyGroup gives group g up, as the queue does once it merged it
// (reason "merged") or when an entry was removed ("dequeued",
// "invalidated"): the merge_group destroyed webhook goes to every hook
// before it returns. The temporary branch is left in place, so a late
// checkout still finds its commit.
func (s *Server) DestroyGroup(g MergeGroup, reason string) error {
	payload, err := s.MergeGroupPayload(g, "destroyed", reason)
	if err != nil {
		return err
	}
	s.notifyEvent("merge_group", "destroyed", payload)
	return nil
}

// makeGroup writes the group's merge commit; see QueuePull.
func (s *Server) makeGroup(owner, name string, n int) (MergeGroup, error) {
	s.gitMu.Lock()
	defer s.gitMu.Unlock()
	s.mu.Lock()
	rp, p, err := s.pullLocked(owner, name, n)
	var g MergeGroup
	if err == nil {
		g = MergeGroup{Owner: rp.owner, Name: rp.name, Pull: n, BaseSHA: rp.branches[p.baseRef], BaseRef: "refs/heads/" + p.baseRef}
		if p.state != "open" {
			err = fmt.Errorf("pull request is %s", p.state)
		}
	}
	head := ""
	if p != nil {
		head = p.headSHA
	}
	s.mu.Unlock()
	if err != nil {
		return MergeGroup{}, err
	}
	ctx, cancel := withTimeout(gitTimeout)
	defer cancel()
	out, err := s.runGit(ctx, rp.gitDir, nil, "merge-tree", "--write-tree", "--", g.BaseSHA, head)
	if err != nil {
		return MergeGroup{}, fmt.Errorf("merging head %.7s into %s: %w", head, g.BaseRef, err)
	}
	tree, _, _ := strings.Cut(strings.TrimSpace(out), "\n")
	g.HeadRef = fmt.Sprintf("refs/heads/gh-readonly-queue/%s/pr-%d-%s", strings.TrimPrefix(g.BaseRef, "refs/heads/"), n, g.BaseSHA)
	g.Message = fmt.Sprintf("Merge pull request #%d\n", n)
	g.At = time.Now().UTC().Truncate(time.Second)
	g.HeadSHA, err = s.writeCommit(ctx, rp.gitDir, commitSpec{
		ref: g.HeadRef, parent: g.BaseSHA, merges: []string{head}, tree: tree, message: g.Message, author: "github-merge-queue", force: true,
	})
	if err != nil {
		return MergeGroup{}, err
	}
	s.mu.Lock()
	rp.branches[strings.TrimPrefix(g.HeadRef, "refs/heads/")] = g.HeadSHA
	rp.commits[g.HeadSHA] = true
	s.mu.Unlock()
	return g, nil
}

// mergeGroupJSON is the merge_group object of the webhook, with its
// head_commit as GitHub writes it (go-github's Commit has no timestamp).
type mergeGroupJSON struct {
	HeadSHA    string         `json:"head_sha"`
	HeadRef    string         `json:"head_ref"`
	BaseSHA    string         `json:"base_sha"`
	BaseRef    string         `json:"base_ref"`
	HeadCommit headCommitJSON `json:"head_commit"`
}

type headCommitJSON struct {
	ID        string     `json:"id"`
	TreeID    string     `json:"tree_id,omitempty"`
	Message   string     `json:"message"`
	Timestamp time.Time  `json:"timestamp"`
	Author    personJSON `json:"author"`
	Committer personJSON `json:"committer"`
}

type personJSON struct {
	Name  string `json:"name"`
	Email string `json:"email"`
}

// MergeGroupPayload renders the merge_group webhook GitHub sends for g
// with action ("checks_requested" or "destroyed", with reason).
func (s *Server) MergeGroupPayload(g MergeGroup, action, reason string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rp := s.repos[g.Owner+"/"+g.Name]
	if rp == nil {
		return nil, fmt.Errorf("rendering merge_group payload: no repository %s/%s", g.Owner, g.Name)
	}
	queue := personJSON{Name: "github-merge-queue[bot]", Email: "118344674+github-merge-queue[bot]@users.noreply.github.com"}
	ev := struct {
		Action     string               `json:"action"`
		Reason     string               `json:"reason,omitempty"`
		MergeGroup mergeGroupJSON       `json:"merge_group"`
		Repo       *github.Repository   `json:"repository"`
		Inst       *github.Installation `json:"installation,omitempty"`
		Sender     *github.User         `json:"sender"`
	}{
		Action: action, Reason: reason,
		MergeGroup: mergeGroupJSON{HeadSHA: g.HeadSHA, HeadRef: g.HeadRef, BaseSHA: g.BaseSHA, BaseRef: g.BaseRef,
			HeadCommit: headCommitJSON{ID: g.HeadSHA, Message: g.Message, Timestamp: g.At, Author: queue, Committer: queue}},
		Repo: s.repoJSONLocked(rp), Inst: s.installationRefLocked(rp), Sender: s.userLocked("github-merge-queue[bot]"),
	}
	payload, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encoding merge_group payload: %w", err)
	}
	return payload, nil
}
