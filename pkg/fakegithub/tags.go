package fakegithub

import "fmt"

// Tag points the lightweight tag name of owner/repo at commit sha, as
// pushing a tag to GitHub does. No webhook is sent: YourCI builds pull
// requests, not tags.
func (s *Server) Tag(owner, repo, name, sha string) error {
	s.gitMu.Lock()
	defer s.gitMu.Unlock()
	rp := s.lookupRepo(owner, repo)
	if rp == nil {
		return fmt.Errorf("tagging %s/%s: no such repository", owner, repo)
	}
	ctx, cancel := withTimeout(gitTimeout)
	defer cancel()
	// update-ref refuses a malformed ref name and an unknown commit.
	if _, err := s.runGit(ctx, rp.gitDir, nil, "update-ref", "--no-deref", "refs/tags/"+name, sha, ""); err != nil {
		return fmt.Errorf("tagging %s/%s %s: %w", owner, repo, name, err)
	}
	return nil
}
