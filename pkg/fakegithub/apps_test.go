package fakegithub_test

import (
	"crypto/rand"
	"crypto/rsa"
	"net/http"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"github.com/golang-jwt/jwt/v4"
	"github.com/google/go-github/v88/github"

	"github.com/yourci/yourci/pkg/fakegithub"
)

func TestInstallationTokenFlow(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	seed(t, s)
	openPull(t, s, "feature", fakegithub.PullSpec{})
	if _, err := s.CreateRepo("other", "thing"); err != nil {
		t.Fatal(err)
	}
	id := s.Install("acme")
	s.Install("other")

	atr, err := ghinstallation.NewAppsTransport(http.DefaultTransport, s.AppID(), s.AppPrivateKeyPEM())
	if err != nil {
		t.Fatal(err)
	}
	atr.BaseURL = s.URL()
	itr := ghinstallation.NewFromAppsTransport(atr, id)
	ctx := testContext(t)
	app := transportClient(t, s, atr)
	inst := transportClient(t, s, itr)

	t.Run("app_jwt_lists_installations", func(t *testing.T) {
		list, _, err := app.Apps.ListInstallations(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 2 || list[0].GetID() != id || list[0].GetAccount().GetLogin() != "acme" || list[0].GetAppID() != s.AppID() {
			t.Errorf("installations = %v", list)
		}
	})

	t.Run("installation_token_reads_pulls_and_posts_statuses", func(t *testing.T) {
		pulls, _, err := inst.PullRequests.List(ctx, "acme", "widgets", nil)
		if err != nil || len(pulls) != 1 {
			t.Fatalf("listing pulls = %d, %v", len(pulls), err)
		}
		st, _, err := inst.Repositories.CreateStatus(ctx, "acme", "widgets", pulls[0].GetHead().GetSHA(),
			github.RepoStatus{State: github.Ptr("pending"), Context: github.Ptr("yci/x")})
		if err != nil {
			t.Fatal(err)
		}
		if got := st.GetCreator().GetLogin(); got != "yourci-fake[bot]" {
			t.Errorf("status creator = %q, want the App's bot", got)
		}
	})

	t.Run("installation_lists_only_its_repositories", func(t *testing.T) {
		repos, _, err := inst.Apps.ListRepos(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if repos.GetTotalCount() != 1 || repos.Repositories[0].GetFullName() != "acme/widgets" {
			t.Errorf("repositories = %v", repos)
		}
	})

	t.Run("installation_cannot_see_other_accounts", func(t *testing.T) {
		_, resp, err := inst.Repositories.Get(ctx, "other", "thing")
		if err == nil || resp.StatusCode != http.StatusNotFound {
			t.Errorf("Get other/thing = %v, want 404", err)
		}
	})

	t.Run("enterprise_base_url_mints_tokens", func(t *testing.T) {
		etr, err := ghinstallation.New(http.DefaultTransport, s.AppID(), id, s.AppPrivateKeyPEM())
		if err != nil {
			t.Fatal(err)
		}
		etr.BaseURL = s.URL() + "/api/v3"
		if _, err := etr.Token(ctx); err != nil {
			t.Errorf("token through /api/v3: %v", err)
		}
	})

	t.Run("installation_token_clones_over_git", func(t *testing.T) {
		tok, err := itr.Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		if out, err := git(t, dir, basicHeader("x-access-token", tok), "clone", "--quiet", s.URL()+"/acme/widgets.git", "w"); err != nil {
			t.Fatalf("clone with installation token: %v: %s", err, out)
		}
		if out, err := git(t, dir, basicHeader("x-access-token", tok), "clone", "--quiet", s.URL()+"/other/thing.git", "o"); err == nil {
			t.Errorf("clone of a repository outside the installation succeeded: %s", out)
		}
		if _, err := git(t, filepath.Join(dir, "w"), "", "cat-file", "-e", "HEAD:test.sh"); err != nil {
			t.Errorf("cloned tree lacks test.sh: %v", err)
		}
	})
}

func TestAppJWTIsVerified(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	s.Install("acme")
	key, err := jwt.ParseRSAPrivateKeyFromPEM(s.AppPrivateKeyPEM())
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	claims := func(iss string, exp time.Duration) jwt.RegisteredClaims {
		return jwt.RegisteredClaims{
			Issuer:    iss,
			IssuedAt:  jwt.NewNumericDate(now.Add(-30 * time.Second)),
			ExpiresAt: jwt.NewNumericDate(now.Add(exp)),
		}
	}
	appID := strconv.FormatInt(s.AppID(), 10)
	tests := []struct {
		name   string
		key    *rsa.PrivateKey
		claims jwt.RegisteredClaims
		want   int
	}{
		{name: "valid_jwt_is_accepted", key: key, claims: claims(appID, 5*time.Minute), want: http.StatusOK},
		{name: "jwt_signed_by_another_key_is_refused", key: stranger, claims: claims(appID, 5*time.Minute), want: http.StatusUnauthorized},
		{name: "jwt_for_another_app_is_refused", key: key, claims: claims("1", 5*time.Minute), want: http.StatusUnauthorized},
		{name: "expired_jwt_is_refused", key: key, claims: claims(appID, -time.Minute), want: http.StatusUnauthorized},
		{name: "jwt_expiring_after_ten_minutes_is_refused", key: key, claims: claims(appID, time.Hour), want: http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			signed, err := jwt.NewWithClaims(jwt.SigningMethodRS256, tt.claims).SignedString(tt.key)
			if err != nil {
				t.Fatal(err)
			}
			resp := get(t, s.URL()+"/app/installations", http.Header{"Authorization": {"Bearer " + signed}})
			if resp.StatusCode != tt.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}

	t.Run("personal_token_cannot_act_as_the_app", func(t *testing.T) {
		t.Parallel()
		resp := get(t, s.URL()+"/app/installations", http.Header{"Authorization": {"token " + s.Token()}})
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("status %d, want 401", resp.StatusCode)
		}
	})
}
