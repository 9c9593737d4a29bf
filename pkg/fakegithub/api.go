package fakegithub

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/yourci/yourci/pkg/pause"
)

// Documentation links GitHub puts in error bodies; clients such as go-github
// classify some errors by them.
const (
	docRoot     = "https://docs.github.com/rest"
	docStatuses = "https://docs.github.com/rest/commits/statuses#create-a-commit-status"
	docApps     = "https://docs.github.com/rest/apps/apps"
	docPrimary  = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-primary-rate-limits"
	docAbuse    = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"
)

// Counts tallies the REST requests the server has answered since it started
// or since ResetCounts, so tests can assert how many calls a client spent.
type Counts struct {
	// Total is every REST request, answered or refused.
	Total int
	// Counted is the requests charged against a rate limit; 304 answers
	// and refused credentials are not, as on GitHub.
	Counted int
	// NotModified is the conditional requests answered 304.
	NotModified int
	// Injected is the requests answered by FailNext.
	Injected int
	// Writes is the REST requests that ask to change a repository (POST,
	// PATCH, PUT, DELETE under /repos/), answered or refused: what
	// GitHub's secondary limits count as content-creating. Installation
	// token requests are not among them.
	Writes int
	// Git is the git smart-HTTP requests (not part of Total).
	Git int
	// ByRoute counts REST requests by route, such as
	// "GET /repos/{owner}/{repo}/pulls"; unknown paths count as "unmatched".
	ByRoute map[string]int
}

// Requests returns a copy of the counters.
func (t *Traffic) Requests() Counts {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.counts
	c.ByRoute = make(map[string]int, len(t.counts.ByRoute))
	for k, v := range t.counts.ByRoute {
		c.ByRoute[k] = v
	}
	return c
}

// ResetCounts sets every counter back to zero. Rate-limit windows are not
// touched (see SetRateLimit).
func (t *Traffic) ResetCounts() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.counts = Counts{ByRoute: map[string]int{}}
}

// reply is what an API handler answers: a status, a value to encode as
// JSON (nil for no body) and extra headers.
type reply struct {
	status int
	body   any
	header http.Header
}

// errorBody is GitHub's error JSON.
type errorBody struct {
	Message          string       `json:"message"`
	Errors           []fieldError `json:"errors,omitempty"`
	DocumentationURL string       `json:"documentation_url"`
	Status           string       `json:"status"`
}

// fieldError is one entry of a 422's "errors" list.
type fieldError struct {
	Resource string `json:"resource"`
	Code     string `json:"code"`
	Field    string `json:"field"`
	Message  string `json:"message,omitempty"`
}

func ok(body any) reply { return reply{status: http.StatusOK, body: body} }

func fail(status int, message, doc string) reply {
	return reply{status: status, body: errorBody{Message: message, DocumentationURL: doc, Status: strconv.Itoa(status)}}
}

func notFound() reply { return fail(http.StatusNotFound, "Not Found", docRoot) }

// invalid is GitHub's 422 "Validation Failed" with one field error.
func invalid(doc string, fe fieldError) reply {
	r := fail(http.StatusUnprocessableEntity, "Validation Failed", doc)
	b := r.body.(errorBody)
	b.Errors = []fieldError{fe}
	r.body = b
	return r
}

// apiHandler answers one REST route for an authorised caller.
type apiHandler func(r *http.Request, who *identity) reply

// handle registers h for pattern behind the steps every GitHub REST call
// goes through: counting, injected failures, authentication, the primary
// rate limit, ETag / If-None-Match, and rate-limit headers on the answer.
func (s *Server) handle(mux *http.ServeMux, pattern string, kind authKind, h apiHandler) {
	route := pattern
	if pattern == "/" {
		route = "unmatched"
	}
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if pause.For(r.Context(), s.received(r, route)) != nil { // the client gave up
			return
		}

		who, authErr := s.authenticate(r)
		bucketKey := "anonymous"
		if who != nil {
			bucketKey = who.bucket
		}
		if f := s.takeFailure(r.Method, r.URL.Path); f != nil {
			s.write(w, r, bucketKey, f.reply(), false)
			return
		}
		if authErr != nil {
			s.write(w, r, bucketKey, *authErr, false)
			return
		}
		if rep := authorize(who, kind); rep != nil {
			s.write(w, r, bucketKey, *rep, false)
			return
		}
		if rep := s.checkRate(bucketKey); rep != nil && route != rateLimitRoute {
			s.write(w, r, bucketKey, *rep, false)
			return
		}
		s.write(w, r, bucketKey, h(r, who), route != rateLimitRoute)
	})
}

