// Package githubauth turns YourCI's GitHub configuration into authenticated
// clients: one shared client for a token or basic credentials, one client
// per installation for a GitHub App, the credentials git needs, and the list
// of secrets to mask. It is the only package that reads credentials.
package githubauth

import (
	"crypto/rsa"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"

	jwt "github.com/golang-jwt/jwt/v4"
)

// The environment variables ConfigFromEnv reads, named as in the seed.
const (
	EnvToken         = "GITHUB_ACCESS_TOKEN"
	EnvUsername      = "GITHUB_USERNAME"
	EnvPassword      = "GITHUB_PASSWORD"
	EnvAppID         = "GITHUB_APP_ID"
	EnvAppPrivateKey = "GITHUB_APP_PRIVATE_KEY_FILE"
	EnvAPIURL        = "GITHUB_API_URL"
)

// Defaults for an empty Config.APIURL and Config.Timeout.
const (
	DefaultAPIURL  = "https://api.github.com/"
	DefaultTimeout = 30 * time.Second
)

const (
	// gitTokenUsername is the user name GitHub expects beside a token when
	// git authenticates over HTTPS.
	gitTokenUsername  = "x-access-token"
	userAgent         = "yourci"
	enterpriseAPIPath = "/api/v3/"
)

// ErrNoCredentials is reported by RequireCredentials when no way to
// authenticate is configured.
var ErrNoCredentials = errors.New("no GitHub credentials: set " + EnvToken + ", " +
	EnvUsername + " and " + EnvPassword + ", or " + EnvAppID + " and " + EnvAppPrivateKey)

// Config says how YourCI authenticates to GitHub. At most one identity is
// used: a GitHub App (AppID and AppPrivateKeyFile), else a token, else a
// username and password (which must be a token on github.com, where account
// passwords are refused). Nothing at all means anonymous requests, enough for
// a process that never calls GitHub.
type Config struct {
	Token              string
	Username, Password string
	AppID              int64
	AppPrivateKeyFile  string
	// APIURL is the REST API's base, DefaultAPIURL when empty; for GitHub
	// Enterprise it is "https://host/api/v3/".
	APIURL string
	// Timeout bounds every HTTP request, DefaultTimeout when zero.
	Timeout time.Duration

	// badAppID keeps a GITHUB_APP_ID that is not a number for Validate.
	badAppID string
}

// ConfigFromEnv reads the GITHUB_* variables through getenv (os.Getenv in
// production), trimming surrounding white space. A value it cannot parse is
// kept for Validate to report, never silently dropped.
func ConfigFromEnv(getenv func(string) string) Config {
	get := func(name string) string { return strings.TrimSpace(getenv(name)) }
	c := Config{
		Token:             get(EnvToken),
		Username:          get(EnvUsername),
		Password:          get(EnvPassword),
		AppPrivateKeyFile: get(EnvAppPrivateKey),
		APIURL:            get(EnvAPIURL),
	}
	if v := get(EnvAppID); v != "" {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			c.badAppID = v
		}
		c.AppID = id
	}
	return c
}

// Method is the kind of identity a Config authenticates with.
type Method string

// The identities, in the order Config prefers them.
const (
	MethodApp       Method = "app"
	MethodToken     Method = "token"
	MethodBasic     Method = "basic"
	MethodAnonymous Method = "anonymous"
)

// Method returns the identity c authenticates with.
func (c Config) Method() Method {
	switch {
	case c.AppID != 0 || c.AppPrivateKeyFile != "" || c.badAppID != "":
		return MethodApp
	case c.Token != "":
		return MethodToken
	case c.Username != "" || c.Password != "":
		return MethodBasic
	}
	return MethodAnonymous
}

// Validate reports every problem of c at once (errors.Join), reading the
// App's private key to be sure it is usable. An empty Config is valid: a
// process that needs GitHub calls RequireCredentials instead.
func (c Config) Validate() error {
	_, problems := c.check()
	return errors.Join(problems...)
}

// RequireCredentials is Validate for a process that must reach GitHub: it
// also reports ErrNoCredentials when nothing is configured.
func (c Config) RequireCredentials() error {
	_, problems := c.check()
	if c.Method() == MethodAnonymous {
		problems = append(problems, ErrNoCredentials)
	}
	return errors.Join(problems...)
}

