package fakegithub

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/google/go-github/v88/github"
)

// repo is one repository's state; its git data lives in gitDir.
type repo struct {
	id            int64
	owner, name   string
	gitDir        string
	parent        *repo // the repository this one is a fork of, or nil
	created       time.Time
	pushed        time.Time
	defaultBranch string
	branches      map[string]string // branch name → tip sha
	commits       map[string]bool   // every commit sha the scenario created here
	pulls         []*pull           // pulls[i].number == i+1
	statuses      map[string][]*github.RepoStatus
	perms         map[string]string // login → admin, maintain, write, triage, read or none
	labelIDs      map[string]int64
}

func (r *repo) fullName() string { return r.owner + "/" + r.name }

// Repo describes a repository created on the server.
type Repo struct {
	ID       int64
	Owner    string
	Name     string
	FullName string // "owner/name"
	// CloneURL is the git smart-HTTP URL, as GitHub's clone_url; it needs
	// a token as basic-auth password.
	CloneURL string
	// GitDir is the bare repository on disk, for tests that inspect or
	// damage it directly.
	GitDir string
}

var (
	ownerPattern = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9_-]{0,38})$`)
	namePattern  = regexp.MustCompile(`^[A-Za-z0-9._-]{1,100}$`)
)

// validRepoName applies GitHub's rules for account and repository names.
func validRepoName(owner, name string) error {
	if !ownerPattern.MatchString(owner) {
		return fmt.Errorf("invalid owner %q", owner)
	}
	if !namePattern.MatchString(name) || name == "." || name == ".." || filepath.Ext(name) == ".git" {
		return fmt.Errorf("invalid repository name %q", name)
	}
	return nil
}

// CreateRepo creates an empty private repository whose default branch is
// "main". Its owner has admin permission on it.
func (s *Server) CreateRepo(owner, name string) (*Repo, error) {
	if err := validRepoName(owner, name); err != nil {
		return nil, fmt.Errorf("creating repository: %w", err)
	}
	s.gitMu.Lock()
	defer s.gitMu.Unlock()
	gitDir := filepath.Join(s.dir, "git", owner, name+".git")
	if s.lookupRepo(owner, name) != nil {
		return nil, fmt.Errorf("creating repository %s/%s: already exists", owner, name)
	}
	ctx, cancel := withTimeout(gitTimeout)
	defer cancel()
	if _, err := s.runGit(ctx, "", nil, "init", "--quiet", "--bare", "--initial-branch=main", gitDir); err != nil {
		return nil, fmt.Errorf("creating repository %s/%s: %w", owner, name, err)
	}
	if err := configureBare(gitDir); err != nil {
		return nil, fmt.Errorf("creating repository %s/%s: %w", owner, name, err)
	}
	return s.addRepo(owner, name, gitDir, nil, nil), nil
}

// configureBare makes a bare repository serve fetches the way GitHub does:
// any reachable commit may be fetched by sha, and nobody may push.
func configureBare(gitDir string) error {
	f, err := os.OpenFile(filepath.Join(gitDir, "config"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("opening git config: %w", err)
	}
	_, werr := f.WriteString("[uploadpack]\n\tallowAnySHA1InWant = true\n\tallowFilter = true\n[http]\n\treceivepack = false\n")
	if err := f.Close(); err != nil && werr == nil {
		werr = err
	}
	if werr != nil {
		return fmt.Errorf("writing git config: %w", werr)
	}
	return nil
}

// addRepo records a repository whose bare git directory exists.
func (s *Server) addRepo(owner, name, gitDir string, parent *repo, branches map[string]string) *Repo {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now().UTC().Truncate(time.Second)
	rp := &repo{
		id:            s.newIDLocked(),
		owner:         owner,
		name:          name,
		gitDir:        gitDir,
		parent:        parent,
		created:       now,
		pushed:        now,
		defaultBranch: "main",
		branches:      map[string]string{},
		commits:       map[string]bool{},
		statuses:      map[string][]*github.RepoStatus{},
		perms:         map[string]string{owner: "admin"},
		labelIDs:      map[string]int64{},
	}
	for b, sha := range branches {
		rp.branches[b] = sha
		rp.commits[sha] = true
	}
	s.repos[rp.fullName()] = rp
	return s.publicRepoLocked(rp)
}

func (s *Server) publicRepoLocked(rp *repo) *Repo {
	return &Repo{
		ID:       rp.id,
		Owner:    rp.owner,
		Name:     rp.name,
		FullName: rp.fullName(),
		CloneURL: s.url + "/" + rp.fullName() + ".git",
		GitDir:   rp.gitDir,
	}
}

// lookupRepo returns the repository or nil.
func (s *Server) lookupRepo(owner, name string) *repo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.repos[owner+"/"+name]
}

// Fork copies owner/name to user/name, as GitHub's fork button does: the
// fork has the same branches and is owned by user, so pull requests opened
// with PullSpec.Fork take their head from it.
func (s *Server) Fork(owner, name, user string) (*Repo, error) {
	if err := validRepoName(user, name); err != nil {
		return nil, fmt.Errorf("forking %s/%s: %w", owner, name, err)
	}
	s.gitMu.Lock()
	defer s.gitMu.Unlock()
	return s.forkLocked(owner, name, user)
}

// forkLocked is Fork with s.gitMu held.
func (s *Server) forkLocked(owner, name, user string) (*Repo, error) {
	parent := s.lookupRepo(owner, name)
	if parent == nil {
		return nil, fmt.Errorf("forking %s/%s: no such repository", owner, name)
	}
	if s.lookupRepo(user, name) != nil {
		return nil, fmt.Errorf("forking %s/%s: %s/%s already exists", owner, name, user, name)
	}
	gitDir := filepath.Join(s.dir, "git", user, name+".git")
	ctx, cancel := withTimeout(gitTimeout)
	defer cancel()
	if _, err := s.runGit(ctx, "", nil, "clone", "--quiet", "--bare", "--", parent.gitDir, gitDir); err != nil {
		return nil, fmt.Errorf("forking %s/%s: %w", owner, name, err)
	}
	if err := configureBare(gitDir); err != nil {
		return nil, fmt.Errorf("forking %s/%s: %w", owner, name, err)
	}
	s.mu.Lock()
	branches := make(map[string]string, len(parent.branches))
	for b, sha := range parent.branches {
		branches[b] = sha
	}
	s.mu.Unlock()
	return s.addRepo(user, name, gitDir, parent, branches), nil
}

// repoFor finds the repository of a request's {owner}/{repo} that who may
// access; GitHub answers 404, not 403, for repositories a caller cannot see.
func (s *Server) repoForLocked(r *http.Request, who *identity) (*repo, *reply) {
	rp := s.repos[r.PathValue("owner")+"/"+r.PathValue("repo")]
	if rp == nil || !s.canAccessLocked(who, rp.fullName()) {
		rep := notFound()
		return nil, &rep
	}
	return rp, nil
}

// getRepo serves GET /repos/{owner}/{repo}.
func (s *Server) getRepo(r *http.Request, who *identity) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	rp, rep := s.repoForLocked(r, who)
	if rep != nil {
		return *rep
	}
	out := s.repoJSONLocked(rp)
	perm := s.permissionLocked(rp, who.login)
	if who.install != nil {
		perm = "write"
	}
	out.Permissions = &github.RepositoryPermissions{
		Admin:    ptr(perm == "admin"),
		Maintain: ptr(perm == "admin" || perm == "maintain"),
		Push:     ptr(perm == "admin" || perm == "maintain" || perm == "write"),
		Triage:   ptr(perm != "read" && perm != "none"),
		Pull:     ptr(perm != "none"),
	}
	if rp.parent != nil {
		out.Parent = s.repoJSONLocked(rp.parent)
		out.Source = out.Parent
	}
	return ok(out)
}

// permissionLocked is login's role on rp: the owner and the bot are admins,
// others have what SetPermission gave them, or none.
func (s *Server) permissionLocked(rp *repo, login string) string {
	if p, ok := rp.perms[login]; ok {
		return p
	}
	if login == BotLogin {
		return "admin"
	}
	return "none"
}

// SetPermission gives user a role on owner/repo: admin, maintain, write,
// triage, read or none. The REST API reports it the way GitHub does, with
// "permission" one of admin, write, read, none and "role_name" the role.
func (s *Server) SetPermission(owner, name, user, role string) error {
	switch role {
	case "admin", "maintain", "write", "triage", "read", "none":
	default:
		return fmt.Errorf("setting permission of %s on %s/%s: unknown role %q", user, owner, name, role)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rp := s.repos[owner+"/"+name]
	if rp == nil {
		return fmt.Errorf("setting permission of %s on %s/%s: no such repository", user, owner, name)
	}
	rp.perms[user] = role
	return nil
}

// getPermission serves GET /repos/{owner}/{repo}/collaborators/{user}/permission.
func (s *Server) getPermission(r *http.Request, who *identity) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	rp, rep := s.repoForLocked(r, who)
	if rep != nil {
		return *rep
	}
	user := r.PathValue("user")
	if !ownerPattern.MatchString(user) {
		return notFound()
	}
	role := s.permissionLocked(rp, user)
	perm := role
	switch role {
	case "maintain":
		perm = "write"
	case "triage":
		perm = "read"
	}
	return ok(&github.RepositoryPermissionLevel{
		Permission: ptr(perm),
		RoleName:   ptr(role),
		User:       s.userLocked(user),
	})
}
