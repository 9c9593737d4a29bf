package githubauth

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"github.com/google/go-github/v88/github"
)

// ErrNoInstallation is returned when a GitHub App is configured and the
// caller names no installation: an App can only act through one, and the id
// comes from the webhook event or the installations list.
var ErrNoInstallation = errors.New("a GitHub App is configured but no installation id was given")

// ErrNotApp is returned by App when no GitHub App is configured.
var ErrNotApp = errors.New("no GitHub App is configured")

// Clients hands out GitHub clients for one Config. It is safe for concurrent
// use; clients it returns are shared and safe for concurrent use too. Every
// HTTP request they make is bounded by the Config's timeout.
type Clients struct {
	method    Method
	base      string // API base URL, with a trailing slash
	timeout   time.Duration
	transport http.RoundTripper // unauthenticated, shared for connection reuse
	token     string
	username  string
	password  string

	shared *github.Client // token, basic and anonymous

	appID int64
	key   *rsa.PrivateKey
	app   *github.Client

	mu       sync.Mutex
	installs map[int64]*installation
	issued   map[string]time.Time // installation tokens given to git (and when), for Secrets
}

// installation is a GitHub App installation's client and the transport
// that holds its token.
type installation struct {
	client *github.Client
	tokens *ghinstallation.Transport
}

// New validates c and returns its Clients. No request is made: bad
// credentials show on the first call.
func New(c Config) (*Clients, error) {
	key, problems := c.check()
	if err := errors.Join(problems...); err != nil {
		return nil, fmt.Errorf("github configuration: %w", err)
	}
	cl := &Clients{
		method:    c.Method(),
		base:      c.apiBase(),
		timeout:   c.timeout(),
		transport: http.DefaultTransport.(*http.Transport).Clone(),
		token:     c.Token,
		username:  c.Username,
		password:  c.Password,
		appID:     c.AppID,
		key:       key,
		installs:  make(map[int64]*installation),
		issued:    make(map[string]time.Time),
	}
	var err error
	switch cl.method {
	case MethodApp:
		cl.app, err = cl.newClient(cl.appsTransport())
	case MethodToken:
		cl.shared, err = cl.newClient(cl.transport, github.WithAuthToken(c.Token))
	case MethodBasic:
		cl.shared, err = cl.newClient(&github.BasicAuthTransport{Username: c.Username, Password: c.Password, Transport: cl.transport})
	default:
		cl.shared, err = cl.newClient(cl.transport)
	}
	if err != nil {
		return nil, fmt.Errorf("building GitHub client for %s: %w", cl.base, err)
	}
	return cl, nil
}

// Method returns the identity the clients authenticate with.
func (c *Clients) Method() Method { return c.method }

// ForInstallation returns the client to act on a repository. With a token,
// basic credentials or none, it is one shared client and installation is
// ignored. With a GitHub App it is the installation's client, built once and
// cached, which fetches and renews the installation token by itself;
// installation 0 is then ErrNoInstallation.
func (c *Clients) ForInstallation(ctx context.Context, installation int64) (*github.Client, error) {
	if c.method != MethodApp {
		return c.shared, nil
	}
	inst, err := c.installation(installation)
	if err != nil {
		return nil, err
	}
	return inst.client, nil
}

// GitCredentials returns the user name and password git presents over HTTPS
// for a repository of installation: "x-access-token" and the token for a
// token or a GitHub App (a fresh installation token, fetched if the cached
// one is near expiry), the configured pair for basic credentials, and two
// empty strings when anonymous. The caller must hand them to git without
// writing them to disk, and mask them.
func (c *Clients) GitCredentials(ctx context.Context, installation int64) (username, password string, err error) {
	switch c.method {
	case MethodToken:
		return gitTokenUsername, c.token, nil
	case MethodBasic:
		return c.username, c.password, nil
	case MethodAnonymous:
		return "", "", nil
	}
	inst, err := c.installation(installation)
	if err != nil {
		return "", "", err
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	token, err := inst.tokens.Token(ctx)
	if err != nil {
		return "", "", fmt.Errorf("getting a token for installation %d: %w", installation, err)
	}
	c.mu.Lock()
	now := time.Now()
	if _, ok := c.issued[token]; !ok {
		c.issued[token] = now
	}
	for t, at := range c.issued {
		if now.Sub(at) > tokenMemory {
			delete(c.issued, t) // expired long ago: nothing can still print it
		}
	}
	c.mu.Unlock()
	return gitTokenUsername, token, nil
}

// tokenMemory is how long an installation token is kept for masking after
// it was first handed out: twice its one-hour life.
const tokenMemory = 2 * time.Hour

// App returns the client authenticated as the GitHub App itself (a JWT), for
// the few calls made as the App, such as listing its installations; it is
// ErrNotApp when no App is configured.
func (c *Clients) App() (*github.Client, error) {
	if c.method != MethodApp {
		return nil, ErrNotApp
	}
	return c.app, nil
}

// Secrets returns every credential value these clients know, for masking in
// logs and statuses: the token, the password, and each installation token
// GitCredentials has handed out so far. Ask again after new GitCredentials
// calls; the App's private key never leaves this package.
func (c *Clients) Secrets() []string {
	var secrets []string
	for _, s := range []string{c.token, c.password} {
		if s != "" {
			secrets = append(secrets, s)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for token := range c.issued {
		secrets = append(secrets, token)
	}
	slices.Sort(secrets)
	return secrets
}

// installation returns the cached client of an App installation, building
// it on first use.
func (c *Clients) installation(id int64) (*installation, error) {
	if id == 0 {
		return nil, fmt.Errorf("GitHub App %d: %w", c.appID, ErrNoInstallation)
	}
	if id < 0 {
		return nil, fmt.Errorf("GitHub App %d: installation id %d is negative", c.appID, id)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if inst, ok := c.installs[id]; ok {
		return inst, nil
	}
	// Each installation gets its own AppsTransport: ghinstallation writes to
	// the one it refreshes through, so sharing it would race.
	tokens := ghinstallation.NewFromAppsTransport(c.appsTransport(), id)
	tokens.BaseURL = c.appsBaseURL()
	tokens.Client = &http.Client{Transport: c.transport, Timeout: c.timeout}
	client, err := c.newClient(tokens)
	if err != nil {
		return nil, fmt.Errorf("building client for installation %d: %w", id, err)
	}
	inst := &installation{client: client, tokens: tokens}
	c.installs[id] = inst
	return inst, nil
}

// appsTransport signs requests as the App with a short-lived JWT.
func (c *Clients) appsTransport() *ghinstallation.AppsTransport {
	atr := ghinstallation.NewAppsTransportFromPrivateKey(c.transport, c.appID, c.key)
	atr.BaseURL = c.appsBaseURL()
	atr.Client = &http.Client{Transport: c.transport, Timeout: c.timeout}
	return atr
}

// appsBaseURL is the API base as ghinstallation expects it: no trailing
// slash.
func (c *Clients) appsBaseURL() string {
	return strings.TrimRight(c.base, "/")
}

// newClient builds a go-github client on rt for the configured API.
func (c *Clients) newClient(rt http.RoundTripper, opts ...github.ClientOptionsFunc) (*github.Client, error) {
	upload := uploadBase(c.base)
	all := []github.ClientOptionsFunc{
		github.WithHTTPClient(&http.Client{Transport: rt, Timeout: c.timeout}),
		github.WithURLs(&c.base, &upload),
		github.WithUserAgent(userAgent),
	}
	return github.NewClient(append(all, opts...)...)
}
