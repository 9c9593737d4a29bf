package artifacts

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// newGitServer serves the bare repositories under dir over git's smart HTTP
// protocol (git http-backend behind net/http/cgi), requiring basic auth with
// user and password. It counts the requests it refused.
func newGitServer(t *testing.T, dir, user, password string) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	gitPath, err := exec.LookPath("git")
	if err != nil {
		t.Fatal(err)
	}
	backend := &cgi.Handler{
		Path: gitPath,
		Args: []string{"http-backend"},
		Env: []string{"GIT_PROJECT_ROOT=" + dir, "GIT_HTTP_EXPORT_ALL=1",
			"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1", "PATH=" + os.Getenv("PATH")},
	}
	var refused atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || u != user || p != password {
			refused.Add(1)
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		backend.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &refused
}

// assertNotUnder fails if any file under dir contains one of secrets.
func assertNotUnder(t *testing.T, dir string, secrets ...string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		content, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, s := range secrets {
			if bytes.Contains(content, []byte(s)) {
				t.Errorf("%s contains the secret %q", path, s)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestCredentialsOverSmartHTTP(t *testing.T) {
	t.Parallel()
	o := newOrigin(t)
	base := o.commit("", "base", file{name: "README", content: "private\n"})
	o.setRef("refs/heads/main", base)
	const token = "ghs_SuperSecretToken1234"
	srv, refused := newGitServer(t, filepath.Dir(o.dir), "x-access-token", token)
	cloneURL := srv.URL + "/" + filepath.Base(o.dir)
	basic := base64.StdEncoding.EncodeToString([]byte("x-access-token:" + token))
	ctx := testContext(t)

	t.Run("a_token_clones_fetches_and_checks_out", func(t *testing.T) {
		w := openWorkspace(t)
		auth := GitAuth{Password: token}
		if err := w.UpdateMirror(ctx, "o", "r", cloneURL, auth); err != nil {
			t.Fatal(err)
		}
		head := o.commit(base, "pull", file{name: "README", content: "pull\n"})
		o.setRef("refs/pull/4/head", head)
		if err := w.UpdateMirror(ctx, "o", "r", cloneURL, auth); err != nil {
			t.Fatal(err)
		}
		b := Build{Owner: "o", Repo: "r", Pull: 4, Number: 1}
		dest, err := w.SourceDir(b)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Checkout(ctx, b, head, "main", dest); err != nil {
			t.Fatal(err)
		}
		if got, err := os.ReadFile(filepath.Join(dest, "README")); err != nil || string(got) != "pull\n" {
			t.Errorf("README = %q, %v", got, err)
		}
		assertNotUnder(t, w.Root(), token, basic, "x-access-token", srv.URL)
	})

	t.Run("a_wrong_token_fails_without_echoing_it", func(t *testing.T) {
		w := openWorkspace(t)
		before := refused.Load()
		const wrong = "ghs_WrongTokenValue5678"
		err := w.UpdateMirror(ctx, "o", "r", cloneURL, GitAuth{Password: wrong})
		if err == nil {
			t.Fatal("clone with a wrong token succeeded")
		}
		if refused.Load() == before {
			t.Error("the server refused nothing: the failure was not about credentials")
		}
		wrongBasic := base64.StdEncoding.EncodeToString([]byte("x-access-token:" + wrong))
		for _, secret := range []string{wrong, wrongBasic} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q reveals the credentials", err)
			}
		}
		assertNotUnder(t, w.Root(), wrong, wrongBasic)
		if _, statErr := os.Lstat(filepath.Join(w.Root(), "o", "r", "source")); !os.IsNotExist(statErr) {
			t.Errorf("a failed clone left a mirror: %v", statErr)
		}
	})

	t.Run("no_credentials_fail_instead_of_prompting", func(t *testing.T) {
		w := openWorkspace(t)
		if err := w.UpdateMirror(ctx, "o", "r", cloneURL, GitAuth{}); err == nil {
			t.Fatal("anonymous clone of a private repository succeeded")
		}
	})
}

func TestUsernameAndPasswordOverSmartHTTP(t *testing.T) {
	t.Parallel()
	o := newOrigin(t)
	o.setRef("refs/heads/main", o.commit("", "base", file{name: "a", content: "a"}))
	srv, _ := newGitServer(t, filepath.Dir(o.dir), "alice", "correct horse")
	w := openWorkspace(t)
	err := w.UpdateMirror(testContext(t), "o", "r", srv.URL+"/origin.git", GitAuth{Username: "alice", Password: "correct horse"})
	if err != nil {
		t.Fatal(err)
	}
	assertNotUnder(t, w.Root(), "correct horse")
}

func TestGitAuthNeverPrintsItsSecrets(t *testing.T) {
	t.Parallel()
	a := GitAuth{Username: "bot", Password: "hunter2-secret"}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("fetching", "auth", a)
	printed := fmt.Sprintf("%v %+v %#v %s", a, a, a, a) + logged.String()
	for _, secret := range []string{a.Password, a.basic()} {
		if strings.Contains(printed, secret) {
			t.Errorf("%q reveals %q", printed, secret)
		}
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	a := GitAuth{Password: "tok3n-value"}
	tests := []struct {
		name, in, want string
	}{
		{"password", "fatal: tok3n-value rejected", "fatal: *** rejected"},
		{"basic_header", "header: Basic " + a.basic(), "header: Basic ***"},
		{"userinfo_in_url", "fatal: unable to access 'https://user:pw@example.com/o/r.git/'", "fatal: unable to access 'https://***@example.com/o/r.git/'"},
		{"url_without_userinfo", "https://example.com/o/r.git", "https://example.com/o/r.git"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := a.redact(tt.in); got != tt.want {
				t.Errorf("redact(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
