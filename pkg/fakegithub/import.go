package fakegithub

import (
	"fmt"
	"strings"
	"time"
)

// ImportBranch points branch of owner/name at commit rev of the git
// repository at srcDir (a path git can fetch from: a clone, a bare
// mirror), fetching rev's history into the stand-in, and returns the
// commit's sha. It lets a scenario build a real project's history, such
// as a clone of pallets/click, where Commit can only write new commits of
// given files. The branch may move anywhere, forward or back, like a
// forced push; no webhook is sent, so importing onto the head branch of an
// open pull request is refused (push to it with PushPull instead).
func (s *Server) ImportBranch(owner, name, branch, srcDir, rev string) (string, error) {
	if err := validBranch(branch); err != nil {
		return "", fmt.Errorf("importing into %s/%s: %w", owner, name, err)
	}
	s.gitMu.Lock()
	defer s.gitMu.Unlock()
	rp := s.lookupRepo(owner, name)
	if rp == nil {
		return "", fmt.Errorf("importing into %s/%s: no such repository", owner, name)
	}
	s.mu.Lock()
	for _, base := range s.repos {
		for _, p := range base.pulls {
			if p.state == "open" && p.headRepo == rp && p.headRef == branch {
				s.mu.Unlock()
				return "", fmt.Errorf("importing into %s/%s %s: the head of open pull request #%d; push to it with PushPull", owner, name, branch, p.number)
			}
		}
	}
	s.mu.Unlock()
	ctx, cancel := withTimeout(gitTimeout)
	defer cancel()
	out, err := s.runGit(ctx, "", nil, "-C", srcDir, "rev-parse", "--verify", "--end-of-options", rev+"^{commit}")
	if err != nil {
		return "", fmt.Errorf("importing %s of %s: %w", rev, srcDir, err)
	}
	sha := strings.TrimSpace(out)
	// Fetching the sha into the branch itself takes its whole history and
	// moves the branch in one step, forced as a push --force would be.
	if _, err := s.runGit(ctx, rp.gitDir, nil, "fetch", "--quiet", "--no-tags", "--", srcDir, "+"+sha+":refs/heads/"+branch); err != nil {
		return "", fmt.Errorf("importing %s of %s into %s %s: %w", rev, srcDir, rp.fullName(), branch, err)
	}
	s.mu.Lock()
	rp.branches[branch] = sha
	rp.commits[sha] = true
	rp.pushed = time.Now().UTC().Truncate(time.Second)
	s.mu.Unlock()
	return sha, nil
}