// check validates c and returns the App's parsed key, if any. Problems
// never quote a secret.
func (c Config) check() (*rsa.PrivateKey, []error) {
	var problems []error
	add := func(format string, args ...any) { problems = append(problems, fmt.Errorf(format, args...)) }
	if strings.IndexFunc(c.Token, unicode.IsSpace) >= 0 {
		add("%s contains white space", EnvToken)
	}
	if (c.Username == "") != (c.Password == "") {
		add("%s and %s must be set together", EnvUsername, EnvPassword)
	}
	if strings.Contains(c.Username, ":") {
		add("%s cannot contain ':' (basic auth separates the password with it)", EnvUsername)
	}
	key, appProblems := c.checkApp()
	problems = append(problems, appProblems...)
	if err := checkAPIURL(c.APIURL); err != nil {
		problems = append(problems, err)
	}
	if c.Timeout < 0 {
		add("GitHub timeout %v is negative", c.Timeout)
	}
	return key, problems
}

// checkApp validates the GitHub App settings and loads its key.
func (c Config) checkApp() (*rsa.PrivateKey, []error) {
	if c.Method() != MethodApp {
		return nil, nil
	}
	var problems []error
	add := func(format string, args ...any) { problems = append(problems, fmt.Errorf(format, args...)) }
	switch {
	case c.badAppID != "":
		add("%s %q is not a number", EnvAppID, c.badAppID)
	case c.AppID < 0:
		add("%s %d is negative", EnvAppID, c.AppID)
	case c.AppID == 0:
		add("%s is set but %s is not", EnvAppPrivateKey, EnvAppID)
	}
	if c.Token != "" || c.Username != "" || c.Password != "" {
		add("both a GitHub App and a token or username/password are configured; choose one identity")
	}
	if c.AppPrivateKeyFile == "" {
		add("%s is set but %s is not", EnvAppID, EnvAppPrivateKey)
		return nil, problems
	}
	pem, err := os.ReadFile(c.AppPrivateKeyFile)
	if err != nil {
		add("reading %s: %w", EnvAppPrivateKey, err)
		return nil, problems
	}
	key, err := jwt.ParseRSAPrivateKeyFromPEM(pem)
	if err != nil {
		add("%s %s holds no RSA private key in PEM form: %w", EnvAppPrivateKey, c.AppPrivateKeyFile, err)
		return nil, problems
	}
	return key, problems
}

// checkAPIURL accepts an absolute http(s) URL with no credentials, query or
// fragment, or the empty string (the default).
func checkAPIURL(raw string) error {
	if raw == "" {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		// Not quoted: a malformed URL may still hold a password.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return fmt.Errorf("%s is not a valid URL: %w", EnvAPIURL, err)
	}
	switch {
	case u.User != nil:
		return fmt.Errorf("%s must not carry credentials; use %s or the App settings", EnvAPIURL, EnvToken)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("%s %q must be an http or https URL", EnvAPIURL, raw)
	case u.Host == "":
		return fmt.Errorf("%s %q has no host", EnvAPIURL, raw)
	case u.RawQuery != "" || u.Fragment != "":
		return fmt.Errorf("%s %q must not have a query or fragment", EnvAPIURL, raw)
	}
	return nil
}

// apiBase is the API base URL with the trailing slash go-github requires.
func (c Config) apiBase() string {
	if c.APIURL == "" {
		return DefaultAPIURL
	}
	return strings.TrimRight(c.APIURL, "/") + "/"
}

// uploadBase is the upload API's base: GitHub's own beside api.github.com,
// "/api/uploads/" beside an Enterprise "/api/v3/", else the API base.
func uploadBase(apiBase string) string {
	switch {
	case apiBase == DefaultAPIURL:
		return "https://uploads.github.com/"
	case strings.HasSuffix(apiBase, enterpriseAPIPath):
		return strings.TrimSuffix(apiBase, enterpriseAPIPath) + "/api/uploads/"
	}
	return apiBase
}

// timeout is the per-request bound.
func (c Config) timeout() time.Duration {
	if c.Timeout == 0 {
		return DefaultTimeout
	}
	return c.Timeout
}
