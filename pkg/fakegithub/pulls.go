package fakegithub

import (
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-github/v88/github"
)

// pull is one pull request of a repository.
type pull struct {
	id           int64
	number       int
	state        string // open or closed
	title, body  string
	author       string
	draft        bool
	headRepo     *repo // the base repository itself, or a fork
	headRef      string
	headSHA      string
	prevHeadSHA  string // head before the last push, for synchronize's "before"
	baseRef      string
	labels       []string
	events       []issueEvent
	created      time.Time
	updated      time.Time
	closed       *time.Time
	commits      int
	additions    int
	changedFiles int
}

// pullForLocked finds the pull request {number} of the request's repository.
func (s *Server) pullForLocked(r *http.Request, who *identity) (*repo, *pull, *reply) {
	rp, rep := s.repoForLocked(r, who)
	if rep != nil {
		return nil, nil, rep
	}
	n, err := strconv.Atoi(r.PathValue("number"))
	if err != nil || n < 1 || n > len(rp.pulls) {
		rep := notFound()
		return nil, nil, &rep
	}
	return rp, rp.pulls[n-1], nil
}

// listPulls serves GET /repos/{owner}/{repo}/pulls with GitHub's filters
// (state, head, base), sorting (sort, direction) and pagination.
func (s *Server) listPulls(r *http.Request, who *identity) reply {
	q := r.URL.Query()
	state := q.Get("state")
	if state == "" {
		state = "open"
	}
	if state != "open" && state != "closed" && state != "all" {
		return invalid(docRoot, fieldError{Resource: "PullRequest", Code: "invalid", Field: "state"})
	}
	sortBy, direction := q.Get("sort"), q.Get("direction")
	if sortBy == "" {
		sortBy = "created"
	}
	if direction == "" {
		direction = "desc"
		if sortBy != "created" && sortBy != "updated" {
			direction = "asc"
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rp, rep := s.repoForLocked(r, who)
	if rep != nil {
		return *rep
	}
	var selected []*pull
	for _, p := range rp.pulls {
		if (state == "all" || p.state == state) && matchesHeadBase(p, q.Get("head"), q.Get("base")) {
			selected = append(selected, p)
		}
	}
	slices.SortStableFunc(selected, func(a, b *pull) int {
		c := a.number - b.number
		if sortBy == "updated" {
			c = cmp.Or(a.updated.Compare(b.updated), c)
		}
		if direction == "desc" {
			return -c
		}
		return c
	})
	page, rep := s.paginate(r, len(selected))
	if rep != nil {
		return *rep
	}
	out := make([]*github.PullRequest, 0, page.end-page.start)
	for _, p := range selected[page.start:page.end] {
		out = append(out, s.pullJSONLocked(rp, p, false))
	}
	return reply{status: http.StatusOK, body: out, header: page.header}
}

// matchesHeadBase applies the list filters head ("user:ref") and base ("ref").
func matchesHeadBase(p *pull, head, base string) bool {
	if base != "" && p.baseRef != base {
		return false
	}
	if head == "" {
		return true
	}
	user, ref, found := strings.Cut(head, ":")
	if !found {
		return p.headRepo.owner == user
	}
	return p.headRepo.owner == user && p.headRef == ref
}

// getPull serves GET /repos/{owner}/{repo}/pulls/{number}.
func (s *Server) getPull(r *http.Request, who *identity) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	rp, p, rep := s.pullForLocked(r, who)
	if rep != nil {
		return *rep
	}
	body, err := pullWire(s.pullJSONLocked(rp, p, true))
	if err != nil {
		return fail(http.StatusInternalServerError, "Server Error", docRoot)
	}
	return ok(body)
}

// listLabels serves GET /repos/{owner}/{repo}/issues/{number}/labels.
func (s *Server) listLabels(r *http.Request, who *identity) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	rp, p, rep := s.pullForLocked(r, who)
	if rep != nil {
		return *rep
	}
	page, rep := s.paginate(r, len(p.labels))
	if rep != nil {
		return *rep
	}
	out := make([]*github.Label, 0, page.end-page.start)
	for _, l := range p.labels[page.start:page.end] {
		out = append(out, s.labelJSONLocked(rp, l))
	}
	return reply{status: http.StatusOK, body: out, header: page.header}
}

// page is the slice of a list one request asks for.
type page struct {
	start, end int
	header     http.Header // Link, when there is more than one page
}

// paginate reads per_page (default 30, at most 100) and page (default 1)
// and builds GitHub's Link header for a list of total items.
func (s *Server) paginate(r *http.Request, total int) (page, *reply) {
	q := r.URL.Query()
	perPage, num := 30, 1
	if v := q.Get("per_page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			rep := fail(http.StatusBadRequest, "per_page must be a positive integer", docRoot)
			return page{}, &rep
		}
		perPage = min(n, 100)
	}
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			rep := fail(http.StatusBadRequest, "page must be a positive integer", docRoot)
			return page{}, &rep
		}
		num = n
	}
	last := max((total+perPage-1)/perPage, 1)
	p := page{start: min((num-1)*perPage, total), end: min(num*perPage, total)}
	link := func(n int, rel string) string {
		u := url.URL{Path: r.URL.Path}
		v := r.URL.Query()
		v.Set("per_page", strconv.Itoa(perPage))
		v.Set("page", strconv.Itoa(n))
		u.RawQuery = v.Encode()
		return fmt.Sprintf("<%s%s>; rel=%q", s.url, u.String(), rel)
	}
	var links []string
	if num > 1 {
		links = append(links, link(min(num-1, last), "prev"))
	}
	if num < last {
		links = append(links, link(num+1, "next"), link(last, "last"))
	}
	if num > 1 {
		links = append(links, link(1, "first"))
	}
	if len(links) > 0 {
		p.header = http.Header{"Link": {strings.Join(links, ", ")}}
	}
	return p, nil
}
