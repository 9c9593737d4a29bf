package fakegithub

import (
	"encoding/base64"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-github/v88/github"
)

// This file turns the server's state into go-github values, which marshal to
// the JSON GitHub sends. Every function here expects s.mu to be held.

func ptr[T any](v T) *T { return github.Ptr(v) }

func stamp(t time.Time) *github.Timestamp { return &github.Timestamp{Time: t} }

// nodeID imitates GitHub's opaque GraphQL ids ("PR_kwDO...").
func nodeID(prefix string, id int64) string {
	return prefix + "_kwDO" + strings.TrimRight(base64.StdEncoding.EncodeToString([]byte(strconv.FormatInt(id, 36))), "=")
}

// userLocked renders a user as GitHub embeds it in pulls, repositories and
// webhook payloads.
func (s *Server) userLocked(login string) *github.User {
	id := s.userIDLocked(login)
	api := s.url + "/users/" + login
	typ := "User"
	if strings.HasSuffix(login, "[bot]") {
		typ = "Bot"
	}
	return &github.User{
		Login:             ptr(login),
		ID:                ptr(id),
		NodeID:            ptr(nodeID("U", id)),
		AvatarURL:         ptr(fmt.Sprintf("%s/avatars/u/%d?v=4", s.url, id)),
		GravatarID:        ptr(""),
		URL:               ptr(api),
		HTMLURL:           ptr(s.url + "/" + login),
		FollowersURL:      ptr(api + "/followers"),
		FollowingURL:      ptr(api + "/following{/other_user}"),
		GistsURL:          ptr(api + "/gists{/gist_id}"),
		StarredURL:        ptr(api + "/starred{/owner}{/repo}"),
		SubscriptionsURL:  ptr(api + "/subscriptions"),
		OrganizationsURL:  ptr(api + "/orgs"),
		ReposURL:          ptr(api + "/repos"),
		EventsURL:         ptr(api + "/events{/privacy}"),
		ReceivedEventsURL: ptr(api + "/received_events"),
		Type:              ptr(typ),
		UserViewType:      ptr("public"),
		SiteAdmin:         ptr(false),
	}
}

// repoJSONLocked renders a repository with every URL GitHub lists.
func (s *Server) repoJSONLocked(rp *repo) *github.Repository {
	full := rp.fullName()
	api := s.url + "/repos/" + full
	host := strings.TrimPrefix(s.url, "http://")
	open := 0
	for _, p := range rp.pulls {
		if p.state == "open" {
			open++
		}
	}
	r := &github.Repository{
		ID:                       ptr(rp.id),
		NodeID:                   ptr(nodeID("R", rp.id)),
		Name:                     ptr(rp.name),
		FullName:                 ptr(full),
		Private:                  ptr(true),
		Owner:                    s.userLocked(rp.owner),
		HTMLURL:                  ptr(s.url + "/" + full),
		Description:              ptr("Repository " + full + " served by fakegithub"),
		Fork:                     ptr(rp.parent != nil),
		URL:                      ptr(api),
		CreatedAt:                stamp(rp.created),
		UpdatedAt:                stamp(rp.pushed),
		PushedAt:                 stamp(rp.pushed),
		GitURL:                   ptr("git://" + host + "/" + full + ".git"),
		SSHURL:                   ptr("git@" + host + ":" + full + ".git"),
		CloneURL:                 ptr(s.url + "/" + full + ".git"),
		SVNURL:                   ptr(s.url + "/" + full),
		Size:                     ptr(0),
		StargazersCount:          ptr(0),
		WatchersCount:            ptr(0),
		Watchers:                 ptr(0),
		HasIssues:                ptr(true),
		HasProjects:              ptr(true),
		HasDownloads:             ptr(true),
		HasWiki:                  ptr(false),
		HasPages:                 ptr(false),
		HasDiscussions:           ptr(false),
		ForksCount:               ptr(0),
		Archived:                 ptr(false),
		Disabled:                 ptr(false),
		OpenIssuesCount:          ptr(open),
		OpenIssues:               ptr(open),
		AllowForking:             ptr(true),
		IsTemplate:               ptr(false),
		WebCommitSignoffRequired: ptr(false),
		Topics:                   []string{},
		Visibility:               ptr("private"),
		DefaultBranch:            ptr(rp.defaultBranch),
	}
	setRepoURLs(r, api)
	return r
}

