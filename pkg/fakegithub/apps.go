package fakegithub

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v4"
	"github.com/google/go-github/v88/github"
)

// The App the server plays, and GitHub's rules for its credentials.
const (
	appSlug       = "yourci-fake"
	tokenLifetime = time.Hour
	// maxJWTLifetime is how far in the future GitHub accepts a JWT's
	// expiry (10 minutes), plus the clock drift it tolerates.
	maxJWTLifetime = 10*time.Minute + 30*time.Second
)

// installation is the App installed on one account.
type installation struct {
	id      int64
	account string
	repos   map[string]bool // repository names; nil means every repository of account
	created time.Time
}

// installToken is an installation access token.
type installToken struct {
	install *installation
	repos   map[string]bool // full names the token is narrowed to; nil = all of the installation's
	expires time.Time
}

// appKeys generates the App's RSA key on first use: New stays cheap for
// the many tests that never act as an App.
func (s *Server) appKeys() (*rsa.PrivateKey, []byte, error) {
	s.appOnce.Do(func() {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			s.appErr = fmt.Errorf("generating app key: %w", err)
			return
		}
		s.appKey = key
		s.appPEM = pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	})
	return s.appKey, s.appPEM, s.appErr
}

// AppID is the id of the GitHub App the server plays.
func (s *Server) AppID() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.appID
}

// AppPrivateKeyPEM is the App's private key in the PKCS#1 PEM form GitHub
// hands out; JWTs signed with it (RS256, iss = AppID) authenticate as the
// App. It panics only if the system's random source fails.
func (s *Server) AppPrivateKeyPEM() []byte {
	_, pemBytes, err := s.appKeys()
	if err != nil {
		panic(err)
	}
	return slices.Clone(pemBytes)
}

// Install installs the App on account, for the named repositories of that
// account or, with none named, for all of them (including ones created
// later), and returns the installation id. Webhook payloads of covered
// repositories then carry installation.id.
func (s *Server) Install(account string, repos ...string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	inst := &installation{id: s.newIDLocked(), account: account, created: time.Now().UTC().Truncate(time.Second)}
	if len(repos) > 0 {
		inst.repos = map[string]bool{}
		for _, r := range repos {
			inst.repos[r] = true
		}
	}
	s.installations[inst.id] = inst
	return inst.id
}

// installationCoversLocked reports whether inst may act on fullName.
func (s *Server) installationCoversLocked(inst *installation, fullName string) bool {
	owner, name, _ := strings.Cut(fullName, "/")
	return owner == inst.account && (inst.repos == nil || inst.repos[name])
}

// installationForLocked is the first installation covering fullName, or nil.
func (s *Server) installationForLocked(fullName string) *installation {
	var found *installation
	for _, inst := range s.installations {
		if s.installationCoversLocked(inst, fullName) && (found == nil || inst.id < found.id) {
			found = inst
		}
	}
	return found
}

// verifyAppJWT accepts a JWT signed RS256 with the App's key whose issuer is
// the App's id and whose expiry is at most ten minutes away, as GitHub does.
func (s *Server) verifyAppJWT(raw string) (*identity, *reply) {
	deny := func(msg string) (*identity, *reply) {
		rep := fail(http.StatusUnauthorized, msg, docApps)
		return nil, &rep
	}
	key, _, err := s.appKeys()
	if err != nil {
		return deny("A JSON web token could not be decoded")
	}
	var claims jwt.RegisteredClaims
	_, err = jwt.ParseWithClaims(raw, &claims, func(*jwt.Token) (any, error) {
		return &key.PublicKey, nil
	}, jwt.WithValidMethods([]string{"RS256"}))
	if err != nil {
		var verr *jwt.ValidationError
		if errors.As(err, &verr) && verr.Errors&jwt.ValidationErrorExpired != 0 {
			return deny("'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires")
		}
		return deny("A JSON web token could not be decoded")
	}
	appID := s.AppID()
	if claims.Issuer != strconv.FormatInt(appID, 10) {
		return deny("'Issuer' claim ('iss') must be an Integer")
	}
	if claims.ExpiresAt == nil || claims.ExpiresAt.After(time.Now().Add(maxJWTLifetime)) {
		return deny("'Expiration time' claim ('exp') is too far in the future")
	}
	return &identity{login: appSlug + "[bot]", bucket: "app:" + strconv.FormatInt(appID, 10), app: true}, nil
}

