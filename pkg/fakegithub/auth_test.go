package fakegithub_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"testing"

	"github.com/google/go-github/v88/github"

	"github.com/yourci/yourci/pkg/fakegithub"
)

func TestAuthentication(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	seed(t, s)
	user, pass := s.BasicAuth()
	url := s.URL() + "/repos/acme/widgets"

	tests := []struct {
		name        string
		auth        string
		wantStatus  int
		wantMessage string
	}{
		{name: "token_scheme_is_accepted", auth: "token " + s.Token(), wantStatus: http.StatusOK},
		{name: "bearer_scheme_is_accepted", auth: "Bearer " + s.Token(), wantStatus: http.StatusOK},
		{name: "basic_auth_is_accepted", auth: basicHeader(user, pass), wantStatus: http.StatusOK},
		{name: "no_credentials_get_401", auth: "", wantStatus: http.StatusUnauthorized, wantMessage: "Requires authentication"},
		{name: "wrong_token_gets_401", auth: "token ghp_nope", wantStatus: http.StatusUnauthorized, wantMessage: "Bad credentials"},
		{name: "wrong_password_gets_401", auth: basicHeader(user, "nope"), wantStatus: http.StatusUnauthorized, wantMessage: "Bad credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := http.Header{}
			if tt.auth != "" {
				h.Set("Authorization", tt.auth)
			}
			resp := get(t, url, h)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			for _, k := range []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "X-RateLimit-Used"} {
				if _, err := strconv.ParseInt(resp.Header.Get(k), 10, 64); err != nil {
					t.Errorf("header %s = %q, want a number", k, resp.Header.Get(k))
				}
			}
			if tt.wantMessage == "" {
				return
			}
			var body struct {
				Message          string `json:"message"`
				DocumentationURL string `json:"documentation_url"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatal(err)
			}
			if body.Message != tt.wantMessage || body.DocumentationURL == "" {
				t.Errorf("body = %+v, want message %q with documentation_url", body, tt.wantMessage)
			}
		})
	}
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	seed(t, s)
	s.SetRateLimit(3)
	c := newClient(t, s)
	ctx := testContext(t)
	for i := range 3 {
		_, resp, err := c.Repositories.Get(ctx, "acme", "widgets")
		if err != nil {
			t.Fatalf("call %d: %v", i+1, err)
		}
		if resp.Rate.Limit != 3 || resp.Rate.Remaining != 2-i {
			t.Errorf("call %d: rate %+v, want limit 3 remaining %d", i+1, resp.Rate, 2-i)
		}
	}
	_, _, err := c.Repositories.Get(testContext(t), "acme", "widgets")
	var rle *github.RateLimitError
	if !errors.As(err, &rle) {
		t.Fatalf("fourth call = %v, want a RateLimitError", err)
	}
	limits, _, err := newClient(t, s).RateLimit.Get(ctx)
	if err != nil {
		t.Fatalf("rate_limit is free and should answer: %v", err)
	}
	if limits.GetCore().Remaining != 0 || limits.GetCore().Limit != 3 {
		t.Errorf("core = %+v, want 0 of 3 left", limits.GetCore())
	}
}

func TestPermissionsAndLabels(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	seed(t, s)
	openPull(t, s, "feature", fakegithub.PullSpec{Author: "mallory", Labels: []string{"bug"}})
	if err := s.AddLabel("acme", "widgets", 1, "ok-to-test"); err != nil {
		t.Fatal(err)
	}
	for user, role := range map[string]string{"alice": "write", "bob": "maintain", "carol": "triage"} {
		if err := s.SetPermission("acme", "widgets", user, role); err != nil {
			t.Fatal(err)
		}
	}
	c := newClient(t, s)
	tests := []struct {
		user, wantPermission, wantRole string
	}{
		{"acme", "admin", "admin"},
		{"alice", "write", "write"},
		{"bob", "write", "maintain"},
		{"carol", "read", "triage"},
		{"mallory", "none", "none"},
	}
	for _, tt := range tests {
		t.Run(tt.user+"_has_"+tt.wantRole, func(t *testing.T) {
			t.Parallel()
			lvl, _, err := c.Repositories.GetPermissionLevel(testContext(t), "acme", "widgets", tt.user)
			if err != nil {
				t.Fatal(err)
			}
			if lvl.GetPermission() != tt.wantPermission || lvl.GetRoleName() != tt.wantRole || lvl.GetUser().GetLogin() != tt.user {
				t.Errorf("permission = %s/%s for %s", lvl.GetPermission(), lvl.GetRoleName(), lvl.GetUser().GetLogin())
			}
		})
	}
	t.Run("labels_list_in_order_added", func(t *testing.T) {
		t.Parallel()
		labels, _, err := c.Issues.ListLabelsByIssue(testContext(t), "acme", "widgets", 1, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(labels) != 2 || labels[0].GetName() != "bug" || labels[1].GetName() != "ok-to-test" || labels[1].GetID() == 0 {
			t.Errorf("labels = %v", labels)
		}
	})
	t.Run("unknown_role_is_refused", func(t *testing.T) {
		t.Parallel()
		if err := s.SetPermission("acme", "widgets", "dave", "owner"); err == nil {
			t.Error("SetPermission accepted role owner")
		}
	})
}
