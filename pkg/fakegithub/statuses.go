package fakegithub

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/google/go-github/v88/github"
)

// GitHub's limits on commit statuses.
const (
	maxDescription       = 140
	maxStatusesPerCommit = 1000
)

var shaPattern = regexp.MustCompile(`^[0-9a-f]{40}$`)

// statusRequest is the body of POST /repos/{owner}/{repo}/statuses/{sha}.
type statusRequest struct {
	State       *string `json:"state"`
	TargetURL   *string `json:"target_url"`
	Description *string `json:"description"`
	Context     *string `json:"context"`
}

// createStatus serves POST /repos/{owner}/{repo}/statuses/{sha}, validating
// like GitHub: state one of pending, success, failure, error; description
// at most 140 characters; context "default" when not given; a commit that
// exists; at most 1000 statuses per commit and context.
func (s *Server) createStatus(r *http.Request, who *identity) reply {
	var req statusRequest
	if rep := decodeBody(r, &req); rep != nil {
		return *rep
	}
	if req.State == nil {
		return fail(http.StatusUnprocessableEntity, "Invalid request.\n\n\"state\" wasn't supplied.", docStatuses)
	}
	switch *req.State {
	case "pending", "success", "failure", "error":
	default:
		return invalid(docStatuses, fieldError{Resource: "Status", Code: "custom", Field: "state",
			Message: "state is not included in the list"})
	}
	if req.Description != nil && utf8.RuneCountInString(*req.Description) > maxDescription {
		return invalid(docStatuses, fieldError{Resource: "Status", Code: "custom", Field: "description",
			Message: "description is too long (maximum is 140 characters)"})
	}
	sha := r.PathValue("sha")
	if !s.commitExists(r.Context(), r.PathValue("owner"), r.PathValue("repo"), sha) {
		s.mu.Lock()
		_, rep := s.repoForLocked(r, who)
		s.mu.Unlock()
		if rep != nil {
			return *rep
		}
		return fail(http.StatusUnprocessableEntity, "No commit found for SHA: "+sha, docStatuses)
	}
	ctxName := "default"
	if req.Context != nil && *req.Context != "" {
		ctxName = *req.Context
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	rp, rep := s.repoForLocked(r, who)
	if rep != nil {
		return *rep
	}
	same := 0
	for _, st := range rp.statuses[sha] {
		if st.GetContext() == ctxName {
			same++
		}
	}
	if same >= maxStatusesPerCommit {
		return invalid(docStatuses, fieldError{Resource: "Status", Code: "custom", Field: "context",
			Message: "This SHA and context has reached the maximum number of statuses."})
	}
	id := s.newIDLocked()
	now := time.Now().UTC().Truncate(time.Second)
	st := &github.RepoStatus{
		ID:          ptr(id),
		NodeID:      ptr(nodeID("SC", id)),
		URL:         ptr(s.url + "/repos/" + rp.fullName() + "/statuses/" + sha),
		State:       req.State,
		TargetURL:   req.TargetURL,
		Description: req.Description,
		Context:     ptr(ctxName),
		AvatarURL:   ptr(fmt.Sprintf("%s/avatars/u/%d?v=4", s.url, s.userIDLocked(who.login))),
		Creator:     s.userLocked(who.login),
		CreatedAt:   stamp(now),
		UpdatedAt:   stamp(now),
	}
	rp.statuses[sha] = append(rp.statuses[sha], st)
	s.signalLocked()
	return reply{status: http.StatusCreated, body: st}
}

// commitExists reports whether sha names a commit of owner/name: one the
// scenario created, or failing that one git finds (a test may have written
// to the bare repository itself).
func (s *Server) commitExists(ctx context.Context, owner, name, sha string) bool {
	if !shaPattern.MatchString(sha) {
		return false
	}
	rp := s.lookupRepo(owner, name)
	if rp == nil {
		return false
	}
	s.mu.Lock()
	known := rp.commits[sha]
	s.mu.Unlock()
	if known {
		return true
	}
	ctx, cancel := context.WithTimeout(ctx, gitTimeout)
	defer cancel()
	_, err := s.runGit(ctx, rp.gitDir, nil, "cat-file", "-e", sha+"^{commit}")
	return err == nil
}

// resolveRefLocked turns a sha or branch name into a sha of rp.
func resolveRefLocked(rp *repo, ref string) (string, bool) {
	if sha, ok := rp.branches[ref]; ok {
		return sha, true
	}
	if shaPattern.MatchString(ref) {
		return ref, true
	}
	return "", false
}

// commitForLocked is the repository of r and the commit its {ref} names,
// or the answer GitHub gives when either is unknown to who.
func (s *Server) commitForLocked(r *http.Request, who *identity) (*repo, string, *reply) {
	rp, rep := s.repoForLocked(r, who)
	if rep != nil {
		return nil, "", rep
	}
	sha, found := resolveRefLocked(rp, r.PathValue("ref"))
	if !found {
		missing := notFound()
		return nil, "", &missing
	}
	return rp, sha, nil
}

// listStatuses serves GET /repos/{owner}/{repo}/commits/{ref}/statuses:
// every status of the commit, newest first, paginated.
func (s *Server) listStatuses(r *http.Request, who *identity) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	rp, sha, rep := s.commitForLocked(r, who)
	if rep != nil {
		return *rep
	}
	all := slices.Clone(rp.statuses[sha])
	slices.Reverse(all)
	page, rep := s.paginate(r, len(all))
	if rep != nil {
		return *rep
	}
	return reply{status: http.StatusOK, body: all[page.start:page.end], header: page.header}
}