// installationJSONLocked renders an installation.
func (s *Server) installationJSONLocked(inst *installation) *github.Installation {
	selection := "all"
	if inst.repos != nil {
		selection = "selected"
	}
	idStr := strconv.FormatInt(inst.id, 10)
	account := s.userLocked(inst.account)
	return &github.Installation{
		ID:                  ptr(inst.id),
		NodeID:              ptr(nodeID("MDIz", inst.id)),
		AppID:               ptr(s.appID),
		AppSlug:             ptr(appSlug),
		TargetID:            account.ID,
		TargetType:          ptr("User"),
		Account:             account,
		AccessTokensURL:     ptr(s.url + "/app/installations/" + idStr + "/access_tokens"),
		RepositoriesURL:     ptr(s.url + "/installation/repositories"),
		HTMLURL:             ptr(s.url + "/settings/installations/" + idStr),
		RepositorySelection: ptr(selection),
		Permissions:         appPermissions(),
		Events:              []string{"pull_request"},
		CreatedAt:           stamp(inst.created),
		UpdatedAt:           stamp(inst.created),
	}
}

// appPermissions are the least permissions YourCI's App needs.
func appPermissions() *github.InstallationPermissions {
	return &github.InstallationPermissions{
		Checks:       ptr("write"),
		Contents:     ptr("read"),
		Issues:       ptr("read"),
		Metadata:     ptr("read"),
		PullRequests: ptr("write"),
		Statuses:     ptr("write"),
	}
}

// getApp serves GET /app.
func (s *Server) getApp(*http.Request, *identity) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now().UTC().Truncate(time.Second)
	return ok(&github.App{
		ID:                 ptr(s.appID),
		Slug:               ptr(appSlug),
		NodeID:             ptr(nodeID("A", s.appID)),
		Owner:              s.userLocked(BotLogin),
		Name:               ptr("YourCI (fake)"),
		Description:        ptr("GitHub App played by fakegithub"),
		ExternalURL:        ptr(s.url),
		HTMLURL:            ptr(s.url + "/apps/" + appSlug),
		CreatedAt:          stamp(now),
		UpdatedAt:          stamp(now),
		Permissions:        appPermissions(),
		Events:             []string{"pull_request"},
		InstallationsCount: ptr(len(s.installations)),
	})
}

// listInstallations serves GET /app/installations, oldest first.
func (s *Server) listInstallations(r *http.Request, _ *identity) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]int64, 0, len(s.installations))
	for id := range s.installations {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	page, rep := s.paginate(r, len(ids))
	if rep != nil {
		return *rep
	}
	out := make([]*github.Installation, 0, page.end-page.start)
	for _, id := range ids[page.start:page.end] {
		out = append(out, s.installationJSONLocked(s.installations[id]))
	}
	return reply{status: http.StatusOK, body: out, header: page.header}
}

// installationFromPathLocked finds the installation {id}.
func (s *Server) installationFromPathLocked(r *http.Request) *installation {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return nil
	}
	return s.installations[id]
}

// getInstallation serves GET /app/installations/{id}.
func (s *Server) getInstallation(r *http.Request, _ *identity) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	inst := s.installationFromPathLocked(r)
	if inst == nil {
		return notFound()
	}
	return ok(s.installationJSONLocked(inst))
}

// getRepoInstallation serves GET /repos/{owner}/{repo}/installation.
func (s *Server) getRepoInstallation(r *http.Request, _ *identity) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	full := r.PathValue("owner") + "/" + r.PathValue("repo")
	inst := s.installationForLocked(full)
	if s.repos[full] == nil || inst == nil {
		return notFound()
	}
	return ok(s.installationJSONLocked(inst))
}

// accessTokenRequest is the optional body of a token request.
type accessTokenRequest struct {
	Repositories  []string `json:"repositories"`
	RepositoryIDs []int64  `json:"repository_ids"`
}

