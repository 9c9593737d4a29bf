package githubauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	jwt "github.com/golang-jwt/jwt/v4"
)

const testAppID = 4242

// fakeGitHub serves, under an Enterprise-style /api/v3 prefix, the calls
// authentication touches: GET /user (any identity), GET /app and
// POST /app/installations/{id}/access_tokens (App JWT, verified against the
// test key). It records the Authorization header of every /user call.
type fakeGitHub struct {
	*httptest.Server
	mu          sync.Mutex
	userAuth    []string
	tokensIssue map[string]int // installation id → tokens issued
}

func newFakeGitHub(t *testing.T) *fakeGitHub {
	t.Helper()
	f := &fakeGitHub{tokensIssue: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v3/user", f.user)
	mux.HandleFunc("GET /api/v3/app", f.app)
	mux.HandleFunc("POST /api/v3/app/installations/{id}/access_tokens", f.accessToken)
	f.Server = httptest.NewServer(mux)
	t.Cleanup(f.Close)
	return f
}

func (f *fakeGitHub) apiURL() string { return f.URL + "/api/v3" }

func (f *fakeGitHub) user(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.userAuth = append(f.userAuth, r.Header.Get("Authorization"))
	f.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"login": "yci-bot", "id": 1})
}

func (f *fakeGitHub) app(w http.ResponseWriter, r *http.Request) {
	if err := verifyAppJWT(r); err != nil {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"message": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": testAppID, "slug": "yourci"})
}

func (f *fakeGitHub) accessToken(w http.ResponseWriter, r *http.Request) {
	if err := verifyAppJWT(r); err != nil {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"message": err.Error()})
		return
	}
	id := r.PathValue("id")
	f.mu.Lock()
	f.tokensIssue[id]++
	n := f.tokensIssue[id]
	f.mu.Unlock()
	writeJSON(w, http.StatusCreated, map[string]any{
		"token":      fmt.Sprintf("ghs_installation%s_%d", id, n),
		"expires_at": time.Now().Add(time.Hour).UTC().Format(time.RFC3339),
	})
}

func (f *fakeGitHub) authorizations() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.userAuth)
}

func (f *fakeGitHub) issued(installation int64) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tokensIssue[strconv.FormatInt(installation, 10)]
}

// verifyAppJWT checks the request is signed by the test App's key, as
// GitHub does before issuing an installation token.
func verifyAppJWT(r *http.Request) error {
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return errors.New("no bearer JWT")
	}
	claims := &jwt.RegisteredClaims{}
	_, err := jwt.ParseWithClaims(raw, claims, func(tok *jwt.Token) (any, error) {
		if tok.Method != jwt.SigningMethodRS256 {
			return nil, fmt.Errorf("signed with %v, want RS256", tok.Header["alg"])
		}
		return &testKey().PublicKey, nil
	})
	if err != nil {
		return fmt.Errorf("verifying JWT: %w", err)
	}
	if claims.Issuer != strconv.Itoa(testAppID) {
		return fmt.Errorf("JWT issuer %q, want the app id %d", claims.Issuer, testAppID)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		panic(fmt.Sprintf("encoding answer: %v", err))
	}
}

func TestSharedClientsSendTheirCredentials(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name           string
		cfg            Config
		wantAuth       string
		wantGitUser    string
		wantGitPass    string
		wantSecrets    []string
		installationID int64
	}{
		{
			name: "a token is sent as a bearer token and given to git", cfg: Config{Token: "ghp_tok"},
			wantAuth: "Bearer ghp_tok", wantGitUser: "x-access-token", wantGitPass: "ghp_tok", wantSecrets: []string{"ghp_tok"},
		},
		{
			name: "basic credentials are sent as basic auth and given to git", cfg: Config{Username: "bot", Password: "pw"},
			wantAuth: "Basic Ym90OnB3", wantGitUser: "bot", wantGitPass: "pw", wantSecrets: []string{"pw"},
		},
		{name: "no credentials send no Authorization", cfg: Config{}, installationID: 9},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			gh := newFakeGitHub(t)
			tc.cfg.APIURL = gh.apiURL()
			clients, err := New(tc.cfg)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			c, err := clients.ForInstallation(t.Context(), tc.installationID)
			if err != nil {
				t.Fatalf("ForInstallation: %v", err)
			}
			if _, _, err := c.Users.Get(t.Context(), ""); err != nil {
				t.Fatalf("GET /user: %v", err)
			}
			if got := gh.authorizations(); len(got) != 1 || got[0] != tc.wantAuth {
				t.Errorf("Authorization = %q, want [%q]", got, tc.wantAuth)
			}
			user, pass, err := clients.GitCredentials(t.Context(), tc.installationID)
			if err != nil || user != tc.wantGitUser || pass != tc.wantGitPass {
				t.Errorf("GitCredentials = %q, %q, %v; want %q, %q", user, pass, err, tc.wantGitUser, tc.wantGitPass)
			}
			if got := clients.Secrets(); !slices.Equal(got, tc.wantSecrets) {
				t.Errorf("Secrets() = %q, want %q", got, tc.wantSecrets)
			}
			if _, err := clients.App(); !errors.Is(err, ErrNotApp) {
				t.Errorf("App() = %v, want ErrNotApp", err)
			}
		})
	}
}