// combinedStatus serves GET /repos/{owner}/{repo}/commits/{ref}/status: the
// latest status of each context and their combined state.
func (s *Server) combinedStatus(r *http.Request, who *identity) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	rp, sha, rep := s.commitForLocked(r, who)
	if rep != nil {
		return *rep
	}
	latest := latestByContext(rp.statuses[sha])
	page, rep := s.paginate(r, len(latest))
	if rep != nil {
		return *rep
	}
	api := s.url + "/repos/" + rp.fullName()
	out := &github.CombinedStatus{
		State:         ptr(combinedState(latest)),
		SHA:           ptr(sha),
		TotalCount:    ptr(len(latest)),
		Statuses:      latest[page.start:page.end],
		CommitURL:     ptr(api + "/commits/" + sha),
		RepositoryURL: ptr(api),
	}
	return reply{status: http.StatusOK, body: out, header: page.header}
}

// latestByContext keeps the newest status of each context, sorted by
// context.
func latestByContext(history []*github.RepoStatus) []*github.RepoStatus {
	byContext := map[string]*github.RepoStatus{}
	for _, st := range history {
		byContext[st.GetContext()] = st
	}
	out := make([]*github.RepoStatus, 0, len(byContext))
	for _, st := range byContext {
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b *github.RepoStatus) int {
		return cmp.Compare(a.GetContext(), b.GetContext())
	})
	return out
}

// combinedState is GitHub's rule: failure if any context failed or erred,
// pending if any is pending or there are none, success otherwise.
func combinedState(latest []*github.RepoStatus) string {
	if len(latest) == 0 {
		return "pending"
	}
	state := "success"
	for _, st := range latest {
		switch st.GetState() {
		case "failure", "error":
			return "failure"
		case "pending":
			state = "pending"
		}
	}
	return state
}

// Statuses returns every status posted for sha on owner/repo, oldest first.
func (s *Server) Statuses(owner, name, sha string) []github.RepoStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	rp := s.repos[owner+"/"+name]
	if rp == nil {
		return nil
	}
	out := make([]github.RepoStatus, 0, len(rp.statuses[sha]))
	for _, st := range rp.statuses[sha] {
		out = append(out, *st)
	}
	return out
}

// LatestStatuses returns the newest status of each context for sha, keyed
// by context.
func (s *Server) LatestStatuses(owner, name, sha string) map[string]github.RepoStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.latestLocked(owner, name, sha)
}

func (s *Server) latestLocked(owner, name, sha string) map[string]github.RepoStatus {
	out := map[string]github.RepoStatus{}
	rp := s.repos[owner+"/"+name]
	if rp == nil {
		return out
	}
	for _, st := range rp.statuses[sha] {
		out[st.GetContext()] = *st
	}
	return out
}

// WaitStatuses blocks until done, given the latest status of each context
// for sha, returns true, or until ctx ends. done is called once at the
// start and again after every status posted to the server (for any
// commit), never concurrently; it must not call back into the Server.
func (s *Server) WaitStatuses(ctx context.Context, owner, name, sha string, done func(map[string]github.RepoStatus) bool) error {
	for {
		s.mu.Lock()
		latest := s.latestLocked(owner, name, sha)
		changed := s.statusChanged
		s.mu.Unlock()
		if done(latest) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for statuses of %s on %s/%s: %w (latest: %s)", sha, owner, name, ctx.Err(), describe(latest))
		case <-changed:
		}
	}
}

// describe summarises statuses for an error message.
func describe(latest map[string]github.RepoStatus) string {
	keys := make([]string, 0, len(latest))
	for k := range latest {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := ""
	for i, k := range keys {
		if i > 0 {
			out += ", "
		}
		st := latest[k]
		out += k + "=" + st.GetState()
	}
	if out == "" {
		return "none"
	}
	return out
}
