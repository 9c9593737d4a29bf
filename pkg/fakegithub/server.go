// Package fakegithub is an in-process stand-in for GitHub: an HTTP server that
// answers the REST calls YourCI makes (repositories, pull requests, commit
// statuses, check runs, collaborator permissions, labels and who added them,
// issue comments and their reactions, GitHub App installation tokens)
// with GitHub's JSON shapes, serves real bare git repositories over smart
// HTTP, and sends webhooks signed and shaped like GitHub's.
//
// It is not a mock of Go interfaces: clients talk to it over HTTP exactly as
// they talk to GitHub, so go-github, ghinstallation and git itself are
// exercised for real. Tests and the demo drive it through the scenario
// methods (CreateRepo, Commit, OpenPull, PushPull, ...), which run real git
// on bare repositories under the directory given to New.
//
// All methods of Server are safe for concurrent use.
package fakegithub

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// BotLogin is the user that owns the personal token and the basic-auth
// credentials the server accepts; statuses created with them name it as
// their creator.
const BotLogin = "yourci-bot"

// enterprisePrefix is where GitHub Enterprise serves its REST API; the server
// answers under it as well as at the root so that go-github's
// WithEnterpriseURLs and a plain BaseURL both work.
const enterprisePrefix = "/api/v3"

// Server is a running GitHub stand-in listening on 127.0.0.1. Create it with
// New and stop it with Close.
//
// Why it has some 150 methods: it is one GitHub. One method per REST
// endpoint it stands in for (routes), one per scenario step or inspection
// a test drives it with (CreateRepo, OpenPull, Statuses, WaitCheckRuns,
// ...), and the helpers that read and render its one state under mu; the
// repositories, pulls, statuses, check runs and comments must agree with
// each other as GitHub's do, so they are not split into types that would
// each need the others. They are split by file, one per API area, as
// go-github's services are; what is not GitHub's data, the traffic's
// counts, delays and injected failures, is its own type (Traffic).
type Server struct {
	dir    string
	gitBin string
	url    string
	http   *http.Server
	served chan struct{}
	api    *http.ServeMux
	git    http.Handler
	log    *slog.Logger

	// gitMu serialises every scenario operation that writes to a bare
	// repository, so refs and the in-memory view never disagree.
	gitMu sync.Mutex

	appOnce sync.Once
	appKey  *rsa.PrivateKey
	appPEM  []byte
	appErr  error

	mu            sync.Mutex
	token         string
	username      string
	password      string
	appID         int64
	nextID        int64
	users         map[string]int64
	repos         map[string]*repo
	installations map[int64]*installation
	instTokens    map[string]*installToken
	buckets       map[string]*bucket
	rateLimit     int
	hooks         []*hook
	deliveries    []Delivery
	checkRuns     []*checkRun
	checkHistory  []checkRun // every write's result, oldest first
	checkSuites   map[string]int64
	// statusChanged is closed and replaced at every status or check run
	// write.
	statusChanged chan struct{}
	// issues holds issue comments and their reactions (comments.go).
	issues *issueStore
	// Traffic counts and logs the requests, delays them and answers
	// some with injected failures (traffic.go).
	*Traffic
}

// New starts a server on 127.0.0.1 with a free port. Bare repositories are
// kept under dir, which the caller owns (New creates it if needed; Close does
// not remove it). The accepted personal token is random; see Token.
func New(dir string) (*Server, error) {
	gitBin, err := exec.LookPath("git")
	if err != nil {
		return nil, fmt.Errorf("finding git: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "git"), 0o755); err != nil {
		return nil, fmt.Errorf("creating repository root: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listening: %w", err)
	}
	s := &Server{
		dir:           dir,
		gitBin:        gitBin,
		url:           "http://" + ln.Addr().String(),
		served:        make(chan struct{}),
		log:           slog.New(slog.DiscardHandler),
		token:         "ghp_" + randomToken(36),
		username:      BotLogin,
		password:      randomToken(20),
		appID:         int64(100000 + randomInt(900000)),
		nextID:        1000,
		users:         map[string]int64{},
		repos:         map[string]*repo{},
		installations: map[int64]*installation{},
		instTokens:    map[string]*installToken{},
		buckets:       map[string]*bucket{},
		rateLimit:     defaultRateLimit,
		Traffic:       newTraffic(),
		statusChanged: make(chan struct{}),
		checkSuites:   map[string]int64{},
	}
	s.api = s.routes()
	s.git = s.gitHandler()
	s.http = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() {
		defer close(s.served)
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.logger().Error("fake github stopped serving", "err", err)
		}
	}()
	return s, nil
}

// Close stops the server at once, closing open connections, and waits for it
// to stop serving. It is safe to call more than once.
func (s *Server) Close() {
	if err := s.http.Close(); err != nil {
		s.logger().Debug("closing fake github", "err", err)
	}
	<-s.served
}