// setRepoURLs fills the hypermedia templates GitHub puts on every
// repository object; they make up much of a real payload's size.
func setRepoURLs(r *github.Repository, api string) {
	r.ForksURL = ptr(api + "/forks")
	r.KeysURL = ptr(api + "/keys{/key_id}")
	r.CollaboratorsURL = ptr(api + "/collaborators{/collaborator}")
	r.TeamsURL = ptr(api + "/teams")
	r.HooksURL = ptr(api + "/hooks")
	r.IssueEventsURL = ptr(api + "/issues/events{/number}")
	r.EventsURL = ptr(api + "/events")
	r.AssigneesURL = ptr(api + "/assignees{/user}")
	r.BranchesURL = ptr(api + "/branches{/branch}")
	r.TagsURL = ptr(api + "/tags")
	r.BlobsURL = ptr(api + "/git/blobs{/sha}")
	r.GitTagsURL = ptr(api + "/git/tags{/sha}")
	r.GitRefsURL = ptr(api + "/git/refs{/sha}")
	r.TreesURL = ptr(api + "/git/trees{/sha}")
	r.StatusesURL = ptr(api + "/statuses/{sha}")
	r.LanguagesURL = ptr(api + "/languages")
	r.StargazersURL = ptr(api + "/stargazers")
	r.ContributorsURL = ptr(api + "/contributors")
	r.SubscribersURL = ptr(api + "/subscribers")
	r.SubscriptionURL = ptr(api + "/subscription")
	r.CommitsURL = ptr(api + "/commits{/sha}")
	r.GitCommitsURL = ptr(api + "/git/commits{/sha}")
	r.CommentsURL = ptr(api + "/comments{/number}")
	r.IssueCommentURL = ptr(api + "/issues/comments{/number}")
	r.ContentsURL = ptr(api + "/contents/{+path}")
	r.CompareURL = ptr(api + "/compare/{base}...{head}")
	r.MergesURL = ptr(api + "/merges")
	r.ArchiveURL = ptr(api + "/{archive_format}{/ref}")
	r.DownloadsURL = ptr(api + "/downloads")
	r.IssuesURL = ptr(api + "/issues{/number}")
	r.PullsURL = ptr(api + "/pulls{/number}")
	r.MilestonesURL = ptr(api + "/milestones{/number}")
	r.NotificationsURL = ptr(api + "/notifications{?since,all,participating}")
	r.LabelsURL = ptr(api + "/labels{/name}")
	r.ReleasesURL = ptr(api + "/releases{/id}")
	r.DeploymentsURL = ptr(api + "/deployments")
}

// labelJSONLocked renders a label of rp, giving each name a stable id and
// colour.
func (s *Server) labelJSONLocked(rp *repo, name string) *github.Label {
	id, ok := rp.labelIDs[name]
	if !ok {
		id = s.newIDLocked()
		rp.labelIDs[name] = id
	}
	h := fnv.New32a()
	h.Write([]byte(name))
	return &github.Label{
		ID:          ptr(id),
		NodeID:      ptr(nodeID("LA", id)),
		URL:         ptr(s.url + "/repos/" + rp.fullName() + "/labels/" + name),
		Name:        ptr(name),
		Color:       ptr(fmt.Sprintf("%06x", h.Sum32()&0xffffff)),
		Description: ptr(""),
		Default:     ptr(false),
	}
}