func newAppClients(t *testing.T, gh *fakeGitHub) *Clients {
	t.Helper()
	clients, err := New(Config{AppID: testAppID, AppPrivateKeyFile: writeKey(t), APIURL: gh.apiURL()})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return clients
}

func TestAppInstallations(t *testing.T) {
	t.Parallel()
	t.Run("an installation's token is fetched once and used on API calls and for git", func(t *testing.T) {
		t.Parallel()
		gh := newFakeGitHub(t)
		clients := newAppClients(t, gh)
		for range 2 {
			c, err := clients.ForInstallation(t.Context(), 42)
			if err != nil {
				t.Fatalf("ForInstallation: %v", err)
			}
			if _, _, err := c.Users.Get(t.Context(), ""); err != nil {
				t.Fatalf("GET /user: %v", err)
			}
		}
		want := "token ghs_installation42_1"
		if got := gh.authorizations(); !slices.Equal(got, []string{want, want}) {
			t.Errorf("Authorization = %q, want %q twice", got, want)
		}
		user, pass, err := clients.GitCredentials(t.Context(), 42)
		if err != nil || user != "x-access-token" || pass != "ghs_installation42_1" {
			t.Errorf("GitCredentials = %q, %q, %v; want the installation token", user, pass, err)
		}
		if n := gh.issued(42); n != 1 {
			t.Errorf("GitHub issued %d tokens, want 1", n)
		}
		if got := clients.Secrets(); !slices.Equal(got, []string{"ghs_installation42_1"}) {
			t.Errorf("Secrets() = %q, want the token given to git", got)
		}
	})
	t.Run("each installation has its own token", func(t *testing.T) {
		t.Parallel()
		gh := newFakeGitHub(t)
		clients := newAppClients(t, gh)
		_, a, errA := clients.GitCredentials(t.Context(), 1)
		_, b, errB := clients.GitCredentials(t.Context(), 2)
		if errA != nil || errB != nil || a != "ghs_installation1_1" || b != "ghs_installation2_1" {
			t.Errorf("tokens = %q (%v), %q (%v); want one per installation", a, errA, b, errB)
		}
	})
	t.Run("installation 0 is refused clearly", func(t *testing.T) {
		t.Parallel()
		clients := newAppClients(t, newFakeGitHub(t))
		if _, err := clients.ForInstallation(t.Context(), 0); !errors.Is(err, ErrNoInstallation) {
			t.Errorf("ForInstallation(0) = %v, want ErrNoInstallation", err)
		}
		if _, _, err := clients.GitCredentials(t.Context(), 0); !errors.Is(err, ErrNoInstallation) {
			t.Errorf("GitCredentials(0) = %v, want ErrNoInstallation", err)
		}
	})
	t.Run("the App client authenticates with a JWT", func(t *testing.T) {
		t.Parallel()
		clients := newAppClients(t, newFakeGitHub(t))
		app, err := clients.App()
		if err != nil {
			t.Fatalf("App: %v", err)
		}
		got, _, err := app.Apps.Get(t.Context(), "")
		if err != nil || got.GetID() != testAppID {
			t.Errorf("GET /app = %v, %v; want app %d", got, err, testAppID)
		}
	})
	t.Run("concurrent first uses build one client per installation", func(t *testing.T) {
		t.Parallel()
		gh := newFakeGitHub(t)
		clients := newAppClients(t, gh)
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				if _, _, err := clients.GitCredentials(t.Context(), 7); err != nil {
					t.Errorf("GitCredentials: %v", err)
				}
			})
		}
		wg.Wait()
		if n := gh.issued(7); n != 1 {
			t.Errorf("GitHub issued %d tokens, want 1", n)
		}
	})
}

func TestNewRefusesABadConfig(t *testing.T) {
	t.Parallel()
	if _, err := New(Config{AppID: 1}); err == nil {
		t.Error("New accepted an App without a key")
	}
}

func TestRequestsAreBoundedByTheTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(hung.Close)
	t.Cleanup(func() { close(release) })
	tests := []struct {
		name string
		cfg  Config
		call func(*Clients) error
	}{
		{"an API call", Config{Token: "t"}, func(c *Clients) error {
			gh, err := c.ForInstallation(t.Context(), 0)
			if err != nil {
				return err
			}
			_, _, err = gh.Users.Get(t.Context(), "")
			return err
		}},
		{"an installation token fetch for git", Config{AppID: testAppID, AppPrivateKeyFile: writeKey(t)}, func(c *Clients) error {
			_, _, err := c.GitCredentials(t.Context(), 3)
			return err
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.cfg.APIURL = hung.URL
			tc.cfg.Timeout = 20 * time.Millisecond
			clients, err := New(tc.cfg)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			err = tc.call(clients)
			var netErr net.Error
			if !errors.Is(err, context.DeadlineExceeded) && !(errors.As(err, &netErr) && netErr.Timeout()) {
				t.Errorf("call to a hung GitHub = %v, want a timeout", err)
			}
		})
	}
}