// URL is the server's base URL without a trailing slash, such as
// "http://127.0.0.1:41234". The REST API is served both at its root (set
// go-github's BaseURL to URL()+"/") and under /api/v3 (go-github's
// WithEnterpriseURLs(URL(), URL())); ghinstallation takes URL() as BaseURL.
func (s *Server) URL() string { return s.url }

// SetLogger sends the server's own diagnostics (git http-backend errors,
// webhook delivery failures) to l. By default they are discarded.
func (s *Server) SetLogger(l *slog.Logger) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = l
}

// Token is the personal access token the server accepts for BotLogin, as
// "Authorization: token X" or "Bearer X" on the API and as the basic-auth
// password (any user name) on git.
func (s *Server) Token() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.token
}

// SetToken replaces the accepted personal token.
func (s *Server) SetToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.token = token
}

// BasicAuth is the user name and password the server accepts as HTTP basic
// authentication on the API and on git, as older GitHub Enterprise servers do.
func (s *Server) BasicAuth() (username, password string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.username, s.password
}

// SetBasicAuth replaces the accepted user name and password. An empty
// password turns basic authentication with a password off; tokens sent as
// basic-auth passwords keep working, as on GitHub.
func (s *Server) SetBasicAuth(username, password string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.username, s.password = username, password
}

func (s *Server) logger() *slog.Logger {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log
}

// ServeHTTP routes git smart-HTTP paths (/{owner}/{repo}.git/...) to git
// http-backend and everything else to the REST API, at the root or under
// /api/v3.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, _, ok := splitGitPath(r.URL.Path); ok {
		s.git.ServeHTTP(w, r)
		return
	}
	if rest, ok := strings.CutPrefix(r.URL.Path, enterprisePrefix); ok && (rest == "" || rest[0] == '/') {
		r2 := r.Clone(r.Context())
		r2.URL.Path = rest
		r2.URL.RawPath = ""
		if r2.URL.Path == "" {
			r2.URL.Path = "/"
		}
		r = r2
	}
	s.api.ServeHTTP(w, r)
}

// routes is the REST API: the calls YourCI makes, with GitHub's paths.
func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	repo := "/repos/{owner}/{repo}"
	s.handle(mux, "GET "+repo, authUser, s.getRepo)
	s.handle(mux, "GET "+repo+"/pulls", authUser, s.listPulls)
	s.handle(mux, "GET "+repo+"/pulls/{number}", authUser, s.getPull)
	s.handle(mux, "GET "+repo+"/issues/{number}/labels", authUser, s.listLabels)
	s.handle(mux, "GET "+repo+"/issues/{number}/events", authUser, s.listIssueEvents)
	s.handle(mux, "GET "+repo+"/collaborators/{user}/permission", authUser, s.getPermission)
	s.handle(mux, "POST "+repo+"/statuses/{sha}", authUser, s.createStatus)
	s.handle(mux, "GET "+repo+"/commits/{ref}/statuses", authUser, s.listStatuses)
	s.handle(mux, "GET "+repo+"/commits/{ref}/status", authUser, s.combinedStatus)
	s.handle(mux, "POST "+repo+"/issues/{number}/comments", authUser, s.createComment)
	s.handle(mux, "GET "+repo+"/issues/{number}/comments", authUser, s.listComments)
	s.handle(mux, "POST "+repo+"/issues/comments/{id}/reactions", authUser, s.createReaction)
	s.handle(mux, "POST "+repo+"/check-runs", authUser, s.createCheckRun)
	s.handle(mux, "PATCH "+repo+"/check-runs/{id}", authUser, s.updateCheckRun)
	s.handle(mux, "GET "+repo+"/check-runs/{id}", authUser, s.getCheckRun)
	s.handle(mux, "GET "+repo+"/commits/{ref}/check-runs", authUser, s.listCheckRuns)
	s.handle(mux, "GET "+repo+"/installation", authApp, s.getRepoInstallation)
	s.handle(mux, "GET /app", authApp, s.getApp)
	s.handle(mux, "GET /app/installations", authApp, s.listInstallations)
	s.handle(mux, "GET /app/installations/{id}", authApp, s.getInstallation)
	s.handle(mux, "POST /app/installations/{id}/access_tokens", authApp, s.createAccessToken)
	s.handle(mux, "GET /installation/repositories", authInstallation, s.listInstallationRepos)
	s.handle(mux, "GET /rate_limit", authAnyone, s.getRateLimit)
	s.handle(mux, "/", authAnyone, func(*http.Request, *identity) reply { return notFound() })
	return mux
}

// newID hands out ids for users, repositories, pulls, statuses, labels and
// hooks: unique across the server, as GitHub's are.
func (s *Server) newIDLocked() int64 {
	s.nextID++
	return s.nextID
}

// userIDLocked gives each login a stable id.
func (s *Server) userIDLocked(login string) int64 {
	if id, ok := s.users[login]; ok {
		return id
	}
	id := s.newIDLocked()
	s.users[login] = id
	return id
}

// withTimeout bounds a scenario operation that has no caller context.
func withTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}