// pullJSONLocked renders a pull request. full adds the fields GitHub only
// sends for a single pull (and in webhooks), not in lists.
func (s *Server) pullJSONLocked(rp *repo, p *pull, full bool) *github.PullRequest {
	api := s.url + "/repos/" + rp.fullName()
	self := fmt.Sprintf("%s/pulls/%d", api, p.number)
	issue := fmt.Sprintf("%s/issues/%d", api, p.number)
	html := fmt.Sprintf("%s/%s/pull/%d", s.url, rp.fullName(), p.number)
	statuses := api + "/statuses/" + p.headSHA
	labels := make([]*github.Label, 0, len(p.labels))
	for _, l := range p.labels {
		labels = append(labels, s.labelJSONLocked(rp, l))
	}
	pr := &github.PullRequest{
		URL:                ptr(self),
		ID:                 ptr(p.id),
		NodeID:             ptr(nodeID("PR", p.id)),
		HTMLURL:            ptr(html),
		DiffURL:            ptr(html + ".diff"),
		PatchURL:           ptr(html + ".patch"),
		IssueURL:           ptr(issue),
		Number:             ptr(p.number),
		State:              ptr(p.state),
		Locked:             ptr(false),
		Title:              ptr(p.title),
		User:               s.userLocked(p.author),
		Body:               ptr(p.body),
		CreatedAt:          stamp(p.created),
		UpdatedAt:          stamp(p.updated),
		Labels:             labels,
		Draft:              ptr(p.draft),
		CommitsURL:         ptr(self + "/commits"),
		ReviewCommentsURL:  ptr(self + "/comments"),
		ReviewCommentURL:   ptr(api + "/pulls/comments{/number}"),
		CommentsURL:        ptr(issue + "/comments"),
		StatusesURL:        ptr(statuses),
		Assignees:          []*github.User{},
		RequestedReviewers: []*github.User{},
		RequestedTeams:     []*github.Team{},
		//lint:ignore SA1019 the REST API still sends it; only Events API payloads drop it.
		AuthorAssociation: ptr(s.associationLocked(rp, p.author)),
		Head:              s.branchJSONLocked(p.headRepo, p.headRef, p.headSHA),
		Base:              s.branchJSONLocked(rp, p.baseRef, rp.branches[p.baseRef]),
		Links: &github.PRLinks{
			Self:           &github.PRLink{HRef: ptr(self)},
			HTML:           &github.PRLink{HRef: ptr(html)},
			Issue:          &github.PRLink{HRef: ptr(issue)},
			Comments:       &github.PRLink{HRef: ptr(issue + "/comments")},
			ReviewComments: &github.PRLink{HRef: ptr(self + "/comments")},
			ReviewComment:  &github.PRLink{HRef: ptr(api + "/pulls/comments{/number}")},
			Commits:        &github.PRLink{HRef: ptr(self + "/commits")},
			Statuses:       &github.PRLink{HRef: ptr(statuses)},
		},
	}
	if p.closed != nil {
		pr.ClosedAt = stamp(*p.closed)
	}
	if full {
		pr.Merged = ptr(false)
		pr.Mergeable = ptr(p.state == "open")
		pr.Rebaseable = ptr(p.state == "open")
		pr.MergeableState = ptr("clean")
		pr.Comments = ptr(0)
		pr.ReviewComments = ptr(0)
		pr.MaintainerCanModify = ptr(false)
		pr.Commits = ptr(p.commits)
		pr.Additions = ptr(p.additions)
		pr.Deletions = ptr(0)
		pr.ChangedFiles = ptr(p.changedFiles)
	}
	return pr
}

// branchJSONLocked renders one side of a pull request.
func (s *Server) branchJSONLocked(rp *repo, ref, sha string) *github.PullRequestBranch {
	return &github.PullRequestBranch{
		Label: ptr(rp.owner + ":" + ref),
		Ref:   ptr(ref),
		SHA:   ptr(sha),
		User:  s.userLocked(rp.owner),
		Repo:  s.repoJSONLocked(rp),
	}
}

// associationLocked is the author_association GitHub reports for login.
func (s *Server) associationLocked(rp *repo, login string) string {
	switch {
	case login == rp.owner:
		return "OWNER"
	case rp.perms[login] != "" && rp.perms[login] != "none":
		return "COLLABORATOR"
	default:
		return "CONTRIBUTOR"
	}
}