// accessToken is GitHub's answer to a token request.
type accessToken struct {
	Token               string                          `json:"token"`
	ExpiresAt           github.Timestamp                `json:"expires_at"`
	Permissions         *github.InstallationPermissions `json:"permissions"`
	RepositorySelection string                          `json:"repository_selection"`
	Repositories        []*github.Repository            `json:"repositories,omitempty"`
}

// createAccessToken serves POST /app/installations/{id}/access_tokens: a
// token valid for one hour, narrowed to the repositories asked for.
func (s *Server) createAccessToken(r *http.Request, _ *identity) reply {
	var req accessTokenRequest
	if r.Body != nil {
		if err := decodeOptional(r.Body, &req); err != nil {
			return fail(http.StatusBadRequest, "Problems parsing JSON", docApps)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	inst := s.installationFromPathLocked(r)
	if inst == nil {
		return notFound()
	}
	tok := &installToken{install: inst, expires: time.Now().Add(tokenLifetime).UTC().Truncate(time.Second)}
	out := accessToken{Permissions: appPermissions(), RepositorySelection: "all"}
	if len(req.Repositories) > 0 || len(req.RepositoryIDs) > 0 {
		tok.repos = map[string]bool{}
		out.RepositorySelection = "selected"
		for _, want := range s.narrowedReposLocked(inst, req) {
			if want == nil {
				return invalid(docApps, fieldError{Resource: "Installation", Code: "invalid", Field: "repositories",
					Message: "There is at least one repository that does not exist or is not accessible to the parent installation."})
			}
			if !tok.repos[want.fullName()] {
				tok.repos[want.fullName()] = true
				out.Repositories = append(out.Repositories, s.repoJSONLocked(want))
			}
		}
	}
	out.Token = "ghs_" + randomToken(36)
	out.ExpiresAt = github.Timestamp{Time: tok.expires}
	s.instTokens[out.Token] = tok
	return reply{status: http.StatusCreated, body: out}
}

// narrowedReposLocked resolves the repositories a token request names, by
// name within the installation's account or by id; nil entries are ones
// that do not exist or that the installation does not cover.
func (s *Server) narrowedReposLocked(inst *installation, req accessTokenRequest) []*repo {
	var out []*repo
	for _, name := range req.Repositories {
		rp := s.repos[inst.account+"/"+name]
		if rp != nil && !s.installationCoversLocked(inst, rp.fullName()) {
			rp = nil
		}
		out = append(out, rp)
	}
	for _, id := range req.RepositoryIDs {
		var found *repo
		for _, rp := range s.repos {
			if rp.id == id && s.installationCoversLocked(inst, rp.fullName()) {
				found = rp
			}
		}
		out = append(out, found)
	}
	return out
}

// decodeOptional decodes a JSON body that may be empty.
func decodeOptional(body io.Reader, v any) error {
	data, err := io.ReadAll(io.LimitReader(body, 1<<20))
	if err != nil {
		return fmt.Errorf("reading body: %w", err)
	}
	if len(strings.TrimSpace(string(data))) == 0 || strings.TrimSpace(string(data)) == "null" {
		return nil
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decoding body: %w", err)
	}
	return nil
}

// installationRepos is GitHub's answer to GET /installation/repositories.
type installationRepos struct {
	TotalCount          int                  `json:"total_count"`
	RepositorySelection string               `json:"repository_selection"`
	Repositories        []*github.Repository `json:"repositories"`
}

// listInstallationRepos serves GET /installation/repositories: the
// repositories the calling installation token reaches, by name.
func (s *Server) listInstallationRepos(r *http.Request, who *identity) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	var names []string
	for full := range s.repos {
		if s.canAccessLocked(who, full) {
			names = append(names, full)
		}
	}
	slices.Sort(names)
	page, rep := s.paginate(r, len(names))
	if rep != nil {
		return *rep
	}
	out := installationRepos{TotalCount: len(names), RepositorySelection: "all", Repositories: []*github.Repository{}}
	if who.install.repos != nil || who.allowed != nil {
		out.RepositorySelection = "selected"
	}
	for _, full := range names[page.start:page.end] {
		out.Repositories = append(out.Repositories, s.repoJSONLocked(s.repos[full]))
	}
	return reply{status: http.StatusOK, body: out, header: page.header}
}
