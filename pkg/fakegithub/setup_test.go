package fakegithub_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/go-github/v88/github"

	"github.com/yourci/yourci/pkg/fakegithub"
)

// newServer starts a server for one test.
func newServer(t *testing.T) *fakegithub.Server {
	t.Helper()
	s, err := fakegithub.New(t.TempDir())
	if err != nil {
		t.Fatalf("starting fake github: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// newClient is go-github pointed at the server's root with its token.
func newClient(t *testing.T, s *fakegithub.Server, opts ...github.ClientOptionsFunc) *github.Client {
	t.Helper()
	base := s.URL() + "/"
	all := append([]github.ClientOptionsFunc{
		github.WithURLs(&base, &base),
		github.WithAuthToken(s.Token()),
		github.WithTimeout(30 * time.Second),
	}, opts...)
	c, err := github.NewClient(all...)
	if err != nil {
		t.Fatalf("creating client: %v", err)
	}
	return c
}

// transportClient is go-github pointed at the server's root, authenticating
// only through rt (such as a ghinstallation transport).
func transportClient(t *testing.T, s *fakegithub.Server, rt http.RoundTripper) *github.Client {
	t.Helper()
	base := s.URL() + "/"
	c, err := github.NewClient(github.WithURLs(&base, &base), github.WithHTTPClient(&http.Client{Transport: rt, Timeout: 30 * time.Second}))
	if err != nil {
		t.Fatalf("creating client: %v", err)
	}
	return c
}

// testContext bounds a test's calls.
func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// seed creates acme/widgets with a first commit on main and returns its sha.
func seed(t *testing.T, s *fakegithub.Server) string {
	t.Helper()
	if _, err := s.CreateRepo("acme", "widgets"); err != nil {
		t.Fatal(err)
	}
	sha, err := s.Commit("acme", "widgets", "main", map[string]string{
		"README.md": "# widgets\n",
		"test.sh":   "#!/bin/bash\necho \"$ENV_VAR_1\"\n",
	}, "Initial commit")
	if err != nil {
		t.Fatal(err)
	}
	return sha
}

// openPull commits files on branch and opens a pull request from it.
func openPull(t *testing.T, s *fakegithub.Server, branch string, spec fakegithub.PullSpec) *github.PullRequest {
	t.Helper()
	if _, err := s.Commit("acme", "widgets", branch, map[string]string{branch + ".txt": branch + "\n"}, "Work on "+branch); err != nil {
		t.Fatal(err)
	}
	spec.Head = branch
	pr, err := s.OpenPull("acme", "widgets", spec)
	if err != nil {
		t.Fatal(err)
	}
	return pr
}

// basicHeader is an Authorization header for HTTP basic auth.
func basicHeader(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// git runs real git isolated from the machine's configuration, with
// authorization (an Authorization header value, or "") passed on the
// command line rather than written to disk.
func git(t *testing.T, dir, authorization string, args ...string) (string, error) {
	t.Helper()
	full := []string{"-c", "credential.helper="}
	if authorization != "" {
		full = append(full, "-c", "http.extraHeader=Authorization: "+authorization)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", append(full, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL="+os.DevNull,
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t")
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// get performs a raw GET with the given headers.
func get(t *testing.T, url string, header http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(testContext(t), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}
