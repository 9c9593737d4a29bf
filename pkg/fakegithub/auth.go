package fakegithub

import (
	"crypto/rand"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// defaultRateLimit is GitHub's primary limit for a token: 5,000 requests an
// hour. Unauthenticated callers get 60.
const (
	defaultRateLimit   = 5000
	anonymousRateLimit = 60
	rateWindow         = time.Hour
)

// authKind says which credentials a route accepts.
type authKind int

const (
	authAnyone       authKind = iota // anonymous allowed
	authUser                         // personal token, basic auth or installation token
	authApp                          // the App's JWT only
	authInstallation                 // an installation token only
)

// identity is who a request acts as.
type identity struct {
	login   string // creator of statuses; "" when anonymous
	bucket  string // rate-limit bucket
	install *installation
	allowed map[string]bool // installation token narrowed to these repositories; nil = all of the installation's
	app     bool            // authenticated with the App's JWT
}

// canAccess reports whether the identity may read and write the repository
// fullName ("owner/name"): personal tokens and basic auth reach every
// repository, installation tokens only their installation's.
func (s *Server) canAccessLocked(who *identity, fullName string) bool {
	if who.install == nil {
		return who.login != "" && !who.app
	}
	if who.allowed != nil && !who.allowed[fullName] {
		return false
	}
	return s.installationCoversLocked(who.install, fullName)
}

// authenticate finds who the request acts as. A request without credentials
// is anonymous; credentials that match nothing are an error (401), as on
// GitHub.
func (s *Server) authenticate(r *http.Request) (*identity, *reply) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return &identity{bucket: "anonymous"}, nil
	}
	scheme, cred, _ := strings.Cut(h, " ")
	switch strings.ToLower(scheme) {
	case "token", "bearer":
		cred = strings.TrimSpace(cred)
		if strings.Count(cred, ".") == 2 {
			return s.verifyAppJWT(cred)
		}
		if who := s.tokenIdentity(cred); who != nil {
			return who, nil
		}
	case "basic":
		user, pass, ok := r.BasicAuth()
		if ok {
			if who := s.basicIdentity(user, pass); who != nil {
				return who, nil
			}
		}
	}
	rep := fail(http.StatusUnauthorized, "Bad credentials", docRoot)
	return nil, &rep
}

// basicIdentity accepts the configured user name and password, or a token
// in either field (git's x-access-token:TOKEN convention).
func (s *Server) basicIdentity(user, pass string) *identity {
	s.mu.Lock()
	match := s.password != "" && user == s.username && pass == s.password
	s.mu.Unlock()
	if match {
		return &identity{login: user, bucket: "user:" + user}
	}
	if who := s.tokenIdentity(pass); who != nil {
		return who
	}
	return s.tokenIdentity(user)
}

// tokenIdentity resolves a personal or installation token; nil if it is
// neither, or an installation token that has expired.
func (s *Server) tokenIdentity(tok string) *identity {
	if tok == "" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if tok == s.token {
		return &identity{login: BotLogin, bucket: "user:" + BotLogin}
	}
	it, ok := s.instTokens[tok]
	if !ok || time.Now().After(it.expires) {
		return nil
	}
	return &identity{
		login:   appSlug + "[bot]",
		bucket:  "installation:" + strconv.FormatInt(it.install.id, 10),
		install: it.install,
		allowed: it.repos,
	}
}

// authorize checks that who may call a route that needs kind.
func authorize(who *identity, kind authKind) *reply {
	var rep reply
	switch {
	case kind == authAnyone:
		return nil
	case who.login == "" && !who.app:
		rep = fail(http.StatusUnauthorized, "Requires authentication", docRoot)
	case kind == authApp && !who.app:
		rep = fail(http.StatusUnauthorized, "A JSON web token could not be decoded", docApps)
	case kind != authApp && who.app:
		rep = fail(http.StatusForbidden, "Resource not accessible by integration", docRoot)
	case kind == authInstallation && who.install == nil:
		rep = fail(http.StatusForbidden, "You must authenticate with an installation access token in order to list repositories for an installation.", docApps)
	default:
		return nil
	}
	return &rep
}

// bucket is one caller's primary rate-limit window.
type bucket struct {
	limit int
	used  int
	reset time.Time
}

func (b *bucket) remaining() int { return max(b.limit-b.used, 0) }

// bucketLocked returns the caller's window, opening a new one when the last
// has passed.
func (s *Server) bucketLocked(key string) *bucket {
	now := time.Now()
	b, ok := s.buckets[key]
	if !ok {
		limit := s.rateLimit
		if key == "anonymous" {
			limit = anonymousRateLimit
		}
		b = &bucket{limit: limit}
		s.buckets[key] = b
	}
	if !now.Before(b.reset) {
		b.used = 0
		b.reset = now.Add(rateWindow).Truncate(time.Second)
	}
	return b
}

// SetRateLimit sets every authenticated caller's hourly limit and starts a
// fresh window for everyone, so tests can run a client into GitHub's
// primary rate limit (403 with X-RateLimit-Remaining: 0) in a few calls.
func (s *Server) SetRateLimit(limit int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rateLimit = limit
	s.buckets = map[string]*bucket{}
}

// setRateHeaders writes GitHub's rate-limit headers for b.
func setRateHeaders(h http.Header, b *bucket) {
	h.Set("X-RateLimit-Limit", strconv.Itoa(b.limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(b.remaining()))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(b.reset.Unix(), 10))
	h.Set("X-RateLimit-Used", strconv.Itoa(b.used))
	h.Set("X-RateLimit-Resource", "core")
}

const tokenAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// randomToken returns n characters in GitHub's token alphabet.
func randomToken(n int) string {
	var b strings.Builder
	for range n {
		b.WriteByte(tokenAlphabet[randomInt(len(tokenAlphabet))])
	}
	return b.String()
}

// randomInt returns a uniform int in [0, n).
func randomInt(n int) int {
	v, err := rand.Int(rand.Reader, big.NewInt(int64(n)))
	if err != nil {
		// crypto/rand does not fail on supported platforms (Go 1.24+
		// crashes the program instead), so this is unreachable.
		panic(err)
	}
	return int(v.Int64())
}