// rateLimitRoute is free, as on GitHub.
const rateLimitRoute = "GET /rate_limit"

// rate is one resource's limit in GET /rate_limit.
type rate struct {
	Limit     int    `json:"limit"`
	Used      int    `json:"used"`
	Remaining int    `json:"remaining"`
	Reset     int64  `json:"reset"`
	Resource  string `json:"resource"`
}

// getRateLimit serves GET /rate_limit for the caller's core window.
func (s *Server) getRateLimit(_ *http.Request, who *identity) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.bucketLocked(who.bucket)
	core := rate{Limit: b.limit, Used: b.used, Remaining: b.remaining(), Reset: b.reset.Unix(), Resource: "core"}
	return ok(map[string]any{"resources": map[string]rate{"core": core}, "rate": core})
}

// checkRate refuses a call when the caller's window is spent.
func (s *Server) checkRate(key string) *reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.bucketLocked(key)
	if b.remaining() > 0 {
		return nil
	}
	rep := fail(http.StatusForbidden, "API rate limit exceeded for "+key+".", docPrimary)
	return &rep
}

// write encodes rep, turning a repeated GET into 304 when its ETag matches
// If-None-Match, charges the caller's rate limit when chargeable (a 304 is
// free), and sets GitHub's headers.
func (s *Server) write(w http.ResponseWriter, r *http.Request, bucketKey string, rep reply, chargeable bool) {
	var body []byte
	if rep.body != nil {
		var err error
		body, err = json.Marshal(rep.body)
		if err != nil {
			s.logger().Error("encoding fake github response", "path", r.URL.Path, "err", err)
			rep = reply{status: http.StatusInternalServerError}
			body = []byte(`{"message":"Server Error","documentation_url":"` + docRoot + `","status":"500"}`)
		}
	}
	h := w.Header()
	status := rep.status
	if r.Method == http.MethodGet && status == http.StatusOK {
		sum := sha256.Sum256(body)
		etag := `W/"` + hex.EncodeToString(sum[:16]) + `"`
		h.Set("ETag", etag)
		if etagMatches(r.Header.Get("If-None-Match"), etag) {
			status, body, chargeable = http.StatusNotModified, nil, false
		}
	}
	s.answered(status == http.StatusNotModified, chargeable)
	s.mu.Lock()
	b := s.bucketLocked(bucketKey)
	if chargeable {
		b.used++
	}
	setRateHeaders(h, b)
	s.mu.Unlock()
	for k, v := range rep.header {
		h[k] = v
	}
	h.Set("X-GitHub-Api-Version-Selected", "2022-11-28")
	h.Set("X-GitHub-Media-Type", "github.v3; format=json")
	h.Set("X-GitHub-Request-Id", randomToken(8))
	h.Add("Vary", "Accept, Authorization, Cookie, X-GitHub-OTP")
	if body != nil {
		h.Set("Content-Type", "application/json; charset=utf-8")
		h.Set("Content-Length", strconv.Itoa(len(body)))
	}
	w.WriteHeader(status)
	if body != nil && r.Method != http.MethodHead {
		if _, err := w.Write(body); err != nil {
			s.logger().Debug("writing response", "path", r.URL.Path, "err", err)
		}
	}
}

// etagMatches implements If-None-Match's weak comparison.
func etagMatches(header, etag string) bool {
	if header == "" {
		return false
	}
	opaque := strings.TrimPrefix(etag, "W/")
	for _, candidate := range strings.Split(header, ",") {
		c := strings.TrimSpace(candidate)
		if c == "*" || strings.TrimPrefix(c, "W/") == opaque {
			return true
		}
	}
	return false
}

// decodeBody reads a JSON request body of at most 1 MiB into v.
func decodeBody(r *http.Request, v any) *reply {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20))
	if err := dec.Decode(v); err != nil {
		rep := fail(http.StatusBadRequest, "Problems parsing JSON", docRoot)
		return &rep
	}
	return nil
}
